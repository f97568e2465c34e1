"""Credentials never reach logs, params or tags; storages are parsed as documented."""

from __future__ import annotations

import shutil
from pathlib import Path

from experiments.sweep import journal_path
from experiments.tracking import Tracker, database_url, mask_url


def test_mask_url_hides_passwords_only():
    assert mask_url("postgresql://bob:s3cret@db:5432/evilm") == "postgresql://bob:***@db:5432/evilm"
    assert mask_url("x postgresql+psycopg2://u:p@h/d y") == "x postgresql+psycopg2://u:***@h/d y"
    assert mask_url("postgresql://bob@db/evilm") == "postgresql://bob@db/evilm"
    assert mask_url("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"
    assert "s3cret" not in mask_url(database_url("postgresql://bob:s3cret@db/evilm"))
    # an empty user, and a password in the query string
    assert mask_url("postgresql://:s3cret@db/evilm") == "postgresql://:***@db/evilm"
    assert mask_url("postgresql://db/evilm?user=bob&password=s3cret&sslmode=require") == (
        "postgresql://db/evilm?user=bob&password=***&sslmode=require"
    )
    assert mask_url("mysql://db/x?PWD=s3cret") == "mysql://db/x?PWD=***"


def test_params_and_tags_are_masked(tmp_path, template_mlflow):
    db = tmp_path / "mlflow.db"
    shutil.copy(template_mlflow, db)
    tracker = Tracker(f"sqlite:///{db}", tmp_path / "runs")
    run = tracker.start("exp", "r", {"evilm.storage": "postgresql://bob:s3cret@db/optuna"})
    tracker.log_params(run, {"storage": {"url": "postgresql://bob:s3cret@db/optuna"}})
    data = tracker.client.get_run(run).data
    assert data.params["storage.url"] == "postgresql://bob:***@db/optuna"
    assert data.tags["evilm.storage"] == "postgresql://bob:***@db/optuna"


def test_journal_storage_urls():
    assert journal_path("journal:///tmp/a/optuna.journal") == Path("/tmp/a/optuna.journal")
    assert journal_path("studies/optuna.log") == Path("studies/optuna.log")
    assert journal_path("postgresql://h/db") is None and journal_path("sqlite:///x.log") is None


def test_an_unreachable_store_error_names_it_without_its_password():
    import pytest

    from experiments.tracking import StoreError, probe_store

    with pytest.raises(StoreError) as err:
        probe_store("tracking store", "postgresql://bob:s3cret@127.0.0.1:1/evilm?password=s3cret", timeout_s=5)
    text = str(err.value)
    assert "\n" not in text and "s3cret" not in text
    assert text.startswith("cannot reach the tracking store postgresql://bob:***@127.0.0.1:1/evilm?password=***: ")
    with pytest.raises(StoreError, match="cannot reach the sweep storage http://127.0.0.1:1: .*MLflow server"):
        probe_store("sweep storage", "http://127.0.0.1:1", timeout_s=5)
