"""CPU latency (batch 1, inference mode, median after warm-up) and peak memory."""

from __future__ import annotations

import statistics
import threading
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


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def peak_memory(model: nn.Module, inputs: Sequence[torch.Tensor], interval_s: float = 0.0005) -> dict[str, float]:
    """Peak extra resident memory during one forward pass (MiB), sampled from /proc.

    CPU tensors are not tracked by an allocator we can query, so a thread samples
    the process's resident set while the forward runs. The figure is what inference
    adds on top of the loaded model; on Linux only (returns NaN elsewhere).
    """
    try:
        base = _rss_bytes()
    except OSError:
        return {"peak_mib": float("nan")}
    peak = base
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(interval_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    with torch.inference_mode():
        model.eval()(*inputs)
    done.set()
    thread.join()
    return {"peak_mib": (max(peak, _rss_bytes()) - base) / 2**20}
