"""``python -m experiments gc``: delete what in the runs folder no finished run uses.

A stage folder (``runs/<stage_id>/``) stays when the store has a FINISHED run of that stage and the
folder holds its complete outputs (its manifest), or when its manifest was written for another
store (not this one's to judge), or while a process runs the stage (its lock is held). Everything
else goes: folders of failed, killed or abandoned attempts (resume checkpoints included), folders
whose run was deleted from the store, unfinished restores, the files fetched for reports
(``.fetched/``) and the locks of folders that are gone. Other files in the runs folder are not
touched.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from evilm.processes import pid_alive
from experiments.locks import is_locked
from experiments.manifests import FETCHED, MANIFEST, read_manifest
from experiments.plan import ID_LENGTH
from experiments.tracking import TAG, Tracker

_STAGE_DIR = re.compile(rf"^[0-9a-f]{{{ID_LENGTH}}}$")
_RESTORE_DIR = re.compile(rf"^[0-9a-f]{{{ID_LENGTH}}}\.restore-(\d+)$")


@dataclass
class Garbage:
    path: Path
    why: str
    size: int


def finished_stage_ids(tracker: Tracker) -> set[str]:
    """The stage ids with a FINISHED run in the store."""
    runs = tracker.search_all(f"attributes.status = 'FINISHED' and tags.`{TAG}stage_id` LIKE '%'")
    return {run.data.tags[f"{TAG}stage_id"] for run in runs if run.data.tags.get(f"{TAG}stage_id")}


def find_garbage(tracker: Tracker) -> tuple[list[Garbage], list[str]]:
    """What ``gc`` deletes, and notes on what it keeps for a reason other than a finished run."""
    runs_dir = tracker.runs_dir
    if not runs_dir.is_dir():
        return [], []
    finished = finished_stage_ids(tracker)
    garbage: list[Garbage] = []
    notes: list[str] = []
    doomed: set[str] = set()
    for path in sorted(runs_dir.iterdir()):
        name = path.name
        if path.is_dir() and _STAGE_DIR.match(name):
            manifest = read_manifest(path, name)
            if is_locked(path):
                notes.append(f"{name}: running now (its lock is held)")
                continue
            if manifest is not None and name in finished:
                continue
            if manifest is not None and manifest.get("store") not in (None, tracker.display_uri):
                notes.append(f"{name}: recorded by another store ({manifest['store']})")
                continue
            if manifest is not None:
                why = "its run is not in the store (deleted, or never finished)"
            elif (path / MANIFEST).exists():
                why = "incomplete: its manifest names files that are gone"
            else:
                why = "no finished run: a failed, killed or abandoned attempt"
            garbage.append(Garbage(path, why, _size(path)))
            doomed.add(name)
        elif path.is_dir() and _RESTORE_DIR.match(name):
            pid = int(_RESTORE_DIR.match(name).group(1))
            if not pid_alive(pid):
                garbage.append(Garbage(path, "an unfinished restore from the store", _size(path)))
        elif path.is_dir() and name == FETCHED:
            garbage.append(Garbage(path, "files fetched from the store for reports (fetched again when needed)", _size(path)))
    for path in sorted(runs_dir.glob("*.lock")):
        stage = path.name.removesuffix(".lock")
        folder = runs_dir / stage
        if (stage in doomed or not folder.exists()) and not is_locked(folder):
            garbage.append(Garbage(path, "the lock of a folder that is gone", 0))
    return garbage, notes


def collect(tracker: Tracker, dry_run: bool = False, console: Console | None = None) -> list[Garbage]:
    """Delete (or, ``dry_run``, list) the garbage of ``tracker``'s runs folder, printing each item."""
    console = console or Console(stderr=True)
    garbage, notes = find_garbage(tracker)
    for note in notes:
        console.print(f"[dim]kept[/dim] {note}", highlight=False, soft_wrap=True)
    verb = "would delete" if dry_run else "deleted"
    for item in garbage:
        if not dry_run:
            if item.path.is_dir():
                shutil.rmtree(item.path, ignore_errors=True)
            else:
                item.path.unlink(missing_ok=True)
        console.print(f"{verb} {item.path} ({_mb(item.size)}): {item.why}", highlight=False, soft_wrap=True)
    total = sum(item.size for item in garbage)
    console.print(f"{verb} {len(garbage)} item(s), {_mb(total)} in {tracker.runs_dir}", highlight=False, soft_wrap=True)
    return garbage


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def collect_garbage(runs_dir: Path, tracking_uri: str | None, dry_run: bool = False, console=None) -> int:
    """The ``gc`` command: delete the stage folders (and leftovers) that no finished run uses; returns how many."""
    from experiments.tracking import Tracker, quiet_mlflow

    quiet_mlflow()
    return len(collect(Tracker(tracking_uri, runs_dir), dry_run=dry_run, console=console))
