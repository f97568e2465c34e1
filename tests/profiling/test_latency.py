import torch
from torch import nn

from evilm.profiling.latency import interleaved_latency, measure_latency, summarize


def test_latency_is_measured():
    stats = measure_latency(nn.Linear(3, 2), (torch.rand(4, 3),), warmup=1, repeats=3)
    assert 0 < stats["min_ms"] <= stats["median_ms"] <= stats["max_ms"]


def test_summarize_by_hand():
    assert summarize([3.0, 1.0, 2.0]) == {"median_ms": 2.0, "min_ms": 1.0, "max_ms": 3.0}


def test_interleaved_rounds_rotate_the_order():
    order = []
    calls = {name: (lambda name=name: order.append(name)) for name in "abc"}
    times = interleaved_latency(calls, repeats=3, warmup=1)
    assert order[:3] == ["a", "b", "c"]  # warm-up
    assert order[3:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "c": 3}
    assert all(t >= 0 for v in times.values() for t in v)


def test_time_budget_stops_after_three_rounds():
    times = interleaved_latency({"x": lambda: None}, repeats=50, warmup=0, max_seconds=0.0)
    assert len(times["x"]) == 3
