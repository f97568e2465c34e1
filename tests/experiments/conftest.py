"""Fixtures for the runner's tests: a fresh MLflow store, runs folder and call log per test (the store
is migrated once per session and copied: schema migrations take seconds). The fake stages and specs
are in experiment_fakes.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from experiment_fakes import (  # noqa: F401  (re-exported for the tests)
    CALLS,
    CALLS_ENV,
    FAKE_KINDS,
    PIPELINE,
    SWEEP,
    TABLE,
    dedent,
    write_specs,
)


@pytest.fixture(scope="session")
def template_store(tmp_path_factory) -> Path:
    """An empty, migrated MLflow SQLite store, made once per session."""
    from mlflow.tracking import MlflowClient

    from experiments.tracking import quiet_mlflow

    quiet_mlflow()
    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture(scope="session")
def template_optuna(tmp_path_factory) -> Path:
    """An empty Optuna SQLite storage, made once per session."""
    import optuna

    path = tmp_path_factory.mktemp("optuna") / "optuna.db"
    optuna.storages.RDBStorage(f"sqlite:///{path}")
    return path


@pytest.fixture
def optuna_url(tmp_path, template_optuna) -> str:
    db = tmp_path / "optuna.db"
    shutil.copy(template_optuna, db)
    return f"sqlite:///{db}"


@pytest.fixture
def specs(tmp_path) -> Path:
    return write_specs(tmp_path / "ablations")


@pytest.fixture
def store_uri(tmp_path, template_store) -> str:
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(template_store, db)
    return f"sqlite:///{db}"


@pytest.fixture
def tracker(tmp_path, store_uri):
    """A local store: stage outputs stay in the runs folder only."""
    from experiments.tracking import Tracker

    return Tracker(store_uri, tmp_path / "runs")


@pytest.fixture
def shared_tracker(tmp_path, store_uri):
    """The same store treated as shared with other machines: outputs are copied into it."""
    from experiments.tracking import Tracker

    return Tracker(store_uri, tmp_path / "runs", copy_outputs=True)


@pytest.fixture
def runner(tracker):
    from experiments.runner import Runner

    with Runner(tracker, show_progress=False) as runner:
        yield runner


@pytest.fixture(autouse=True)
def _calls(tmp_path, monkeypatch):
    """A call log for this test, which the workers (spawned by the runner) inherit."""
    monkeypatch.setenv(CALLS_ENV, str(tmp_path / "calls.log"))
    CALLS.clear()
    yield
