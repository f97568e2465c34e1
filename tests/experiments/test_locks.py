"""Two workers on one runs folder: a stage runs once; the second waits for it, then reuses it.

(Threads stand in for processes: ``flock`` locks of separately opened files exclude each other
within one process too.)
"""

import io
import os
import threading
import time
from collections import Counter

from experiment_fakes import CALLS, FAKE_KINDS
from rich.console import Console

from experiments.locks import lock_path, stage_lock
from experiments.plan import build_plan, table_variants
from experiments.runner import Runner
from experiments.specs import load_spec
from experiments.tracking import Tracker


def _wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_second_holder_waits_with_a_message_naming_the_first(tmp_path):
    out_dir = tmp_path / "runs" / "abc123"
    order, messages = [], []
    released = threading.Event()

    def second():
        with stage_lock(out_dir, "abc123", messages.append) as waited:
            order.append(("second", waited))

    with stage_lock(out_dir, "abc123") as waited:
        order.append(("first", waited))
        assert lock_path(out_dir).read_text() == str(os.getpid())  # the holder, for the message
        thread = threading.Thread(target=second)
        thread.start()
        _wait_for(lambda: messages, "the second holder to wait")
        assert order == [("first", False)]  # still waiting while the first holds the lock
        released.set()
    thread.join(10)
    assert order == [("first", False), ("second", True)]
    assert messages == [f"waiting for another process running stage abc123 (pid {os.getpid()})"]
    assert not out_dir.exists() and lock_path(out_dir).read_text() == ""  # beside the output folder; released


def test_two_runners_on_one_runs_folder_run_each_stage_once(specs, tracker, tmp_path):
    started, release = tmp_path / "started", tmp_path / "release"
    hold = {"pretrain.started_file": str(started), "pretrain.wait_for": str(release)}
    spec = load_spec("faketable", specs)
    plan = build_plan(spec.name, table_variants(spec, specs, "smoke", hold), "smoke", [0], FAKE_KINDS)
    logs = [io.StringIO(), io.StringIO()]
    # two commands as two processes would be: each its own tracker client on the shared store and runs folder
    runners = [
        Runner(Tracker(tracker.uri, tracker.runs_dir), Console(file=log, width=200), show_progress=False)
        for log in logs
    ]
    outcomes = [None, None]

    def work(i):
        outcomes[i] = runners[i].execute(plan, "faketable")

    first = threading.Thread(target=work, args=(0,))
    first.start()
    _wait_for(lambda: started.with_name("started.0").exists(), "the first runner to start pretraining", 120)
    second = threading.Thread(target=work, args=(1,))
    second.start()
    _wait_for(lambda: "waiting for another process running stage" in logs[1].getvalue(), "the second runner to wait", 120)
    release.write_text("go")
    first.join(120)
    second.join(120)
    for runner in runners:
        runner.close()

    pretrain = next(sid for sid, s in plan.stages.items() if s.kind.name == "pretrain")
    assert f"running stage {pretrain} (pid {os.getpid()})" in logs[1].getvalue()
    assert outcomes[0][pretrain].status == "ran" and outcomes[1][pretrain].status == "reused"
    assert outcomes[1][pretrain].metrics == outcomes[0][pretrain].metrics
    assert all(o.ok for run in outcomes for o in run.values())
    # every stage ran once, in one runner or the other
    assert Counter(kind for kind, _ in CALLS) == Counter(s.kind.name for s in plan.stages.values())
