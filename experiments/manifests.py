"""A stage's files on disk: its manifest, its config, its artifacts, and getting them back from MLflow.

A finished stage leaves in ``runs/<stage_id>/`` its outputs, ``_config.json`` (the resolved config)
and, written last (after its MLflow run is FINISHED), the manifest ``_stage.json``: the stage id, the
run id, the metrics it returned, each artifact's path relative to the folder, the stage's ``seconds``,
and its run as the store holds it (store, status, times, tags, last metric values). With a local store
the manifest is the run's record for reuse and reports (``local_run``: no MLflow import) and the folder
is the only copy of the files; with a shared store the same files are also copied into MLflow under
``outputs/``, so another machine fetches them back (``restore_outputs``). The runner writes and reuses
these files; the reports read artifacts (per-item results, included Markdown) through them.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
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


def manifest(
    stage_id: str,
    run_id: str,
    metrics: Mapping[str, float],
    artifacts: Mapping[str, str],
    seconds: float,
    run: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A stage's manifest; ``run``: its run as the store holds it (``store``, ``status``,
    ``start_time``, ``end_time``, ``tags``, ``logged_metrics``), for reading it without the store."""
    return {
        "stage_id": stage_id,
        "run_id": run_id,
        "metrics": dict(metrics),
        "artifacts": dict(artifacts),
        "seconds": seconds,
        **dict(run or {}),
    }


def write_manifest(
    out_dir: Path,
    stage_id: str,
    run_id: str,
    metrics: Mapping[str, float],
    artifacts: Mapping[str, str],
    seconds: float,
    run: Mapping[str, Any] | None = None,
) -> None:
    """The stage's record, written last: its presence says the outputs beside it are complete."""
    write_json(out_dir / MANIFEST, manifest(stage_id, run_id, metrics, artifacts, seconds, run))


class LocalRun:
    """A finished stage run read from its manifest, with the parts of an MLflow ``Run`` the runner and
    the reports use: ``info.run_id``, ``info.status``, ``info.start_time``/``end_time`` and
    ``data.tags``, ``data.metrics`` (each metric's last value, as MLflow keys it), ``data.params``."""

    def __init__(self, record: Mapping[str, Any], out_dir: Path):
        self.info = SimpleNamespace(
            run_id=record["run_id"],
            status=record["status"],
            start_time=record.get("start_time"),
            end_time=record.get("end_time"),
            run_name=record.get("run_name", ""),
        )
        self.data = _LocalData(record, out_dir)


class _LocalData:
    def __init__(self, record: Mapping[str, Any], out_dir: Path):
        self.tags: dict[str, str] = dict(record.get("tags", {}))
        # the files are where this manifest was read (a runs folder copied or moved since the run keeps
        # working), not necessarily where the run wrote them
        self.tags[f"{TAG}out_dir"] = str(out_dir)
        self.metrics: dict[str, float] = dict(record.get("logged_metrics", {}))
        self._inputs = dict(record.get("inputs", {}))
        self._out_dir = out_dir

    @functools.cached_property
    def params(self) -> dict[str, str]:
        """The logged params (the resolved config, flattened, and ``inputs.<name>``), from ``_config.json``."""
        from experiments.tracking import flatten, param_str

        try:
            config = json.loads((self._out_dir / CONFIG_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return {k: param_str(v) for k, v in flatten({**config, "inputs": self._inputs}).items()}


def local_run(out_dir: Path, stage_id: str, store: str) -> LocalRun | None:
    """The finished run of ``stage_id`` that the manifest in ``out_dir`` records for the store
    ``store`` (its display URI), or None (no manifest, another store's, or one without the record)."""
    record = read_manifest(out_dir, stage_id)
    if record is None or record.get("store") != store or record.get("status") != "FINISHED":
        return None
    if "tags" not in record or "logged_metrics" not in record:
        return None
    return LocalRun(record, out_dir)


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
    None when nothing usable was logged or the artifact store is out of reach. A local store keeps
    the outputs only in the stage folder: nothing to fetch."""
    if not tracker.copy_outputs:
        return None
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
