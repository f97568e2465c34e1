"""The one training engine every loop shares: the optimizer step and the running means.

``Engine`` owns what follows a loss: AdamW over the given parameters (``create_optimizer``: no
weight decay on biases and norm weights), the warm-up + decay schedule (``create_scheduler``),
mixed precision (autocast, and a gradient scaler for fp16), gradient clipping, and the check
that stops a run on a NaN or infinite loss. One optimizer step of a loop reads:

    engine.zero_grad()
    with engine.autocast():
        loss = ...
    check_finite(step, {"loss": loss.item()})
    engine.backward(loss)        # once per accumulated micro-batch
    grad_norm = engine.step()    # unscale, clip, step, advance the schedule

``RunningMeans`` keeps the sums of logged values between two reports (a log window, an epoch).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import nn

from evilm.train.config import OptimConfig
from evilm.train.optim import create_optimizer, create_scheduler
from evilm.train.runtime import NonFiniteLossError, mixed_precision


class Engine:
    """The optimizer step over ``params`` for a run of ``total_steps`` optimizer steps.

    ``amp_dtype`` (``runtime.autocast_dtype``): None trains in full precision; float16 adds a
    gradient scaler (bfloat16 needs none). ``lr_scales``: parameters that learn at a multiple of
    ``cfg.lr`` (``create_optimizer``). The optimizer, schedule and scaler are attributes, so a
    checkpoint saves and restores them.
    """

    def __init__(self, params: nn.Module | Iterable[nn.Parameter], cfg: OptimConfig, total_steps: int,
                 device: torch.device | str = "cpu", amp_dtype: torch.dtype | None = None,
                 lr_scales: Mapping[nn.Parameter, float] | None = None):
        if isinstance(params, nn.Module):
            params = params.parameters()
        self.params = [p for p in params if p.requires_grad]
        self.cfg = cfg
        self.device_type = torch.device(device).type
        self.amp_dtype = amp_dtype
        self.optimizer = create_optimizer(self.params, cfg, lr_scales)
        self.scheduler = create_scheduler(self.optimizer, total_steps, cfg)
        self.scaler = torch.amp.GradScaler(self.device_type) if amp_dtype == torch.float16 else None

    @property
    def lr(self) -> float:
        """The learning rate of the next step (of the parameters at scale 1)."""
        return self.optimizer.param_groups[0]["lr"]

    def autocast(self) -> AbstractContextManager[Any]:
        """Mixed precision for the forward pass (nothing in full precision)."""
        return mixed_precision(self.device_type, self.amp_dtype)

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def backward(self, loss: torch.Tensor) -> None:
        """Back-propagate ``loss`` (scaled under fp16); gradients add up until ``step``."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self) -> float:
        """Unscale, clip to ``grad_clip`` (0: no clipping), step, advance the schedule.

        Returns the global gradient norm before clipping (0 when no parameter has a gradient).
        """
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        grads = [p for p in self.params if p.grad is not None]
        if self.cfg.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(grads, self.cfg.grad_clip)
        elif grads:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in grads]))
        else:
            norm = torch.zeros(())
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        return float(norm)


def check_finite(step: int, values: Mapping[str, float]) -> None:
    """Stop the run with ``NonFiniteLossError`` (naming the step and the term) on a NaN or infinite value."""
    for term, value in values.items():
        if not math.isfinite(value):
            raise NonFiniteLossError(step, term, value)


class RunningMeans:
    """Sums of named values over the steps that added them; ``means()`` divides by the step count."""

    def __init__(self, sums: Mapping[str, float] | None = None, count: int = 0):
        self.sums: dict[str, float] = dict(sums or {})
        self.count = count

    def add(self, values: Mapping[str, float]) -> None:
        """One step's values (a name missing from a step counts as 0 for it)."""
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.count += 1

    def means(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{name}": total / max(self.count, 1) for name, total in self.sums.items()}

    def reset(self) -> None:
        self.sums, self.count = {}, 0
