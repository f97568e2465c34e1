"""Data-parallel training with ``torch.distributed``: every collective the loops and tasks use.

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
  is scored over the whole test set, not per shard; ``gather_with_grad`` lets gradients flow back
  to the rank that owns each row; ``gather_items`` gathers picklable per-item results.
- ``mean_over_ranks`` / ``mean_over_ranks_with_gaps``: logged values averaged over the ranks.
- fine-tuning without DDP's wrapper (``evilm.tasks.finetune``): ``shard_batches`` (each rank's part
  of every one-process batch), ``rank_part``, ``broadcast_parameters``, ``average_gradients``,
  ``average_buffers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset
from torch.utils.data.distributed import DistributedSampler

from evilm.files import atomic_torch_save
from evilm.train.runtime import EpochBatchSampler


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
        atomic_torch_save(obj, path)
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


def mean_over_ranks_with_gaps(local: dict[str, float], counts: torch.Tensor) -> dict[str, float]:
    """``mean_over_ranks`` of share-weighted terms when a rank may have none: ``counts`` (every rank's
    number of rows, known to all) says whether one has none, and a rank without rows adds zeros."""
    if int(counts.min()) == 0:  # (every rank knows the counts: all take this branch or none)
        names: list[Any] = [None] * rank_and_world()[1]
        dist.all_gather_object(names, sorted(local))
        local = {k: local.get(k, 0.0) for k in sorted({k for part in names for k in part})}
    return mean_over_ranks(local)


def gather_items(items: list[Any]) -> list[Any]:
    """Every rank's items (picklable: per-item result rows), concatenated in rank order, on every rank."""
    if not is_distributed():
        return items
    parts: list[Any] = [None] * rank_and_world()[1]
    dist.all_gather_object(parts, items)
    return [item for part in parts for item in part]


class _GatherRows(torch.autograd.Function):
    """Every rank's rows, concatenated; the gradient of each row goes back, summed over ranks, to its rank."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, rows: slice) -> torch.Tensor:
        ctx.rows = rows
        return gather_rows(tensor)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # every rank's loss may reach every row
        return grad[ctx.rows], None


def gather_with_grad(tensor: torch.Tensor) -> tuple[torch.Tensor, slice | None]:
    """Every rank's rows of ``tensor`` (in rank order) and this rank's slice of them, with gradients.

    A loss computed on each rank from the gathered rows sends its gradient to the rank that owns
    each row; every rank must call backward on a loss that uses the gathered rows. One process:
    ``(tensor, None)``.
    """
    if not is_distributed():
        return tensor, None
    counts = gather_rows(torch.tensor([len(tensor)], device=tensor.device))
    start = int(counts[: rank_and_world()[0]].sum())
    rows = slice(start, start + len(tensor))
    return _GatherRows.apply(tensor, rows), rows


def rank_part(size: int) -> range:
    """This rank's contiguous part of ``range(size)`` (sizes differ by at most one; one process: all)."""
    rank, world = rank_and_world()
    base, extra = divmod(size, world)
    start = rank * base + min(rank, extra)
    return range(start, start + base + int(rank < extra))


def shard_batches(size: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """This rank's rows of each batch of the (seed, epoch) order of ``size`` items.

    Batch ``i`` is the one-process batch; under torch.distributed it is split into W consecutive parts
    (equal for a full batch; a short last batch gives its extra rows to the first ranks, and none to
    the last ones when it holds fewer rows than there are ranks).
    """
    rank, world = rank_and_world()
    out = []
    for batch in EpochBatchSampler(size, batch_size, seed, epoch, drop_last=False):
        base, extra = divmod(len(batch), world)
        start = rank * base + min(rank, extra)
        out.append(batch[start : start + base + int(rank < extra)])
    return out


def broadcast_parameters(module: nn.Module) -> None:
    """Under torch.distributed: rank 0's weights and buffers on every rank (as DDP does when it wraps)."""
    if is_distributed():
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, 0)


def average_gradients(params: list[nn.Parameter]) -> None:
    """Under torch.distributed: each gradient averaged over the ranks (what DDP does in the backward pass).

    A rank that reached a parameter nowhere (no rows in the step) adds zeros; a parameter that no rank
    reached keeps no gradient, as in one process (AdamW then leaves it alone).
    """
    if not is_distributed() or not params:
        return
    world = rank_and_world()[1]
    reached = torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=params[0].device)
    dist.all_reduce(reached, op=dist.ReduceOp.MAX)
    chosen = [p for p, r in zip(params, reached.tolist()) if r]
    if not chosen:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in chosen])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for p in chosen:
        p.grad = flat[offset : offset + p.numel()].view_as(p).to(p.dtype).clone()
        offset += p.numel()


def average_buffers(module: nn.Module) -> None:
    """Under torch.distributed: floating buffers (BatchNorm running statistics) averaged over the ranks after
    a step, so every rank evaluates the same model; each rank's statistics followed only its own rows."""
    if not is_distributed():
        return
    buffers = [b for b in module.buffers() if b.is_floating_point()]
    if buffers:
        flat = torch.cat([b.reshape(-1) for b in buffers]).to(comm_device())
        dist.all_reduce(flat)
        flat /= rank_and_world()[1]
        offset = 0
        for b in buffers:
            b.copy_(flat[offset: offset + b.numel()].view_as(b))
            offset += b.numel()
