"""Fake stages and a small specs tree for testing the runner's machinery.

The fakes follow the stage contract (``run(config, inputs, out_dir, on_metrics)
-> StageResult``) and record every call in ``CALLS``, so a test can tell a
reused stage from one that ran. The MLflow store is created once per session
(schema migrations take seconds) and copied for each test.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from evilm.stage import StageResult, report
from experiments.stages import Input, StageKind

CALLS: list[tuple[str, str]] = []  # (kind, label) per executed fake stage


@dataclass
class DataConfig:
    n_items: int = 30
    seed: int = 0


@dataclass
class TokConfig:
    codebook: int = 8
    seed: int = 0


@dataclass
class TrainConfig:
    steps: int = 3
    lr: float = 0.1
    fail: bool = False
    interrupt: bool = False
    seed: int = 0


@dataclass
class EvalConfig:
    task: str = "qa"
    quality: float = 0.5  # chance that an item is answered right
    fail: bool = False
    interrupt_if: float = -1.0  # raise KeyboardInterrupt when quality equals this (sweep tests)
    seed: int = 0


def _write(path: Path, data) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
    return path


def fake_data(config: DataConfig, inputs, out_dir: Path, on_metrics=None) -> StageResult:
    CALLS.append(("data", f"n{config.n_items}"))
    (out_dir / "clips").mkdir()
    _write(out_dir / "clips" / "index.json", list(range(config.n_items)))
    report(on_metrics, {"clips": config.n_items}, 0)
    return StageResult({"clips": config.n_items}, {"dataset": out_dir / "clips"})


def fake_tok(config: TokConfig, inputs, out_dir: Path, on_metrics=None) -> StageResult:
    CALLS.append(("tokenizer", f"s{config.seed}"))
    n = len(json.loads((inputs["data"] / "clips" / "index.json").read_text()))
    for step in range(2):
        report(on_metrics, {"loss": 1.0 / (step + 1)}, step)
    path = _write(out_dir / "tok.json", {"codebook": config.codebook, "n": n})
    return StageResult({"usage": 0.5 + config.codebook / 100}, {"tokenizer": path})


def fake_train(config: TrainConfig, inputs, out_dir: Path, on_metrics=None) -> StageResult:
    CALLS.append(("pretrain", f"s{config.seed}"))
    if config.interrupt:
        raise KeyboardInterrupt
    if config.fail:
        raise RuntimeError("loss went NaN (fake)")
    for step in range(config.steps):
        report(on_metrics, {"loss": 2.0 - step * config.lr}, step)
    tok = json.loads(Path(inputs["tokenizer"]).read_text()) if "tokenizer" in inputs else None
    (out_dir / "ckpt").mkdir()
    path = _write(out_dir / "ckpt" / "model.json", {"lr": config.lr, "tok": tok})
    return StageResult({"loss": 2.0 - (config.steps - 1) * config.lr}, {"checkpoint": path})


def fake_eval(config: EvalConfig, inputs, out_dir: Path, on_metrics=None) -> StageResult:
    CALLS.append(("downstream", f"{config.task}-q{config.quality}-s{config.seed}"))
    if config.quality == config.interrupt_if:
        raise KeyboardInterrupt
    if config.fail:
        raise RuntimeError("evaluation crashed (fake)")
    n = len(json.loads((Path(inputs["data"]) / "index.json").read_text()))  # the "dataset" artifact
    bump = 0.2 if "checkpoint" in inputs else 0.0
    digest = hashlib.sha256(f"{config.task}{config.seed}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:4], "little"))
    correct = (rng.random(n) < min(1.0, config.quality + bump)).astype(float)
    task = config.task
    per_item = _write(out_dir / "per_item.json", {"accuracy": correct.tolist(), f"{task}/acc": correct.tolist()})
    # "hits@1": MLflow refuses '@' in metric names, so the tracker logs it as "hits_at_1"; "<task>/acc"
    # and "<task>/chance" (4 options) as the real tasks log them, in percent
    metrics = {"accuracy": float(correct.mean()), "hits@1": float(correct.mean())}
    metrics |= {f"{task}/acc": 100 * float(correct.mean()), f"{task}/chance": 25.0}
    return StageResult(metrics, {"per_item": per_item})


FAKE_KINDS = {
    "data": StageKind("data", fake_data, DataConfig),
    "tokenizer": StageKind("tokenizer", fake_tok, TokConfig, {"data": Input(("data",))}),
    "pretrain": StageKind(
        "pretrain",
        fake_train,
        TrainConfig,
        {"data": Input(("data",)), "tokenizer": Input(("tokenizer",), "tokenizer", required=False)},
    ),
    "downstream": StageKind(
        "downstream",
        fake_eval,
        EvalConfig,
        {
            "data": Input(("data",), "dataset"),
            "checkpoint": Input(("pretrain",), "checkpoint", required=False),
        },
    ),
}

PIPELINE = """\
description: fake pipeline for tests
dataset: fake items
stages:
  data: {kind: data, seeded: false}
  tokenizer: {kind: tokenizer, inputs: {data: data}}
  pretrain: {kind: pretrain, inputs: {data: data, tokenizer: tokenizer}}
  qa: {kind: downstream, inputs: {data: data, checkpoint: pretrain}, config: {task: qa}}
  mc: {kind: downstream, inputs: {data: data, checkpoint: pretrain}, config: {task: mc, quality: 0.4}}
profiles:
  smoke: {data.n_items: 30}
  quick: {data.n_items: 60}
"""

TABLE = """\
kind: table
title: "Fake table: effect of the tokenizer"
base: fake
profile: smoke
seeds: [0, 1]
baseline: none
columns:
  - {id: qa, label: QA, stage: qa, metric: accuracy, scale: 100}
  - {id: mc, label: MC, stage: mc, metric: accuracy, scale: 100}
  - {id: usage, label: Usage, stage: tokenizer, metric: usage, per_item: false, scale: 100}
  - {id: hits, label: Hits@1, stage: qa, metric: "hits@1", per_item: false}
rows:
  - id: none
    label: No pretraining
    without: [pretrain, tokenizer]
    paper: {qa: 30.0, mc: 40.0}
  - id: mvm
    label: With MVM
    paper: {qa: 39.3, mc: 50.0, usage: 92.0}
  - id: other
    label: Other method (paper only)
    measured: false
    paper: {qa: 45.0, mc: "64.8*"}
"""

SWEEP = """\
kind: sweep
title: "Fake sweep over quality"
base: fake
profile: smoke
seeds: [0]
params:
  qa.quality: {grid: [0.1, 0.3, 0.5, 0.7]}
objective: {stage: qa, metric: accuracy}
paper: {qa.quality: 0.5}
"""


def write_specs(root: Path) -> Path:
    (root / "base").mkdir(parents=True)
    (root / "sweeps").mkdir()
    (root / "base" / "fake.yaml").write_text(PIPELINE)
    (root / "faketable.yaml").write_text(TABLE)
    (root / "sweeps" / "fakesweep.yaml").write_text(SWEEP)
    return root


def dedent(text: str) -> str:
    return textwrap.dedent(text)


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
def tracker(tmp_path, template_store):
    from experiments.tracking import Tracker

    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(template_store, db)
    return Tracker(f"sqlite:///{db}", tmp_path / "runs")


@pytest.fixture
def runner(tracker):
    from experiments.runner import Runner

    return Runner(tracker, show_progress=False)


@pytest.fixture(autouse=True)
def _reset_calls():
    CALLS.clear()
    yield
    CALLS.clear()
