"""MLflow as the record of every stage run, and the cache of finished ones.

The store is ``sqlite:///mlflow.db`` in the working directory unless
``MLFLOW_TRACKING_URI`` says otherwise, so a plain ``mlflow ui`` there shows
every run. A stage's run carries the tag ``evilm.stage_id``; a run is reused
only if its status is ``FINISHED``, which the runner sets after the stage's
outputs are written and logged. Everything else (``FAILED``, ``KILLED``, or
``RUNNING`` left by a killed process) is never reused.

MLflow loads only when the store is read or written: with a local SQLite store, a finished stage's
manifest (``runs/<id>/_stage.json``, written after its run is FINISHED) answers ``finished_run``
by itself, so planning and reusing a cached table imports no MLflow. A store out of reach is a
``StoreError``: one line naming it (password masked) and what to check.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TAG = "evilm."
PARAM_MAX_CHARS = 6000
REPO_DIR = Path(__file__).resolve().parent.parent


def default_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^/\s:@]*):[^@/\s]*@")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&](?:password|passwd|pwd)=)[^&#\s]*", re.IGNORECASE)


def mask_url(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` URL in it (the user may be
    empty) and every ``?password=...`` query value replaced by ``***``, so database URLs can go to
    logs, tags and params without their credentials."""
    text = _URL_PASSWORD.sub(r"\g<head>:***@", str(text))
    return _QUERY_PASSWORD.sub(r"\g<head>***", text)


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


def hardware(threads: int | None = None) -> str:
    """This process's machine in one line: CPU model (family, model) and count, the kernel level torch
    chose and the CPU extensions oneDNN/MKL use, torch's thread count, the numeric libraries' versions
    (``experiments/machine.py``; the runner tags each stage with the facts of the process that ran it)."""
    from experiments import machine

    return machine.describe(machine.facts(threads))


# --- stores out of reach ---------------------------------------------------------------------


class StoreError(RuntimeError):
    """A tracking store or sweep storage that cannot be reached: the message is one line naming it
    (password masked), why, and what to check."""

    def __init__(self, what: str, uri: str, cause: BaseException | str):
        self.what, self.uri = what, mask_url(uri)
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        reason = re.sub(r"^\([\w.]+\)\s*", "", mask_url(reason))  # SQLAlchemy's "(psycopg2.OperationalError) "
        super().__init__(f"cannot reach the {what} {self.uri}: {reason}. {_what_to_check(uri)}")


def _what_to_check(uri: str) -> str:
    scheme = uri.partition("://")[0].lower() if "://" in uri else ""
    if scheme.startswith(("postgresql", "mysql", "mssql")):
        return (
            "Check that the database server runs and is reachable from here (host, port, firewall), "
            "that the database exists, and the user name and password."
        )
    if scheme in ("http", "https"):
        return "Check that the MLflow server runs (`mlflow server`) at that address and is reachable from here."
    return "Check that its folder exists and is writable, or pass another --tracking-uri / --storage."


def probe_store(what: str, uri: str, timeout_s: float = 10.0) -> None:
    """Raise ``StoreError`` if the store at ``uri`` cannot be reached, within about ``timeout_s``.

    Checked before MLflow or Optuna open it: MLflow retries a refused database connection for
    minutes, and both end in a traceback hundreds of lines long."""
    url = database_url(uri)
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme.startswith(("postgresql", "mysql", "mssql")):
        with store_errors(what, uri):
            import sqlalchemy
            from sqlalchemy.pool import NullPool

            args = {"connect_timeout": int(timeout_s)} if scheme.startswith(("postgresql", "mysql")) else {}
            engine = sqlalchemy.create_engine(url, connect_args=args, poolclass=NullPool)
            try:
                with engine.connect():
                    pass
            finally:
                engine.dispose()
    elif scheme in ("http", "https"):
        import urllib.error
        import urllib.request

        try:
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s).close()
        except urllib.error.HTTPError:
            pass  # a server answered
        except (urllib.error.URLError, OSError) as err:
            raise StoreError(what, uri, getattr(err, "reason", err)) from None
    elif sqlite_path(uri) is not None:
        with store_errors(what, uri):
            sqlite_path(uri).parent.mkdir(parents=True, exist_ok=True)


