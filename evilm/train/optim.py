"""AdamW with a warm-up then decay learning-rate schedule.

Biases and normalisation weights (parameters with fewer than 2 dimensions) get
no weight decay, as is usual for transformers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from evilm.config import ConfigError


@dataclass
class OptimConfig:
    lr: float = 1e-4  # the paper's pretraining learning rate
    weight_decay: float = 0.01  # the paper's pretraining weight decay
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    warmup_ratio: float = 0.1  # fraction of the optimizer steps spent warming up linearly from 0
    schedule: Literal["cosine", "linear", "constant"] = "cosine"  # decay after warm-up
    min_lr_ratio: float = 0.0  # the decay ends at lr * min_lr_ratio
    grad_clip: float = 1.0  # max global gradient norm; 0 = no clipping

    def __post_init__(self):
        if self.lr <= 0:
            raise ConfigError("optim.lr", f"must be > 0, got {self.lr}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError("optim.warmup_ratio", f"must be in [0, 1), got {self.warmup_ratio}")
        if self.grad_clip < 0:
            raise ConfigError("optim.grad_clip", f"must be >= 0, got {self.grad_clip}")


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
