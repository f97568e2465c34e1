"""Cheap fake stages and a specs tree for the at-scale tests (shared stores, killed workers).

Worker processes run ``sweep_worker.py``, which puts these kinds in place of the real ones and
calls ``python -m experiments``'s ``main``. Every executed evaluation appends a line to
``calls.log`` in its ``log_dir`` (``O_APPEND`` writes of one short line are atomic), so a test
counts how often each grid point really ran, across processes.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from evilm.stage import StageResult
from experiments.stages import Input, StageKind

GRID = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]


@dataclass
class DataConfig:
    n_items: int = 20
    seed: int = 0


@dataclass
class EvalConfig:
    quality: float = 0.5
    seconds: float = 0.0  # how long an evaluation takes (so that workers overlap)
    log_dir: str = ""  # where calls.log goes
    block_at: float = -1.0  # hang at this quality until killed, once per block file
    block_file: str = ""
    seed: int = 0


def fake_data(config: DataConfig, inputs, out_dir: Path, on_metrics=None) -> StageResult:
    path = out_dir / "items.json"
    tmp = path.with_name(f"items.json.tmp{os.getpid()}")
    tmp.write_text(json.dumps(list(range(config.n_items))))
    tmp.replace(path)
    return StageResult({"items": float(config.n_items)}, {"dataset": path})


def fake_eval(config: EvalConfig, inputs, out_dir: Path, on_metrics=None) -> StageResult:
    items = json.loads(Path(inputs["data"]).read_text())
    if config.log_dir:
        fd = os.open(Path(config.log_dir) / "calls.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, f"{config.quality} {os.getpid()}\n".encode())
        os.close(fd)
    if config.quality == config.block_at and config.block_file and not Path(config.block_file).exists():
        Path(config.block_file).write_text(str(os.getpid()))
        while True:  # the test SIGKILLs this process here
            time.sleep(0.1)
    time.sleep(config.seconds)
    return StageResult({"accuracy": config.quality * len(items) / 20}, {})


KINDS = {
    "data": StageKind("data", fake_data, DataConfig),
    "downstream": StageKind("downstream", fake_eval, EvalConfig, {"data": Input(("data",), "dataset")}),
}

PIPELINE = """\
description: fake pipeline for the at-scale tests
dataset: fake items
stages:
  data: {kind: data, seeded: false}
  qa: {kind: downstream, inputs: {data: data}}
"""

SWEEP = f"""\
kind: sweep
title: "Fake sweep over quality"
base: fake
profile: smoke
seeds: [0]
params:
  qa.quality: {{grid: {GRID}}}
objective: {{stage: qa, metric: accuracy}}
"""


def write_specs(root: Path) -> Path:
    (root / "base").mkdir(parents=True)
    (root / "sweeps").mkdir()
    (root / "base" / "fake.yaml").write_text(PIPELINE)
    (root / "sweeps" / "fakesweep.yaml").write_text(SWEEP)
    return root


def calls(log_dir: Path) -> list[float]:
    path = Path(log_dir) / "calls.log"
    return [float(line.split()[0]) for line in path.read_text().splitlines()] if path.exists() else []
