"""One rank of a BatchNorm model after a step on its own rows, then ``average_buffers``."""

from __future__ import annotations

import torch
from torch import nn

from evilm.train import distributed as D


def run_rank(rank: int, world: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    D.init_distributed(D.DistConfig(rank=rank, world_size=world, init_method=init))
    try:
        norm = nn.BatchNorm1d(3)
        norm.train()
        norm(torch.full((4, 3), float(rank + 1)) + torch.arange(4.0)[:, None])  # each rank: its own rows
        D.average_buffers(norm)
        if rank == 0:
            torch.save({"mean": norm.running_mean, "var": norm.running_var, "batches": norm.num_batches_tracked}, out)
    finally:
        D.shutdown()
