"""Fake stages and a small specs tree for testing the runner's machinery.

The fakes follow the stage contract (``run(config, inputs, out_dir, on_metrics)
-> StageResult``) and record every call in ``CALLS``, so a test can tell a
reused stage from one that ran. Stages run in worker processes, so ``CALLS`` is a
file (``$EVILM_TEST_CALLS``, set per test by conftest.py) that every process
appends to. A module of its own (not conftest.py) so that workers import the
fakes by a name no other test folder uses.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evilm.stage import StageResult, report
from experiments.stages import Input, StageKind

CALLS_ENV = "EVILM_TEST_CALLS"


class CallLog:
    """(kind, label) per executed fake stage, in whichever process it ran: lines of the file
    ``$EVILM_TEST_CALLS`` (one short ``O_APPEND`` write per call is atomic). Compares, counts and
    iterates like the list it stands for."""

    def _path(self) -> Path | None:
        value = os.environ.get(CALLS_ENV)
        return Path(value) if value else None

    def append(self, item: tuple[str, str]) -> None:
        path = self._path()
        if path is None:
            return
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, (json.dumps(list(item)) + "\n").encode())
        finally:
            os.close(fd)

    def items(self) -> list[tuple[str, str]]:
        path = self._path()
        if path is None or not path.exists():
            return []
        return [tuple(json.loads(line)) for line in path.read_text().splitlines() if line]

    def clear(self) -> None:
        path = self._path()
        if path is not None:
            path.write_text("")

    def __iter__(self):
        return iter(self.items())

    def __len__(self) -> int:
        return len(self.items())

    def __contains__(self, item) -> bool:
        return tuple(item) in self.items()

    def __eq__(self, other) -> bool:
        return self.items() == [tuple(x) for x in other]

    def __repr__(self) -> str:
        return repr(self.items())


CALLS = CallLog()


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
    seconds: float = 0.0  # how long a run takes
    started_file: str = ""  # "<started_file>.<seed>" gets the worker's pid when it starts
    wait_for: str = ""  # waits until this file exists (a test holds the stage running)
    crash: bool = False  # the worker process dies (SIGKILL)
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
    if config.started_file:
        Path(f"{config.started_file}.{config.seed}").write_text(str(os.getpid()))
    deadline = time.monotonic() + 120
    while config.wait_for and not Path(config.wait_for).exists():
        assert time.monotonic() < deadline, "the test never released the stage"
        time.sleep(0.02)
    if config.crash:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(config.seconds)
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


@dataclass
class ThreadsConfig:
    seed: int = 0


def fake_threads(config: ThreadsConfig, inputs, out_dir: Path, on_metrics=None) -> StageResult:
    """Reports the torch thread count it ran with (the runner sets it from the plan)."""
    import torch

    CALLS.append(("threads", f"s{config.seed}"))
    return StageResult({"threads": float(torch.get_num_threads()), "pid": float(os.getpid())}, {})


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
    "threads": StageKind("threads", fake_threads, ThreadsConfig),
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
