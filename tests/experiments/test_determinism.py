"""Same machine, same command, same numbers: a small real table (Table 6's default row on the smoke
world, tiny budgets) runs twice in fresh processes, once with one lane and once with two, each with its
own store and runs folder (so the world is generated twice), and every metric every stage logged is
compared exactly, step by step. The report header names what a rerun elsewhere would differ by."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.plan import build_plan, table_variants
from experiments.specs import load_spec, parse_sets
from experiments.tracking import TAG, Tracker

REPO = Path(__file__).resolve().parents[2]
SPEC = """\
kind: table
title: "Same machine, same numbers: Table 6's default row, tiny"
base: evilm
profile: smoke
seeds: [0]
columns:
  - {id: voc_rate, label: VOC, stage: tokenizer, metric: train_eval_usage_rate, per_item: false}
  - {id: hmdb51, label: HMDB51, stage: hmdb51, metric: "hmdb51_probe/top1"}
  - {id: msrvtt_qa, label: QA, stage: msrvtt_qa, metric: "msrvtt_qa/acc"}
rows:
  - {id: focal, label: focal}
"""
TINY = ["pretrain.max_steps=2", "msrvtt_qa.train.train_items=16", "hmdb51.probe_epochs=5", "data.scale=0.5",
        "tokenizer.data.num_workers=0"]


def _run(tmp_path: Path, specs: Path, name: str, jobs: int) -> Tracker:
    store = f"sqlite:///{tmp_path / name / 'mlflow.db'}"
    cmd = [sys.executable, "-m", "experiments", "run", "determinism", "--specs", str(specs), "--quiet",
           "--jobs", str(jobs), "--tracking-uri", store, "--runs-dir", str(tmp_path / name / "runs"),
           "--reports-dir", str(tmp_path / name / "reports")]
    for item in TINY:
        cmd += ["--set", item]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return Tracker(store, tmp_path / name / "runs")


# how long, not what: wall-clock measurements are the only metrics allowed to differ
TIMING = re.compile(r"(seconds|_per_s|_per_second|data_fraction)$")  # data_fraction: share of time spent waiting for data


def _logged(tracker: Tracker, stage_id: str) -> dict[str, list[tuple[int, float]]]:
    run = tracker.client.get_run(tracker.finished_run(stage_id).info.run_id)
    return {
        key: sorted((m.step, m.value) for m in tracker.client.get_metric_history(run.info.run_id, key))
        for key in run.data.metrics
        if not TIMING.search(key)
    }


@pytest.mark.slow
def test_a_table_twice_in_fresh_processes_logs_the_same_numbers(tmp_path):
    specs = tmp_path / "specs"
    (specs / "base").mkdir(parents=True)
    shutil.copy(REPO / "ablations" / "base" / "evilm.yaml", specs / "base" / "evilm.yaml")
    (specs / "determinism.yaml").write_text(SPEC)
    first, second = _run(tmp_path, specs, "one", jobs=1), _run(tmp_path, specs, "two", jobs=2)

    spec = load_spec("determinism", specs)
    plan = build_plan(spec.name, table_variants(spec, specs, "smoke", parse_sets(TINY)), "smoke", [0])
    assert sorted(s.name for s in plan.stages.values()) == ["clip_prior", "data", "hmdb51", "image_prior", "msrvtt_qa",
                                                          "pretrain", "tokenizer"]
    for sid, stage in plan.stages.items():
        a, b = _logged(first, sid), _logged(second, sid)
        assert a and a == b, f"stage {stage.name} logged other numbers in its second run"
        if stage.name == "pretrain":
            assert len(a["train/loss"]) >= 2  # per-step values, not only the final one

    header = (tmp_path / "one" / "reports" / "determinism.md").read_text().split("\n## ", 1)[0]
    hardware = header.split("- **Hardware**: ", 1)[1].splitlines()[0]
    assert "kernels " in hardware and "1 torch thread;" in hardware and "torch 2." in hardware, hardware
    tags = first.finished_run(next(iter(plan.stages))).data.tags
    assert tags[f"{TAG}threads"] and tags[f"{TAG}cpu"]
