"""Data-parallel training with ``torch.distributed``: the few pieces every loop needs.

The entry point (``torchrun`` sets RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK) reads the
environment and passes a ``DistConfig`` in; this module never reads environment variables.

- ``init_distributed`` / ``shutdown``: join and leave the process group (gloo on CPU, nccl on GPUs).
- ``shard_sampler``: a ``DistributedSampler`` so that the ranks' batches, side by side, are the
  global batch a single process would draw (rank r takes items r, r + world, ...).
- ``wrap``: ``DistributedDataParallel`` (gradients averaged over ranks, so a per-rank mean loss
  gives the gradient of the global mean); ``unwrap`` for saving, so checkpoints hold plain
  ``state_dict``s that load on any number of ranks.
- ``on_main`` / ``save_on_main``: only rank 0 writes files (atomically: a temporary name, then a rename).
- ``gather_rows``: every rank's rows (embeddings, indices), concatenated, on every rank — retrieval
  is scored over the whole test set, not per shard.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset
from torch.utils.data.distributed import DistributedSampler


@dataclass
class DistConfig:
    rank: int = 0
    world_size: int = 1
    backend: str = "gloo"  # "nccl" on GPUs
    init_method: str = "env://"  # torchrun's rendezvous; "tcp://127.0.0.1:PORT" or "file://..." otherwise
    local_rank: int = 0  # the GPU of this process on its node


def init_distributed(cfg: DistConfig) -> bool:
    """Join the process group; False (nothing to do) for a single process."""
    if cfg.world_size <= 1:
        return False
    if not 0 <= cfg.rank < cfg.world_size:
        raise ValueError(f"rank {cfg.rank} is outside world_size {cfg.world_size}")
    if cfg.backend == "nccl":
        torch.cuda.set_device(cfg.local_rank)
    dist.init_process_group(
        cfg.backend, init_method=cfg.init_method, rank=cfg.rank, world_size=cfg.world_size
    )
    return True


def shutdown() -> None:
    if is_distributed():
        dist.destroy_process_group()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank_and_world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if is_distributed() else (0, 1)


def on_main() -> bool:
    """True on rank 0 (and in a single process): the one that logs and writes files."""
    return rank_and_world()[0] == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def shard_sampler(dataset: Dataset, shuffle: bool, seed: int, drop_last: bool = True) -> DistributedSampler:
    """This rank's share of ``dataset``; call ``set_epoch(epoch)`` each epoch for a new shared order."""
    rank, world = rank_and_world()
    return DistributedSampler(
        dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
    )


def wrap(model: torch.nn.Module, device: torch.device | None = None) -> torch.nn.Module:
    """``model`` under DDP when distributed, else as is."""
    if not is_distributed():
        return model
    ids = [device.index] if device is not None and device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def save_on_main(obj: Any, path: str | Path) -> Path:
    """``torch.save`` on rank 0 only, to a temporary name renamed into place; every rank waits for it."""
    path = Path(path)
    if on_main():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        torch.save(obj, tmp)
        os.replace(tmp, path)
    barrier()
    return path


def comm_device() -> torch.device:
    """Where collectives run: NCCL only moves CUDA tensors, gloo moves CPU ones."""
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``(n_r, ...)`` rows (in rank order) on every rank; ranks may differ in n_r.
    The result is on ``tensor``'s device, whatever device the backend exchanges on."""
    if not is_distributed():
        return tensor
    home = tensor.device
    tensor = tensor.to(comm_device())
    world = dist.get_world_size()
    count = torch.tensor([tensor.shape[0]], device=tensor.device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    most = int(max(c.item() for c in counts))
    padded = torch.zeros((most, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[: int(c.item())] for p, c in zip(parts, counts)]).to(home)


def mean_over_ranks(metrics: dict[str, float]) -> dict[str, float]:
    """Each metric averaged over ranks (for logging a per-rank mean loss as the global one)."""
    if not is_distributed() or not metrics:
        return dict(metrics)
    names = sorted(metrics)
    values = torch.tensor([float(metrics[k]) for k in names], dtype=torch.float64, device=comm_device())
    dist.all_reduce(values)
    values /= dist.get_world_size()
    return {k: float(v) for k, v in zip(names, values.tolist())}
