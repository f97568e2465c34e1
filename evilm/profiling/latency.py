"""CPU latency: batch 1, inference mode, median after warm-up."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import torch
from torch import nn


def measure_latency(model: nn.Module, inputs: Sequence[torch.Tensor], warmup: int = 2, repeats: int = 5) -> dict[str, float]:
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
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times)}
