"""CPU latency: inference mode, median of repeats after warm-up.

``measure_latency`` times one model; ``interleaved_latency`` times several
callables in alternation (round ``r`` runs each once, starting at a different one
each round), so that a slow spell of a shared machine hits every one of them
alike and their ratios stay meaningful.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn


def summarize(times_ms: Sequence[float]) -> dict[str, float]:
    """Median, min and max of wall times in milliseconds."""
    return {"median_ms": statistics.median(times_ms), "min_ms": min(times_ms), "max_ms": max(times_ms)}


def measure_latency(
    model: nn.Module, inputs: Sequence[torch.Tensor], warmup: int = 2, repeats: int = 5
) -> dict[str, float]:
    """Median and spread of wall time per forward pass, in milliseconds."""
    model.eval()
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(*inputs)
        for _ in range(repeats):
            start = time.perf_counter()
            model(*inputs)
            times.append((time.perf_counter() - start) * 1e3)
    return summarize(times)


def interleaved_latency(
    calls: dict[str, Callable[[], object]],
    repeats: int = 5,
    warmup: int = 1,
    max_seconds: float | None = None,
) -> dict[str, list[float]]:
    """Wall times (ms) of each call over ``repeats`` interleaved rounds.

    Every call runs ``warmup`` times first. With ``max_seconds``, rounds stop once that
    much time has been spent timing, after at least 3 rounds.
    """
    names = list(calls)
    for name in names:
        for _ in range(warmup):
            calls[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    began = time.perf_counter()
    for r in range(repeats):
        for i in range(len(names)):
            name = names[(r + i) % len(names)]
            start = time.perf_counter()
            calls[name]()
            times[name].append((time.perf_counter() - start) * 1e3)
        if max_seconds is not None and r >= 2 and time.perf_counter() - began > max_seconds:
            break
    return times
