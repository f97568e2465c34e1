"""Stages in worker processes: independent ones at once, the same results with any number of lanes,
the plan's thread count in each worker, a failure or a dead worker stopping only what depends on it,
Ctrl-C stopping every worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from experiment_fakes import CALLS, FAKE_KINDS

from evilm.processes import pid_alive
from experiments.manifests import MANIFEST
from experiments.plan import build_plan, table_variants
from experiments.runner import Runner
from experiments.specs import load_spec
from experiments.tracking import TAG, Tracker

WORKER = Path(__file__).resolve().with_name("cli_worker.py")


def plan_for(specs, cli_set=None, seeds=(0, 1), threads=1):
    spec = load_spec("faketable", specs)
    variants = table_variants(spec, specs, "smoke", cli_set or {})
    return build_plan(spec.name, variants, "smoke", list(seeds), FAKE_KINDS, threads=threads)


def _intervals(outcomes) -> list[tuple[int, int]]:
    """Each run stage's (start, end) in ms, as its manifest records them."""
    out = []
    for o in outcomes.values():
        if o.status == "ran":
            record = json.loads((o.out_dir / MANIFEST).read_text())
            out.append((record["start_time"], record["end_time"]))
    return sorted(out)


def _overlapping(intervals) -> bool:
    return any(b_start < a_end for (_, a_end), (b_start, _) in zip(intervals, intervals[1:]))


def test_two_lanes_run_independent_stages_at_once_with_the_same_results(specs, tmp_path, store_uri):
    slow = {"pretrain.seconds": 1.0}  # the two seeds' pre-trainings are independent: they overlap
    results = {}
    for jobs in (1, 2):
        tracker = Tracker(store_uri, tmp_path / f"runs-{jobs}")
        with Runner(tracker, show_progress=False, jobs=jobs) as runner:
            outcomes = runner.execute(plan_for(specs, slow), "faketable")
        assert {o.status for o in outcomes.values()} == {"ran"}
        assert _overlapping(_intervals(outcomes)) == (jobs == 2), _intervals(outcomes)
        results[jobs] = {sid: o.metrics for sid, o in outcomes.items()}
    assert results[1] == results[2]  # the same stages (identities) with the same numbers


def test_a_failing_stage_blocks_only_its_downstream_while_others_run_on(specs, tracker):
    with Runner(tracker, show_progress=False, jobs=2) as runner:
        outcomes = runner.execute(plan_for(specs, {"pretrain.fail": True}), "faketable")
    by_status: dict[str, set[str]] = {}
    for o in outcomes.values():
        rows = {v for v, _ in o.stage.uses}
        by_status.setdefault(o.status, set()).add(f"{o.stage.name}/{'+'.join(sorted(rows))}/s{o.stage.seed}")
    assert by_status["failed"] == {"pretrain/mvm/s0", "pretrain/mvm/s1"}
    assert by_status["blocked"] == {f"{n}/mvm/s{s}" for n in ("qa", "mc") for s in (0, 1)}
    assert by_status["ran"] == {"data/mvm+none/sNone"} | {
        f"{n}/{row}/s{s}" for s in (0, 1) for n, row in [("qa", "none"), ("mc", "none"), ("tokenizer", "mvm")]
    }


def test_a_worker_that_dies_fails_its_stage_and_the_next_stage_gets_a_new_worker(specs, tracker):
    with Runner(tracker, show_progress=False, jobs=1) as runner:
        outcomes = runner.execute(plan_for(specs, {"pretrain.crash": True}, seeds=(0,)), "faketable")
        pretrain = next(o for o in outcomes.values() if o.stage.name == "pretrain")
        assert pretrain.status == "failed" and "died (killed by signal 9)" in pretrain.error
        assert tracker.client.get_run(pretrain.run_id).info.status == "FAILED"
        after = runner.execute(plan_for(specs, seeds=(0,)), "faketable")  # the lane is replaced
    assert all(o.ok for o in after.values())


THREADS_PIPELINE = """\
stages:
  probe: {kind: threads}
"""
THREADS_TABLE = """\
kind: table
title: threads
base: threads
profile: smoke
seeds: [0]
columns: [{id: t, label: T, stage: probe, metric: threads, per_item: false}]
rows: [{id: only, label: Only}]
"""


def test_each_stage_runs_with_the_plans_torch_threads_which_are_part_of_its_identity(specs, tracker):
    (specs / "base" / "threads.yaml").write_text(THREADS_PIPELINE)
    (specs / "threadtable.yaml").write_text(THREADS_TABLE)
    spec = load_spec("threadtable", specs)

    def plan(threads):
        return build_plan(spec.name, table_variants(spec, specs, "smoke", {}), "smoke", [0], FAKE_KINDS, threads)

    one, two = plan(1), plan(2)
    assert set(one.stages) != set(two.stages)  # another thread count: another stage, never reused across
    with Runner(tracker, show_progress=False, jobs=1) as runner:
        first = next(iter(runner.execute(one, "threads").values()))
        second = next(iter(runner.execute(two, "threads").values()))
    assert first.metrics["threads"] == 1 and second.metrics["threads"] == 2
    assert first.metrics["pid"] == second.metrics["pid"]  # one lane, reset for each stage
    tags = tracker.client.get_run(second.run_id).data.tags
    assert tags[f"{TAG}threads"] == "2" and "2 torch threads" in tags[f"{TAG}hardware"]
    assert tags[f"{TAG}isa"] and tags[f"{TAG}version.torch"]
    assert first.metrics["pid"] != os.getpid()  # a worker process, not this one


def test_ctrl_c_stops_every_worker_and_marks_their_runs_killed(specs, tmp_path, store_uri):
    started, release = tmp_path / "started", tmp_path / "never"
    cmd = [sys.executable, str(WORKER), "run", "faketable", "--seeds", "0", "1", "--jobs", "2", "--quiet",
           "--specs", str(specs), "--tracking-uri", store_uri, "--runs-dir", str(tmp_path / "runs"),
           "--reports-dir", str(tmp_path / "reports"),
           "--set", f"pretrain.started_file={started}", "--set", f"pretrain.wait_for={release}"]
    log = tmp_path / "command.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ})
    files = [Path(f"{started}.{seed}") for seed in (0, 1)]
    deadline = time.monotonic() + 180
    while not all(f.exists() and f.read_text() for f in files):
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the two pre-trainings never ran at once\n" + log.read_text()
        time.sleep(0.1)
    workers = [int(f.read_text()) for f in files]
    assert len(set(workers)) == 2 and proc.pid not in workers  # two worker processes
    proc.send_signal(signal.SIGINT)  # to the command only: it must stop its workers itself
    assert proc.wait(timeout=60) == 130, log.read_text()
    deadline = time.monotonic() + 30
    while any(pid_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "a worker outlived its command"
        time.sleep(0.1)
    tracker = Tracker(store_uri, tmp_path / "runs")
    runs = tracker.search(f"tags.`{TAG}stage` = 'pretrain'")
    assert sorted(r.info.status for r in runs) == ["KILLED", "KILLED"]
    assert not tracker.search("attributes.status = 'RUNNING'")
    assert "interrupted" in log.read_text()
    assert [k for k, _ in CALLS].count("pretrain") == 2
