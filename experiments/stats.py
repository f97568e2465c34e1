"""What a measured number can show: bootstrap intervals, the four verdicts, and how many seeds or test
items a difference needs.

A row's value at one seed is the mean of its per-item results (0/1 correctness, a tie's fractional
credit, a recall hit, ...). An interval resamples both sources of noise: the seeds of each row
(independently: different seeds are different trainings) and the test items (shared: rows scored on the
same items are resampled together, so the difference is paired). Without per-item results it resamples
seeds only; with one seed and no items there is no interval.

The *minimum detectable difference* (MDD) of a comparison is the half-width of its 95% interval: a
difference smaller than that cannot exclude 0 at this budget. A paper difference the interval does not
resolve is therefore *underpowered* when the MDD exceeds it (the suite could not have seen it) and
*not reproduced* only when the MDD is below it (the suite could have seen it, and did not).

The seed and item planner uses the normal approximation: a difference estimated from ``n`` seeds per
row on ``N`` shared test items has variance about ``sd_seeds**2 / n + sd_items**2 / N`` (``sd_seeds``:
the standard deviation of a one-seed difference; ``sd_items``: that of one item's paired difference).
Its 95% half-width is ``1.96 * sqrt(...)``; detecting the effect 80% of the time needs
``|delta| >= 2.8 * sqrt(...)`` (1.96 + 0.84).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z95, Z80_POWER = 1.96, 2.8  # 95% interval; 95% interval that excludes 0 in 80% of repeats


@dataclass
class Interval:
    diff: float  # point estimate: mean over seeds (of a row, or of row minus baseline)
    low: float | None
    high: float | None
    source: str  # "seeds x items", "seeds", "items" or "none"

    def direction(self) -> int:
        """+1 / -1 when the interval excludes zero on that side, 0 when it spans zero (or is missing)."""
        if self.low is None or self.high is None:
            return 0
        if self.low > 0:
            return 1
        if self.high < 0:
            return -1
        return 0

    @property
    def half_width(self) -> float | None:
        """The minimum detectable difference: half the interval's width (None without an interval)."""
        return None if self.low is None or self.high is None else (self.high - self.low) / 2

    def shifted(self, by: float) -> Interval:
        """The interval of (value - ``by``), for a constant ``by`` (chance: a property of the test set)."""
        if self.low is None or self.high is None:
            return Interval(self.diff - by, None, None, self.source)
        return Interval(self.diff - by, self.low - by, self.high - by, self.source)


def diff_interval(
    row: list[float],
    base: list[float],
    row_items: list[np.ndarray] | None = None,
    base_items: list[np.ndarray] | None = None,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Row minus baseline with a percentile bootstrap interval."""
    diff = float(np.mean(row) - np.mean(base))
    rng = np.random.default_rng(seed)
    alpha = (1 - level) / 2
    paired = _aligned(row_items, base_items)
    if paired is not None:
        r, b = paired  # (seeds, items)
        draws = _item_draws(rng, r.shape[1], n_boot)
        boots = _seed_means(rng, _resampled_means(r, draws)) - _seed_means(rng, _resampled_means(b, draws))
        source = "seeds x items" if min(r.shape[0], b.shape[0]) > 1 else "items"
        return Interval(diff, *np.quantile(boots, [alpha, 1 - alpha]).tolist(), source)
    if len(row) > 1 and len(base) > 1:
        r = np.asarray(row, dtype=float)[None, :].repeat(n_boot, 0)
        b = np.asarray(base, dtype=float)[None, :].repeat(n_boot, 0)
        boots = _seed_means(rng, r) - _seed_means(rng, b)
        return Interval(diff, *np.quantile(boots, [alpha, 1 - alpha]).tolist(), "seeds")
    return Interval(diff, None, None, "none")


def mean_interval(
    values: list[float],
    items: list[np.ndarray] | None = None,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """One row's mean over seeds with a percentile bootstrap interval (over seeds, and over items when
    every seed has per-item values of one length)."""
    mean = float(np.mean(values))
    rng = np.random.default_rng(seed)
    alpha = (1 - level) / 2
    stacked = _aligned(items, items)
    if stacked is not None:
        r = stacked[0]
        boots = _seed_means(rng, _resampled_means(r, _item_draws(rng, r.shape[1], n_boot)))
        source = "seeds x items" if r.shape[0] > 1 else "items"
        return Interval(mean, *np.quantile(boots, [alpha, 1 - alpha]).tolist(), source)
    if len(values) > 1:
        v = np.asarray(values, dtype=float)[None, :].repeat(n_boot, 0)
        return Interval(mean, *np.quantile(_seed_means(rng, v), [alpha, 1 - alpha]).tolist(), "seeds")
    return Interval(mean, None, None, "none")


def _item_draws(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """(boot, n) item indices: each resample draws n of the n items with replacement."""
    return rng.integers(0, n, size=(n_boot, n), dtype=np.int32)


def _resampled_means(per_item: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """(seeds, items) values and (boot, items) draws -> (boot, seeds) means over each resample's items."""
    return per_item[:, draws].mean(axis=-1).T


def _seed_means(rng: np.random.Generator, per_seed: np.ndarray) -> np.ndarray:
    """(boot, seeds) values -> (boot,) means of a resample of the seeds."""
    pick = rng.integers(0, per_seed.shape[1], size=per_seed.shape)
    return np.take_along_axis(per_seed, pick, 1).mean(1)


