"""Stores for the at-scale tests: a PostgreSQL server on loopback (scripts/start_postgres.sh) with
fresh databases per test, a journal file, and helpers to start sweep workers as processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().parent / "sweep_worker.py"
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """``postgresql://user@127.0.0.1:port`` of a running server (no database part).

    ``EVILM_TEST_POSTGRES_URL`` names one; otherwise scripts/start_postgres.sh starts one (CI's
    .ci/run installs PostgreSQL first, so there the test never skips).
    """
    url = os.environ.get("EVILM_TEST_POSTGRES_URL")
    if not url:
        if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
            pytest.skip("PostgreSQL is not installed (apt-get install postgresql, or run .ci/run)")
        out = subprocess.run(
            ["bash", str(REPO / "scripts" / "start_postgres.sh"), "--no-install"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if out.returncode != 0:
            pytest.fail(f"scripts/start_postgres.sh failed:\n{out.stderr}")
        url = out.stdout.strip().split("=", 1)[1]
    return url.rsplit("/", 1)[0].replace("postgresql+psycopg2://", "postgresql://", 1)


@pytest.fixture
def postgres_db(postgres_server):
    """A function that creates a fresh database and returns its URL; all are dropped afterwards."""
    import psycopg2

    made = []

    def connect():
        conn = psycopg2.connect(f"{postgres_server}/postgres")
        conn.autocommit = True
        return conn

    def create(purpose: str, template: str | None = None) -> str:
        name = f"evilm_test_{purpose}_{uuid.uuid4().hex[:8]}"
        conn = connect()  # (not `with conn`: that opens a transaction, which CREATE DATABASE refuses)
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        finally:
            conn.close()
        made.append(name)
        # SQLAlchemy 2.1 reads plain postgresql:// as psycopg 3; psycopg2-binary is what is installed
        return f"{postgres_server.replace('postgresql://', 'postgresql+psycopg2://', 1)}/{name}"

    create.server = postgres_server
    yield create
    conn = connect()
    with conn.cursor() as cur:
        for name in made:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


@pytest.fixture(scope="session")
def template_mlflow(tmp_path_factory) -> Path:
    """An empty, migrated MLflow SQLite store (migrations take seconds: made once, then copied)."""
    from mlflow.tracking import MlflowClient

    from experiments.tracking import quiet_mlflow

    quiet_mlflow()
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


def _has_postgres() -> bool:
    return bool(
        os.environ.get("EVILM_TEST_POSTGRES_URL") or list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    )


@pytest.fixture(params=["journal", "postgresql"])
def stores(request, tmp_path, template_mlflow):
    """(Optuna storage, MLflow tracking URI): a journal file + SQLite on one machine, or PostgreSQL."""
    return _stores(request, request.param, tmp_path, template_mlflow)


@pytest.fixture
def best_stores(request, tmp_path, template_mlflow):
    """PostgreSQL where it is installed (Optuna's heartbeat), else a journal file (dead-pid check)."""
    return _stores(request, "postgresql" if _has_postgres() else "journal", tmp_path, template_mlflow)


def _stores(request, kind, tmp_path, template_mlflow):
    if kind == "journal":
        db = tmp_path / "mlflow.db"
        shutil.copy(template_mlflow, db)
        return f"journal://{tmp_path / 'optuna.journal'}", f"sqlite:///{db}"
    create = request.getfixturevalue("postgres_db")
    template = request.getfixturevalue("postgres_mlflow_template")
    return create("optuna"), create("mlflow", template)


@pytest.fixture(scope="session")
def postgres_mlflow_template(postgres_server):
    """A database with MLflow's schema, made once per session: MLflow migrates an empty database on first
    use, and two workers doing that at once collide (at scale: `mlflow db upgrade URL` once, first)."""
    import psycopg2

    name = f"evilm_test_mlflow_template_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(f"{postgres_server}/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = postgres_server.replace("postgresql://", "postgresql+psycopg2://", 1)
    # in a process of its own, so that no pooled connection is left on the template (copying needs none)
    migrate = f"from mlflow.tracking import MlflowClient; MlflowClient('{url}/{name}').search_experiments()"
    subprocess.run([sys.executable, "-c", migrate], check=True, capture_output=True, timeout=120)
    yield name
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


@pytest.fixture
def start_worker():
    """The worker launcher below (a fixture: test modules cannot import from a conftest by name)."""
    return _start_worker


def _start_worker(tmp_path: Path, name: str, storage: str, tracking: str, *extra: str) -> subprocess.Popen:
    """``python -m experiments sweep fakesweep --worker`` (fake stages) in its own runs folder, as if on
    another machine; the study and the MLflow store are shared."""
    cmd = [
        sys.executable,
        str(WORKER),
        "sweep",
        "fakesweep",
        "--worker",
        "--quiet",
        "--specs",
        str(tmp_path / "ablations"),
        "--storage",
        storage,
        "--tracking-uri",
        tracking,
        "--runs-dir",
        str(tmp_path / f"runs-{name}"),
        "--reports-dir",
        str(tmp_path / f"reports-{name}"),
        "--set",
        f"qa.log_dir={tmp_path}",
        *extra,
    ]
    log = open(tmp_path / f"{name}.log", "w")
    return subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