_UNREACHABLE = ("OperationalError", "InterfaceError", "ConnectionError", "NoSuchModuleError")


@contextmanager
def store_errors(what: str, uri: str) -> Iterator[None]:
    """Turn a failure to connect to or open the store into a ``StoreError``; other errors pass."""
    try:
        yield
    except StoreError:
        raise
    except (OSError, ImportError) as err:
        raise StoreError(what, uri, err) from None
    except Exception as err:
        names = {t.__name__ for t in type(err).__mro__}
        cause = err.__cause__ or err.__context__
        if names & set(_UNREACHABLE) or (cause is not None and type(cause).__name__ in _UNREACHABLE):
            raise StoreError(what, uri, err) from None
        raise


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
    """A thin, explicit wrapper over ``MlflowClient`` (no global active run), opened on first use.

    ``local``: the store is a SQLite file on this machine. Then a finished stage's files live once, in
    ``runs/<stage_id>/`` (the run's tag ``evilm.out_dir`` names it; nothing is copied into MLflow's
    artifact folder), and ``finished_run`` reads the folder's manifest without MLflow. Any other store (PostgreSQL, an MLflow
    server) is shared with other machines: the outputs are copied into its artifact store, and they
    fetch them from there. ``copy_outputs`` overrides that choice (a SQLite file on a shared disk).
    """

    def __init__(
        self, uri: str | None = None, runs_dir: str | Path | None = None, copy_outputs: bool | None = None
    ):
        self.uri = uri or default_tracking_uri()
        self.runs_dir = Path(runs_dir or "runs").resolve()
        self.display_uri = mask_url(self.uri)  # for logs and reports: no password
        self.local = sqlite_path(self.uri) is not None
        self.copy_outputs = (not self.local) if copy_outputs is None else bool(copy_outputs)
        self._experiments: dict[str, str] = {}

    @functools.cached_property
    def client(self):
        """The ``MlflowClient``, made on first use after checking that the store can be reached."""
        probe_store("tracking store", self.uri)
        with store_errors("tracking store", self.uri):
            from mlflow.tracking import MlflowClient

            quiet_mlflow()  # again: importing MLflow set its loggers to INFO
            client = MlflowClient(database_url(self.uri))
            client.search_experiments(max_results=1)
        return client

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
                from mlflow.exceptions import MlflowException

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

    def search_all(self, filter_string: str) -> list:
        """Every run matching ``filter_string`` in any experiment, page by page."""
        ids = self._all_experiment_ids()
        out: list = []
        token = None
        while ids:
            page = self.client.search_runs(ids, filter_string, max_results=5000, page_token=token)
            out += list(page)
            token = page.token
            if not token:
                break
        return out

    def finished_run(self, stage_id: str):
        """The newest FINISHED run of this stage identity, or None: with a local store, from the stage
        folder's manifest when it is there (no MLflow), else from MLflow."""
        if self.local:
            from experiments.manifests import local_run

            run = local_run(self.runs_dir / stage_id, stage_id, self.display_uri)
            if run is not None:
                return run
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
        from mlflow.entities import Param

        items = [Param(k, param_str(v)) for k, v in flatten(params).items()]
        for i in range(0, len(items), 100):  # MLflow's batch limit
            self.client.log_batch(run_id, params=items[i : i + 100])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(metric_key(k), float(v), now, int(step)) for k, v in metrics.items()]
        for i in range(0, len(items), 1000):
            self.client.log_batch(run_id, metrics=items[i : i + 1000])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

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

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, text, artifact_file)

    def finish(self, run_id: str, status: str, end_time: int | None = None) -> None:
        self.client.set_terminated(run_id, status, end_time=end_time)


def param_str(value: Any) -> str:
    text = mask_url(value)
    return text if len(text) <= PARAM_MAX_CHARS else text[: PARAM_MAX_CHARS - 3] + "..."
