"""The dry run's estimate of a plan's compute (experiments/estimate.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from experiments.estimate import PlanEstimate, describe, estimate


def outcome(name: str, status: str, seconds: float = 0.0, kind: str = "train"):
    return SimpleNamespace(stage=SimpleNamespace(name=name, kind=SimpleNamespace(name=kind)), status=status,
                           seconds=seconds)


def test_done_stages_count_their_seconds_and_stages_to_run_the_median_of_the_newest_past_runs():
    past = {("pretrain", "train"): [300.0, 400.0, 1000.0] + [5000.0] * 20,  # newest first
            ("qa", "train"): [80.0], ("qa", "supervised"): [900.0]}
    todo = [outcome("pretrain", "todo"), outcome("pretrain", "todo"), outcome("qa", "todo"),
            outcome("qa", "todo", kind="supervised"), outcome("probe", "todo")]
    est = estimate([outcome("data", "done", 60.0), *todo], past)
    # the median of the 10 newest pretraining runs (300, 400, 1000 and seven of 5000) is 5000
    assert (est.done, est.done_s, est.todo) == (1, 60.0, 5)
    assert est.todo_s == pytest.approx(2 * 5000.0 + 80.0 + 900.0)  # each qa stage at its own kind's past
    assert est.no_basis == {"probe": 1}
    assert est.cold_s == pytest.approx(60.0 + 10980.0)


def test_estimates_add_up_and_describe_what_they_do_not_count():
    a = estimate([outcome("pretrain", "todo")], {("pretrain", "train"): [120.0]})
    b = estimate([outcome("probe", "todo"), outcome("data", "done", 30.0)], {})
    total = a + b
    assert (total.done, total.todo, total.todo_s, total.no_basis) == (1, 2, 120.0, {"probe": 1})
    text = describe(total, jobs=2)
    assert "30 s recorded for 1 done stage(s)" in text
    assert "about 2 min for the 2 to run (1 of them not counted: no finished run of probe x1" in text
    assert "at --jobs 2: at least 1 min of wall time" in text
    assert "cold (every stage): more than 2 min" in text
    assert describe(PlanEstimate(done=3, done_s=600.0), jobs=1).endswith(
        "cold (every stage): about 10 min, at least 10 min of wall time at --jobs 1")


def test_a_store_with_no_past_runs_gives_no_estimate_rather_than_zero():
    text = describe(estimate([outcome("data", "todo"), outcome("pretrain", "todo")], {}), jobs=2)
    assert "no estimate for the 2 to run: no finished run of data x1, pretrain x1" in text
    assert "0.0 s" not in text and "wall time" not in text

