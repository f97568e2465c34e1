"""Checkpoints that resume a run exactly.

A checkpoint holds the model, optimizer, scheduler and grad-scaler states, the
global RNG states (as tensors), the step and the data position, and any extra
plain values the loop needs (running metric sums). Files are written under a
temporary name and renamed, so a crash never leaves a half-written checkpoint,
and read with ``torch.load(weights_only=True)``: only tensors and plain Python
values, nothing executable.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from evilm.files import atomic_torch_save


def derived_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed that depends only on ``seed`` and ``parts`` (e.g. a step number and a purpose)."""
    text = "/".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


def generator_for(seed: int, *parts: object, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh generator seeded by ``derived_seed``: the same (seed, parts) gives the same draws."""
    return torch.Generator(device=device).manual_seed(derived_seed(seed, *parts))


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    path: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any | None,
    step: int,
    epoch: int,
    batch_in_epoch: int,
    extra: dict[str, Any] | None = None,
) -> Path:
    state = {
        "format": 1,
        "step": step,
        "epoch": epoch,
        "batch_in_epoch": batch_in_epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng_state(),
        "extra": extra or {},
    }
    return atomic_torch_save(state, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise ValueError(f"{path}: not a readable checkpoint ({err})") from err
    if not isinstance(state, dict) or state.get("format") != 1:
        raise ValueError(f"{path}: not an evilm training checkpoint (missing format=1)")
    return state


def restore(
    state: dict[str, Any],
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any | None,
) -> None:
    """Load every saved state back; the caller reads step/epoch/batch_in_epoch/extra from ``state``."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