def _aligned(row_items, base_items):
    if not row_items or not base_items:
        return None
    lengths = {len(x) for x in [*row_items, *base_items]}
    if len(lengths) != 1 or lengths == {0}:
        return None
    return np.stack([np.asarray(x, float) for x in row_items]), np.stack(
        [np.asarray(x, float) for x in base_items]
    )


# --- verdicts ------------------------------------------------------------------------------

REPRODUCED, NOT_REPRODUCED, UNDERPOWERED, CONTRADICTED = (
    "reproduced",
    "not reproduced",
    "underpowered",
    "contradicted",
)
VERDICTS = (REPRODUCED, NOT_REPRODUCED, UNDERPOWERED, CONTRADICTED)


def reproduced(paper_diff: float | None, interval: Interval) -> str:
    """The verdict on a paper difference, in words: ``reproduced`` (the interval excludes 0 on the
    paper's side), ``contradicted`` (it excludes 0 on the other side), ``not reproduced`` (it spans 0
    although its half-width, the minimum detectable difference, is below the paper's |difference|) or
    ``underpowered`` (it spans 0 and is too wide to have seen the paper's difference, or there is no
    interval, or it is [0, 0]: identical per-item results of one seed each leave nothing to resample, which
    says nothing about the noise); ``n/a`` when the paper gives no difference."""
    if paper_diff is None or paper_diff == 0:
        return "n/a"
    if interval.low is None:
        same = np.sign(interval.diff) == np.sign(paper_diff)
        return f"{UNDERPOWERED} (no interval; the point estimate {'agrees' if same else 'disagrees'})"
    direction = interval.direction()
    if direction == 0 and interval.half_width == 0:  # [0, 0]: the resamples saw no variation at all
        return f"{UNDERPOWERED} (no variation to resample: interval [0, 0])"
    if direction == 0:
        if interval.half_width > abs(paper_diff):
            return f"{UNDERPOWERED} (interval spans 0; MDD > |Δ paper|)"
        return f"{NOT_REPRODUCED} (interval spans 0; MDD ≤ |Δ paper|)"
    return REPRODUCED if direction == np.sign(paper_diff) else CONTRADICTED


def verdict_of(text: str) -> str | None:
    """The verdict (one of ``VERDICTS``) of a ``reproduced`` text; None for n/a."""
    head = text.split(" (", 1)[0]
    return head if head in VERDICTS else None


def row_verdict(verdicts: list[str]) -> str:
    """One row's verdict from its columns': contradicted when any is, reproduced when all are, else not
    reproduced when some column could have seen its effect and did not, else underpowered."""
    if CONTRADICTED in verdicts:
        return CONTRADICTED
    if all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    return NOT_REPRODUCED if NOT_REPRODUCED in verdicts else UNDERPOWERED


# --- how many seeds and items a difference needs ----------------------------------------------


@dataclass
class PowerPlan:
    """The noise of one comparison and what it would take to resolve ``delta`` (normal approximation)."""

    delta: float  # the effect to detect (the paper's |difference|)
    sd_seeds: float | None  # SD of a one-seed difference (row seed minus baseline seed); None: < 2 seeds
    sd_items: float | None  # SD over test items of the paired per-item difference; None: no items
    seeds: int  # seeds per row now (the fewer of the two rows')
    items: int | None  # shared test items now

    def half_width(self, seeds: int, items: int | None, z: float = Z95) -> float | None:
        """The interval's half-width at ``seeds`` per row and ``items`` test items."""
        if self.sd_seeds is None and self.sd_items is None:
            return None
        var = (self.sd_seeds or 0.0) ** 2 / seeds
        if self.sd_items is not None and items:
            var += self.sd_items**2 / items
        return z * math.sqrt(var)

    def seeds_needed(self, z: float = Z95) -> int | None:
        """Seeds per row for ``z * SE < delta`` at the current item count; None when unknown (one seed)
        or when the items' noise alone is too large (more items are needed first)."""
        if self.sd_seeds is None or self.delta <= 0:
            return None
        room = (self.delta / z) ** 2 - self._item_var(self.items)
        if room <= 0:
            return None
        return max(2, math.ceil(self.sd_seeds**2 / room))

    def items_needed(self, z: float = Z95, seeds: int | None = None) -> int | None:
        """Test items for ``z * SE < delta`` at ``seeds`` per row (default: now); None when there are no
        per-item results, or when the seeds' noise alone is too large (more seeds are needed first)."""
        if self.sd_items is None or self.delta <= 0:
            return None
        room = (self.delta / z) ** 2 - (self.sd_seeds or 0.0) ** 2 / (seeds or self.seeds)
        if room <= 0:
            return None
        return max(1, math.ceil(self.sd_items**2 / room))

    def _item_var(self, items: int | None) -> float:
        return 0.0 if self.sd_items is None or not items else self.sd_items**2 / items


def power_plan(
    delta: float,
    row: list[float],
    base: list[float],
    row_items: list[np.ndarray] | None = None,
    base_items: list[np.ndarray] | None = None,
) -> PowerPlan:
    """The noise of row minus baseline as measured: the seeds' spread in each row, and (with aligned
    per-item results) the spread of the seed-averaged paired difference over the items."""
    sd_seeds = None
    if len(row) > 1 and len(base) > 1:
        sd_seeds = math.sqrt(float(np.var(row, ddof=1) + np.var(base, ddof=1)))
    sd_items, items = None, None
    paired = _aligned(row_items, base_items)
    if paired is not None:
        d = paired[0].mean(0) - paired[1].mean(0)
        items = d.size
        sd_items = float(np.std(d, ddof=1)) if items > 1 else None
    return PowerPlan(abs(delta), sd_seeds, sd_items, min(len(row), len(base)), items)
