"""Parameter counts: total, trainable, per top-level module."""

from __future__ import annotations

from torch import nn


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def parameters_by_module(module: nn.Module, depth: int = 1) -> dict[str, int]:
    """Parameter counts of the sub-modules ``depth`` levels down (names joined by dots)."""
    counts: dict[str, int] = {}
    for name, child in module.named_modules():
        if name and name.count(".") == depth - 1:
            counts[name] = count_parameters(child)
    direct = sum(p.numel() for p in module.parameters(recurse=False))
    if direct and depth == 1:
        counts["(own parameters)"] = direct
    return counts
