"""What every stage returns.

A stage (generate data, train a tokenizer, pretrain, fine-tune/evaluate, profile)
is a plain function ``run(config, inputs, out_dir, on_metrics=None) -> StageResult``.
It knows nothing of MLflow or the CLI: ``experiments`` decides where ``out_dir``
is, what the inputs are, and what to do with the per-step metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# on_metrics(metrics, step): per-step/per-epoch numbers for a tracker or a log.
MetricsCallback = Callable[[dict[str, float], int], None]


@dataclass
class StageResult:
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)


def report(callback: MetricsCallback | None, metrics: dict[str, float], step: int) -> None:
    """Send metrics to the callback, if there is one."""
    if callback is not None:
        callback({k: float(v) for k, v in metrics.items()}, step)
