from collections import Counter

import optuna
import pytest
from conftest import CALLS, FAKE_KINDS

from experiments.specs import load_spec
from experiments.sweep import Sweep
from experiments.tracking import TAG


def make_sweep(specs, tracker, runner, tmp_path, cli_set=None):
    spec = load_spec("fakesweep", specs)
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"  # a copy of the session's empty storage (optuna_url)
    return Sweep(
        spec,
        specs,
        tracker,
        runner,
        "smoke",
        [0],
        cli_set or {},
        storage=storage,
        kinds=FAKE_KINDS,
        reports_dir=tmp_path / "reports",
    )


def complete_points(sweep):
    trials = sweep.study().get_trials(deepcopy=False)
    return Counter(t.params["qa.quality"] for t in trials if t.state == optuna.trial.TrialState.COMPLETE)


def test_sweep_resumes_after_interruption_without_duplicates(specs, tracker, runner, tmp_path, optuna_url):
    # first invocation: the point 0.5 is interrupted (Ctrl-C inside its stage)
    interrupted = make_sweep(specs, tracker, runner, tmp_path, {"qa.interrupt_if": 0.5})
    first = make_sweep(specs, tracker, runner, tmp_path)
    assert interrupted.name != first.name  # overrides are part of the study's identity
    # same study, stage raising only for one point: use the name of the plain sweep
    interrupted.name = first.name
    with pytest.raises(KeyboardInterrupt):
        interrupted.run()
    done_before = complete_points(first)
    assert 0.5 not in done_before and sum(done_before.values()) < 4

    CALLS.clear()
    result = first.run()
    assert complete_points(first) == Counter({0.1: 1, 0.3: 1, 0.5: 1, 0.7: 1})
    assert result.remaining == 0 and result.failed_now == 0
    # points finished before the interruption were not run again, and data/tokenizer/pretrain were reused
    evals = [label for kind, label in CALLS if kind == "downstream"]
    assert len(evals) == 4 - sum(done_before.values())
    assert all(kind == "downstream" for kind, _ in CALLS)

    # every trial is an MLflow child run of the sweep's run
    parents = tracker.search(f"tags.`{TAG}role` = 'sweep'")
    assert len(parents) == 1
    children = tracker.search(f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'")
    assert sorted(r.info.status for r in children).count("FINISHED") == 4
    assert (tmp_path / "reports" / "fakesweep.md").exists() and (
        tmp_path / "reports" / "fakesweep.png"
    ).exists()
    text = (tmp_path / "reports" / "fakesweep.md").read_text()
    assert "paper's choice" in text and "4 complete" in text
    # one seed, but the objective's per-item results give each point an interval over the test items
    rows = [line for line in text.splitlines() if line.startswith("| ") and "| items |" in line]
    assert len(rows) == 4 and all("[" in line for line in rows)
    assert "no setting distinguishable at this budget" in text or "its interval excludes the runner-up's" in text

    # a third run has nothing to do
    CALLS.clear()
    again = first.run()
    assert CALLS == [] and again.remaining == 0
    assert complete_points(first) == Counter({0.1: 1, 0.3: 1, 0.5: 1, 0.7: 1})


def test_failed_and_stale_points_are_rerun(specs, tracker, runner, tmp_path, optuna_url):
    sweep = make_sweep(specs, tracker, runner, tmp_path)
    study = sweep.study()
    # a trial left RUNNING by a killed process (never told)
    stale = study.ask({"qa.quality": optuna.distributions.CategoricalDistribution([0.1, 0.3, 0.5, 0.7])})
    assert stale.params == {"qa.quality": stale.params["qa.quality"]}
    # a point whose stage fails: fail it once through the pipeline
    failing = make_sweep(specs, tracker, runner, tmp_path, {"qa.fail": True})
    failing.name = sweep.name
    result = failing.run(n_trials=1)
    assert result.failed_now == 1

    result = sweep.run()
    assert result.failed_now == 0 and result.remaining == 0
    assert complete_points(sweep) == Counter({0.1: 1, 0.3: 1, 0.5: 1, 0.7: 1})
    states = Counter(t.state.name for t in sweep.study().get_trials(deepcopy=False))
    assert states["FAIL"] == 2  # the stale trial and the failed one, kept as history


def test_n_trials_limits_one_invocation(specs, tracker, runner, tmp_path, optuna_url):
    sweep = make_sweep(specs, tracker, runner, tmp_path)
    assert sweep.run(n_trials=2).remaining == 2
    assert sum(complete_points(sweep).values()) == 2
    assert sweep.run().remaining == 0
    assert complete_points(sweep) == Counter({0.1: 1, 0.3: 1, 0.5: 1, 0.7: 1})
