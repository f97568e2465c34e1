"""The power planner's arithmetic (normal approximation), on hand-computed cases."""

import math

import numpy as np
import pytest

from experiments.stats import Z80_POWER, Z95, PowerPlan, diff_interval, power_plan


def test_seeds_needed_from_the_seed_spread_alone():
    plan = PowerPlan(delta=1.0, sd_seeds=2.0, sd_items=None, seeds=3, items=None)
    # 1.96 * 2 / sqrt(n) < 1  <=>  n > 15.37
    assert plan.seeds_needed(Z95) == 16 and plan.seeds_needed(Z80_POWER) == math.ceil(4 * 2.8**2)
    assert plan.half_width(16, None) < 1.0 < plan.half_width(15, None)
    assert plan.items_needed() is None  # no per-item results: the items' share is unknown


def test_seeds_and_items_share_the_budget():
    plan = PowerPlan(delta=3.0, sd_seeds=2.0, sd_items=10.0, seeds=3, items=100)
    # (3 / 1.96)^2 = 2.343; the items take 10^2 / 100 = 1, leaving 1.343 for 4 / n: n = 3
    assert plan.seeds_needed() == 3
    # at 3 seeds the seeds take 4 / 3, leaving 1.0095 for 100 / N: N = 100
    assert plan.items_needed() == 100
    assert plan.half_width(3, 100) == pytest.approx(1.96 * math.sqrt(4 / 3 + 1))
    # a difference smaller than the items' noise alone needs more items before any number of seeds helps
    small = PowerPlan(delta=1.5, sd_seeds=2.0, sd_items=10.0, seeds=3, items=100)
    assert small.seeds_needed() is None and small.items_needed(seeds=1000) is not None
    # and one the seeds' noise alone swamps needs more seeds before any number of items helps
    assert PowerPlan(delta=1.0, sd_seeds=5.0, sd_items=10.0, seeds=3, items=100).items_needed() is None
    # one seed: the seed spread is unknown
    assert PowerPlan(delta=1.0, sd_seeds=None, sd_items=10.0, seeds=1, items=100).seeds_needed() is None


def test_power_plan_measures_the_paired_noise():
    rng = np.random.default_rng(0)
    base = [(rng.random(500) < 0.5).astype(float) * 100 for _ in range(3)]
    row = [(rng.random(500) < 0.6).astype(float) * 100 for _ in range(3)]
    means = lambda xs: [float(x.mean()) for x in xs]  # noqa: E731
    plan = power_plan(-7.7, means(row), means(base), row, base)
    assert plan.delta == 7.7 and plan.seeds == 3 and plan.items == 500
    assert plan.sd_seeds == pytest.approx(math.sqrt(np.var(means(row), ddof=1) + np.var(means(base), ddof=1)))
    d = np.mean(row, 0) - np.mean(base, 0)
    assert plan.sd_items == pytest.approx(np.std(d, ddof=1))
    # the approximation is in the bootstrap's range
    boot = diff_interval(means(row), means(base), row, base).half_width
    assert 0.5 < plan.half_width(3, 500) / boot < 2.0
    alone = power_plan(1.0, [50.0], [49.0])
    assert alone.sd_seeds is None and alone.sd_items is None and alone.half_width(1, None) is None
