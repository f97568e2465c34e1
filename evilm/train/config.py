"""The optimizer's settings (no torch here: stage configs import this to plan runs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
