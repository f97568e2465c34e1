"""A stage's files on disk: its manifest, its config, its artifacts, and getting them back from MLflow.

A finished stage leaves in ``runs/<stage_id>/`` its outputs, ``_config.json`` (the resolved config)
and, written last, the manifest ``_stage.json``: the stage id, the run id, the metrics, each artifact's
path relative to the folder and the stage's ``seconds``. The same files are logged to MLflow under
``outputs/``, so a run made on another machine can be fetched back. The runner writes and reuses
these files; the reports read artifacts (per-item results, included Markdown) through them.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evilm.files import atomic_write_text
from experiments.tracking import TAG

MANIFEST = "_stage.json"
CONFIG_FILE = "_config.json"
ERROR_FILE = "_error.txt"
OUTPUTS = "outputs"  # where a run's outputs are logged in MLflow
FETCHED = ".fetched"  # under the runs folder: single files fetched from MLflow for a report


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str))


def write_config(out_dir: Path, params: Mapping[str, Any]) -> None:
    write_json(out_dir / CONFIG_FILE, params)


def write_manifest(
    out_dir: Path,
    stage_id: str,
    run_id: str,
    metrics: Mapping[str, float],
    artifacts: Mapping[str, str],
    seconds: float,
) -> None:
    """The stage's record, written last: its presence says the outputs beside it are complete."""
    write_json(
        out_dir / MANIFEST,
        {
            "stage_id": stage_id,
            "run_id": run_id,
            "metrics": dict(metrics),
            "artifacts": dict(artifacts),
            "seconds": seconds,
        },
    )


def read_manifest(out_dir: Path, stage_id: str) -> dict | None:
    """The manifest in ``out_dir`` if it is ``stage_id``'s and every artifact it names exists, else None."""
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("stage_id") != stage_id:
        return None
    if not all((out_dir / rel).exists() for rel in manifest.get("artifacts", {}).values()):
        return None
    return manifest


def relative_path(path: Path, out_dir: Path) -> str:
    """``path`` relative to ``out_dir`` as the manifest records it."""
    path = path.resolve()
    try:
        return str(path.relative_to(out_dir.resolve()))
    except ValueError:  # outside out_dir (the stage broke the contract): keep it absolute
        return str(path)


def restore_outputs(tracker, run_id: str, stage_id: str, out_dir: Path) -> dict | None:
    """Fetch a finished run's logged outputs into ``out_dir`` (another machine's run); its manifest, or
    None when nothing usable was logged or the artifact store is out of reach."""
    tmp = out_dir.with_name(out_dir.name + f".restore-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tracker.download(run_id, OUTPUTS, tmp)
    except Exception:  # nothing logged, or the artifact store is out of reach
        shutil.rmtree(tmp, ignore_errors=True)
        return None
    fetched = tmp / OUTPUTS
    if read_manifest(fetched, stage_id) is None:
        shutil.rmtree(tmp, ignore_errors=True)
        return None
    shutil.rmtree(out_dir, ignore_errors=True)
    fetched.rename(out_dir)
    shutil.rmtree(tmp, ignore_errors=True)
    return read_manifest(out_dir, stage_id)


def run_manifest(tracker, run) -> dict | None:
    """A finished run's manifest: from its ``out_dir`` when that exists here, else fetched from MLflow."""
    out_dir = run.data.tags.get(f"{TAG}out_dir")
    if out_dir and (Path(out_dir) / MANIFEST).exists():
        try:
            return json.loads((Path(out_dir) / MANIFEST).read_text())
        except ValueError:
            return None
    try:
        path = tracker.download(run.info.run_id, f"{OUTPUTS}/{MANIFEST}", _fetch_dir(tracker, run))
        return json.loads(Path(path).read_text())
    except Exception:
        return None


def run_artifact(tracker, run, name: str, fetch: bool = True) -> Path | None:
    """The file of the artifact ``name`` of a finished run: in its ``out_dir`` when that exists here,
    else (``fetch``) fetched from MLflow; None when the run has no such artifact or it is out of reach."""
    manifest = run_manifest(tracker, run)
    relative = (manifest or {}).get("artifacts", {}).get(name)
    if not relative:
        return None
    out_dir = run.data.tags.get(f"{TAG}out_dir")
    if out_dir and (Path(out_dir) / relative).exists():
        return Path(out_dir) / relative
    if not fetch:
        return None
    try:
        return Path(tracker.download(run.info.run_id, f"{OUTPUTS}/{relative}", _fetch_dir(tracker, run)))
    except Exception:
        return None


def _fetch_dir(tracker, run) -> Path:
    return tracker.runs_dir / FETCHED / run.info.run_id
