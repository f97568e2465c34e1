"""MLflow as the record of every stage run, and the cache of finished ones.

The store is ``sqlite:///mlflow.db`` in the working directory unless
``MLFLOW_TRACKING_URI`` says otherwise, so a plain ``mlflow ui`` there shows
every run. A stage's run carries the tag ``evilm.stage_id``; a run is reused
only if its status is ``FINISHED``, which the runner sets after the stage's
outputs are written and logged. Everything else (``FAILED``, ``KILLED``, or
``RUNNING`` left by a killed process) is never reused.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

TAG = "evilm."
PARAM_MAX_CHARS = 6000
REPO_DIR = Path(__file__).resolve().parent.parent


def default_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^/\s:@]+):[^@/\s]*@")


def mask_url(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` URL in it replaced by ``***``,
    so database URLs can go to logs, tags and params without their credentials."""
    return _URL_PASSWORD.sub(r"\g<head>:***@", str(text))


def database_url(url: str) -> str:
    """``postgresql://`` with the driver that is installed: SQLAlchemy 2.1 reads the bare scheme as
    psycopg 3, and many machines have psycopg2(-binary) instead."""
    if url.startswith("postgresql://"):
        import importlib.util

        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            return "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    return url


def sqlite_path(uri: str) -> Path | None:
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///"))
    return None


def quiet_mlflow() -> None:
    """Keep MLflow/alembic's INFO chatter (schema migrations, run links) off the console."""
    for name in ("mlflow", "alembic", "optuna"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def git_commit(repo: Path | None = None) -> str:
    """The checkout's commit, with ``+dirty`` when files differ from it (ignored files aside, and the
    generated ``reports/``: a run rewrites them, which does not make the code that ran differ)."""
    repo = REPO_DIR if repo is None else repo
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", ".", ":(exclude)reports"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit or "uncommitted") + ("+dirty" if dirty else "")


def hardware() -> str:
    """CPU model and count, and the GPU if torch (already imported by a stage) sees one."""
    import platform
    import sys

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu} x{os.cpu_count()}"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name(0)}"
    return text


def metric_key(name: str) -> str:
    """``name`` as MLflow accepts it (no '@' in "R@1"): '@' -> '_at_', other odd characters -> '_'."""
    return re.sub(r"[^/\w.\- ]", "_", str(name).replace("@", "_at_"))


def run_seconds(run) -> float:
    """How long a finished stage run took: the ``evilm.seconds`` tag (the stage's own time), else the
    run's start-to-end time (older runs), else 0.0."""
    tagged = run.data.tags.get(f"{TAG}seconds")
    try:
        if tagged:
            return float(tagged)
    except ValueError:
        pass
    if run.info.end_time and run.info.start_time:
        return max(0.0, (run.info.end_time - run.info.start_time) / 1000)
    return 0.0


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level with dotted keys: {"a": {"b": 1}} -> {"a.b": 1}."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, full))
        else:
            out[full] = value
    return out


class Tracker:
    """A thin, explicit wrapper over ``MlflowClient`` (no global active run)."""

    def __init__(self, uri: str | None = None, runs_dir: str | Path | None = None):
        self.uri = uri or default_tracking_uri()
        db = sqlite_path(self.uri)
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(database_url(self.uri))
        self.runs_dir = Path(runs_dir or "runs").resolve()
        self.display_uri = mask_url(self.uri)  # for logs and reports: no password
        self._experiments: dict[str, str] = {}

    @property
    def store_dir(self) -> Path:
        """Where files that belong beside the store go (Optuna's database, artifacts)."""
        db = sqlite_path(self.uri)
        return db.parent if db is not None else Path.cwd()

    def experiment_id(self, name: str) -> str:
        if name not in self._experiments:
            found = self.client.get_experiment_by_name(name)
            if found is None:
                location = None
                if sqlite_path(self.uri) is not None:
                    location = (self.store_dir / "mlartifacts" / name).as_uri()
                try:
                    exp_id = self.client.create_experiment(name, artifact_location=location)
                except MlflowException:  # another worker created it just now
                    found = self.client.get_experiment_by_name(name)
                    if found is None:
                        raise
                    exp_id = found.experiment_id
            else:
                exp_id = found.experiment_id
            self._experiments[name] = exp_id
        return self._experiments[name]

    def _all_experiment_ids(self) -> list[str]:
        return [e.experiment_id for e in self.client.search_experiments()]

    def search(self, filter_string: str, order_by: list[str] | None = None, max_results: int = 1000):
        ids = self._all_experiment_ids()
        if not ids:
            return []
        return self.client.search_runs(ids, filter_string, max_results=max_results, order_by=order_by)

    def finished_run(self, stage_id: str):
        """The newest FINISHED run of this stage identity, or None."""
        runs = self.search(
            f"tags.`{TAG}stage_id` = '{stage_id}' and attributes.status = 'FINISHED'",
            order_by=["attributes.end_time DESC"],
            max_results=1,
        )
        return runs[0] if runs else None

    def runs_of_stage(self, stage_id: str):
        return self.search(f"tags.`{TAG}stage_id` = '{stage_id}'", order_by=["attributes.start_time DESC"])

    def start(
        self, experiment: str, run_name: str, tags: Mapping[str, Any], parent_run_id: str | None = None
    ) -> str:
        tags = {k: mask_url(v) for k, v in tags.items()}
        if parent_run_id:
            tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(self.experiment_id(experiment), run_name=run_name, tags=tags)
        return run.info.run_id

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        items = [Param(k, _param_str(v)) for k, v in flatten(params).items()]
        for i in range(0, len(items), 100):  # MLflow's batch limit
            self.client.log_batch(run_id, params=items[i : i + 100])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        items = [Metric(metric_key(k), float(v), now, int(step)) for k, v in metrics.items()]
        for i in range(0, len(items), 1000):
            self.client.log_batch(run_id, metrics=items[i : i + 1000])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.client.log_batch(run_id, tags=[RunTag(k, mask_url(v)) for k, v in tags.items()])

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        if path.is_dir():
            self.client.log_artifacts(run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(run_id, str(path), artifact_path)

    def download(self, run_id: str, artifact_path: str, dst: Path) -> Path:
        import mlflow.artifacts

        dst.mkdir(parents=True, exist_ok=True)
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=artifact_path, dst_path=str(dst), tracking_uri=database_url(self.uri)
        )
        return Path(local)

    def finish(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status)


def _param_str(value: Any) -> str:
    text = mask_url(value)
    return text if len(text) <= PARAM_MAX_CHARS else text[: PARAM_MAX_CHARS - 3] + "..."
