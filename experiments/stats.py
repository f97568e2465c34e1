"""Differences between two rows with a bootstrap interval over seeds and test items.

A row's value at one seed is the mean of its per-item results (0/1 correctness,
a recall hit, ...). The interval resamples both sources of noise: the seeds of
each row (independently: different seeds are different trainings) and the test
items (shared: both rows are scored on the same items, so the resample is
paired). Without per-item results it resamples seeds only; with one seed and no
items there is no interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Interval:
    diff: float  # point estimate: mean over seeds of row minus baseline
    low: float | None
    high: float | None
    source: str  # "seeds x items", "seeds", "items" or "none"

    def direction(self) -> int:
        """+1 / -1 when the interval excludes zero on that side, 0 when it spans zero."""
        if self.low is None or self.high is None:
            return 0
        if self.low > 0:
            return 1
        if self.high < 0:
            return -1
        return 0


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
        n = r.shape[1]
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot) / n  # (boot, items)
        r_means = weights @ r.T  # (boot, seeds of row)
        b_means = weights @ b.T
        r_pick = rng.integers(0, r.shape[0], size=(n_boot, r.shape[0]))
        b_pick = rng.integers(0, b.shape[0], size=(n_boot, b.shape[0]))
        boots = np.take_along_axis(r_means, r_pick, 1).mean(1) - np.take_along_axis(b_means, b_pick, 1).mean(
            1
        )
        source = "seeds x items" if min(r.shape[0], b.shape[0]) > 1 else "items"
        return Interval(diff, *np.quantile(boots, [alpha, 1 - alpha]).tolist(), source)
    if len(row) > 1 and len(base) > 1:
        r = np.asarray(row, dtype=float)
        b = np.asarray(base, dtype=float)
        boots = r[rng.integers(0, len(r), size=(n_boot, len(r)))].mean(1) - b[
            rng.integers(0, len(b), size=(n_boot, len(b)))
        ].mean(1)
        return Interval(diff, *np.quantile(boots, [alpha, 1 - alpha]).tolist(), "seeds")
    return Interval(diff, None, None, "none")


def _aligned(row_items, base_items):
    if not row_items or not base_items:
        return None
    lengths = {len(x) for x in [*row_items, *base_items]}
    if len(lengths) != 1 or lengths == {0}:
        return None
    return np.stack([np.asarray(x, float) for x in row_items]), np.stack(
        [np.asarray(x, float) for x in base_items]
    )


REPRODUCED, NOT_REPRODUCED, CONTRADICTED = "reproduced", "not reproduced", "contradicted"


def reproduced(paper_diff: float | None, interval: Interval) -> str:
    """The verdict on a paper difference, in words: ``reproduced`` (the interval excludes 0 on the
    paper's side), ``not reproduced`` (it spans 0, or there is no interval) or ``contradicted`` (it
    excludes 0 on the other side); ``n/a`` when the paper gives no difference."""
    if paper_diff is None or paper_diff == 0:
        return "n/a"
    if interval.low is None:
        same = np.sign(interval.diff) == np.sign(paper_diff)
        return f"{NOT_REPRODUCED} (no interval; the point estimate {'agrees' if same else 'disagrees'})"
    direction = interval.direction()
    if direction == 0:
        return f"{NOT_REPRODUCED} (interval spans 0)"
    return REPRODUCED if direction == np.sign(paper_diff) else CONTRADICTED


def verdict_of(text: str) -> str | None:
    """The verdict (reproduced / not reproduced / contradicted) of a ``reproduced`` text; None for n/a."""
    head = text.split(" (", 1)[0]
    return head if head in (REPRODUCED, NOT_REPRODUCED, CONTRADICTED) else None
