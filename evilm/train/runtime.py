"""What every training loop needs around the model: the device, mixed precision, the data order,
and the error a diverging run stops with."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch.utils.data import Sampler

from evilm.train.checkpoint import generator_for


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or infinite; names the step and the term."""

    def __init__(self, step: int, term: str, value: float):
        self.step, self.term, self.value = step, term, value
        super().__init__(f"non-finite loss at step {step}: {term} = {value}; the run was stopped")


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else the CPU; any other name as torch reads it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of an ``amp`` setting (auto | off | bf16 | fp16), or None for full precision."""
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if amp == "bf16" else torch.float16



def mixed_precision(device_type: str, dtype: torch.dtype | None) -> AbstractContextManager[Any]:
    """Autocast to ``dtype`` (from ``autocast_dtype``) on ``device_type``; nothing when it is None."""
    return nullcontext() if dtype is None else torch.autocast(device_type, dtype=dtype)

class EpochBatchSampler(Sampler[list[int]]):
    """Batches of a permutation drawn from (seed, epoch), starting at batch ``start``.

    Full batches only unless ``drop_last=False`` (VTM needs a fixed batch shape). Under
    torch.distributed each rank takes every ``world_size``-th batch.
    """

    def __init__(self, size: int, batch_size: int, seed: int, epoch: int, start: int = 0, rank: int = 0,
                 world_size: int = 1, drop_last: bool = True):
        self.size, self.batch_size, self.seed, self.epoch, self.start = size, batch_size, seed, epoch, start
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last

    def batches_per_epoch(self) -> int:
        per_round = self.batch_size * self.world_size
        return self.size // per_round if self.drop_last else -(-self.size // per_round)

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.size, generator=generator_for(self.seed, "data order", self.epoch)).tolist()
        for i in range(self.start, self.batches_per_epoch()):
            j = (i * self.world_size + self.rank) * self.batch_size
            batch = order[j : j + self.batch_size]
            if batch:
                yield batch

    def __len__(self) -> int:
        return self.batches_per_epoch() - self.start
