"""AdamW with a warm-up then decay learning-rate schedule (``OptimConfig``: ``evilm.train.config``).

Biases and normalisation weights (parameters with fewer than 2 dimensions) get
no weight decay, as is usual for transformers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

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


def create_optimizer(params: nn.Module | Iterable[nn.Parameter], cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW over a module's (or a list's) trainable parameters."""
    if isinstance(params, nn.Module):
        params = params.parameters()
    decay, no_decay = [], []
    for p in params:
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)


def create_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, cfg: OptimConfig):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total_steps, cfg))
