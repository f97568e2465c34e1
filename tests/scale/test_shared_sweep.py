"""Several sweep workers sharing one study and one MLflow store: PostgreSQL (workers on many
machines) and a journal file (local workers); a worker SIGKILLed mid-trial loses nothing."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import optuna
from mlflow.tracking import MlflowClient
from scale_fakes import GRID, calls, write_specs

from experiments.sweep import open_storage


def _study(storage_url: str) -> optuna.Study:
    storage = open_storage(storage_url)
    names = [n for n in optuna.get_all_study_names(storage) if ":claim:" not in n]
    assert len(names) == 1, names
    return optuna.load_study(study_name=names[0], storage=storage)


def _runs(tracking: str, role: str):
    client = MlflowClient(tracking)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, f"tags.`evilm.role` = '{role}'", max_results=1000)


def _stage_runs(tracking: str, stage: str):
    client = MlflowClient(tracking)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, f"tags.`evilm.stage` = '{stage}'", max_results=1000)


def _wait(proc, tmp_path: Path, name: str, timeout: float = 60) -> int:
    rc = proc.wait(timeout=timeout)
    assert rc == 0, (tmp_path / f"{name}.log").read_text()
    return rc


def test_two_workers_run_every_point_once(tmp_path, stores, start_worker):
    storage, tracking = stores
    write_specs(tmp_path / "ablations")
    slow = ("--set", "qa.seconds=0.2")  # each point takes a while, so the workers overlap
    workers = [start_worker(tmp_path, f"w{i}", storage, tracking, *slow) for i in range(2)]
    for i, proc in enumerate(workers):
        _wait(proc, tmp_path, f"w{i}")

    ran = Counter(calls(tmp_path))
    assert ran == Counter(GRID), f"each grid point must run exactly once across workers: {ran}"
    study = _study(storage)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.params["qa.quality"] for t in complete) == sorted(GRID)
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in study.trials)
    assert sorted(round(t.value, 6) for t in complete) == sorted(GRID)  # accuracy = quality here
    # both workers took part (each ran at least one point), and they share the MLflow store
    assert len({t.system_attrs["evilm.pid"] for t in complete}) == 2

    trial_runs = _runs(tracking, "trial")
    assert len(trial_runs) == len(GRID)
    assert {r.info.status for r in trial_runs} == {"FINISHED"}
    assert sorted(float(r.data.params["qa.quality"]) for r in trial_runs) == sorted(GRID)
    qa_runs = _stage_runs(tracking, "qa")
    assert len(qa_runs) == len(GRID) and {r.info.status for r in qa_runs} == {"FINISHED"}
    assert len(_runs(tracking, "sweep")) >= 1


def test_killed_worker_point_is_rerun(tmp_path, best_stores, start_worker):
    storage, tracking = best_stores
    write_specs(tmp_path / "ablations")
    block = tmp_path / "blocked.pid"
    hang = ("--set", "qa.block_at=0.3", "--set", f"qa.block_file={block}", "--heartbeat", "1")
    victim = start_worker(tmp_path, "victim", storage, tracking, *hang)
    deadline = time.monotonic() + 60
    while not block.exists():
        assert victim.poll() is None, (tmp_path / "victim.log").read_text()
        assert time.monotonic() < deadline, "the worker never reached the blocking point"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()  # reaped: its pid is gone
    killed_at = time.monotonic()

    study = _study(storage)
    running = [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    assert [t.params["qa.quality"] for t in running] == [0.3]
    killed_run = running[0].user_attrs["mlflow_run_id"]
    assert MlflowClient(tracking).get_run(killed_run).info.status == "RUNNING"

    time.sleep(max(0.0, 2.5 - (time.monotonic() - killed_at)))  # heartbeat 1 s: stale after 2 s
    _wait(start_worker(tmp_path, "next", storage, tracking, *hang), tmp_path, "next")

    ran = Counter(calls(tmp_path))
    assert ran[0.3] == 2, ran  # killed once, rerun once
    assert all(ran[q] == 1 for q in GRID if q != 0.3), ran
    study = _study(storage)
    states = Counter((t.params["qa.quality"], t.state.name) for t in study.trials if t.state.name != "PRUNED")
    assert states[(0.3, "FAIL")] == 1
    assert all(states[(q, "COMPLETE")] == 1 for q in GRID), states
    assert not any(s == "RUNNING" for _, s in states)

    client = MlflowClient(tracking)
    assert client.get_run(killed_run).info.status == "KILLED"  # never FINISHED
    trial_runs = _runs(tracking, "trial")
    assert Counter(r.info.status for r in trial_runs) == {"FINISHED": len(GRID), "KILLED": 1}
    qa = Counter((float(r.data.params["quality"]), r.info.status) for r in _stage_runs(tracking, "qa"))
    assert qa[(0.3, "FINISHED")] == 1 and qa[(0.3, "RUNNING")] == 0, qa
