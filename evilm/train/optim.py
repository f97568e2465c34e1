"""AdamW with a warm-up then decay learning-rate schedule (``OptimConfig``: ``evilm.train.config``).

Biases and normalisation weights (parameters with fewer than 2 dimensions) get
no weight decay, as is usual for transformers. A parameter may learn at a multiple of the
learning rate (``lr_scales``): e.g. a backbone started from an image prior, kept slower than the
freshly initialised layers on top of it so that it keeps what the prior learned.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from evilm.train.config import OptimConfig


def lr_factor(step: int, total_steps: int, cfg: OptimConfig) -> float:
    """Multiplier of ``cfg.lr`` for optimizer step ``step`` (0-based) of ``total_steps``."""
    warmup = int(round(cfg.warmup_ratio * total_steps))
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if cfg.schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    if cfg.schedule == "linear":
        decay = 1.0 - progress
    else:
        decay = 0.5 * (1.0 + math.cos(math.pi * progress))
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * decay


def create_optimizer(params: nn.Module | Iterable[nn.Parameter], cfg: OptimConfig,
                     lr_scales: Mapping[nn.Parameter, float] | None = None) -> torch.optim.AdamW:
    """AdamW over a module's (or a list's) trainable parameters.

    ``lr_scales`` maps parameters to a multiple of ``cfg.lr`` (a missing one: 1). The schedule scales
    every group alike, so a scaled parameter keeps its ratio to ``cfg.lr`` throughout. The groups at
    scale 1 come first: ``param_groups[0]`` carries ``cfg.lr``.
    """
    if isinstance(params, nn.Module):
        params = params.parameters()
    scales = lr_scales or {}
    grouped: dict[tuple[float, bool], list[nn.Parameter]] = {}  # (lr scale, no weight decay) -> parameters
    for p in params:
        if p.requires_grad:
            grouped.setdefault((scales.get(p, 1.0), p.ndim < 2), []).append(p)
    order = sorted(grouped, key=lambda key: (key[0] != 1.0, *key))  # scale 1 first, decayed before not
    groups = [{"params": grouped[scale, no_decay], "weight_decay": 0.0 if no_decay else cfg.weight_decay,
               "lr": cfg.lr * scale} for scale, no_decay in order]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)


def create_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, cfg: OptimConfig):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total_steps, cfg))
