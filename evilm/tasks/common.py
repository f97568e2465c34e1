"""What the downstream tasks share: the backbone to start from, the data, a fine-tuning loop.

A task starts from ``inputs['pretrained']`` (a pretraining stage's ``model.pt``) or,
without it, from a randomly initialised model of ``settings.model`` (Table 5's "no
pretraining" row: the same fine-tuning from random initialisation). Either way the
text vocabulary is the one pretraining used (stored in ``model.pt``), or, without
pretraining, the one pretraining would have built, so every row of a table has
the same model.

Data parallel (``torch.distributed`` initialised by the caller, e.g. ``experiments/torchrun_pretrain.py
--stage qa``; every rank runs the stage with the same config and inputs), with the conventions of
pretraining (``evilm.train.pretrain``):

- fine-tuning: ``batch_size`` is the global batch; each of W ranks takes its consecutive part of each
  batch of the one-process order (``shard_batches``). A rank's loss is the mean over its rows, weighed
  by its share of the batch's rows, and the ranks' gradients are averaged (``average_gradients``), so
  every step is the one-process step; the logged terms are the global means. A rank may have no rows
  in a step (the last batch of an epoch holds fewer items than there are ranks, or its clips are
  unreadable): it adds zeros. Dropout masks are each rank's own (seeded by step and rank).
- evaluation: each rank takes a contiguous part of the test set (``eval_batches``); the per-item
  results (``gather_items``) and embeddings or features (``gather_tensor``) of every rank are gathered
  in rank order, which is the test set's order, and every metric is computed over the whole test set.
- rank 0 alone writes files (``finish``) and reports metrics.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Subset

from evilm.config import ConfigError
from evilm.data import TextTokenizer, build_dataset
from evilm.models import EViLM, preset_config
from evilm.stage import MetricsCallback, report
from evilm.train import distributed as D
from evilm.train.checkpoint import derived_seed, generator_for
from evilm.train.data import (
    FRAME_CACHE,
    BatchCollator,
    CachedClips,
    frame_cache_dir,
    frame_config,
    resolve_text_tokenizer,
)
from evilm.train.optim import OptimConfig, create_optimizer, create_scheduler
from evilm.train.pretrain import (
    EpochBatchSampler,
    NonFiniteLossError,
    autocast_dtype,
    load_pretrained,
    resolve_device,
)
from evilm.train.progress import ProgressBar


@dataclass
class FinetuneSettings:
    """Training settings every downstream task shares."""

    model: str = "quick"  # evilm.models preset when there is no pretrained model
    epochs: int = 5
    batch_size: int = 16  # items per step, over all ranks (each of W ranks takes batch_size / W)
    eval_batch_size: int = 32  # per rank (results do not depend on it)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4, weight_decay=0.01, warmup_ratio=0.1))
    augment: bool = False  # training-mode frames (random frame per segment, crop, jitter)
    cache_clips: bool = True  # without augmentation: decode each clip once and keep it in memory
    # evaluation clips decoded once for all stages into this folder (relative: under the data root); None: off
    frame_cache: str | None = None
    vocab_keep_fraction: float = 0.3  # text vocabulary without a pretrained model (as pretraining builds it)
    train_items: int = 0  # > 0: fine-tune on a seeded random subset of this many training items
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"
    device: str = "auto"
    num_workers: int = 0
    seed: int = 0
    log_every: int = 10
    progress: bool = True

    def __post_init__(self):
        if self.train_items < 0:
            raise ConfigError("train_items", f"must be >= 0, got {self.train_items}")
        for key in ("epochs", "batch_size", "eval_batch_size", "log_every"):
            if getattr(self, key) < 1:
                raise ConfigError(key, f"must be >= 1, got {getattr(self, key)}")
        if self.cache_clips and not self.augment and self.num_workers > 0:
            raise ConfigError("num_workers", "cache_clips keeps clips in this process: use num_workers=0")


@dataclass
class Start:
    """The model a task starts from."""

    backbone: EViLM
    text_tokenizer: TextTokenizer
    heads: dict[str, dict[str, torch.Tensor]]  # pretrained heads' state dicts, by name
    pretrained: bool
    frame_cache: str | None = None  # the disk cache of evaluation clips (a folder), if any


def load_start(inputs: dict[str, Any], settings: FinetuneSettings) -> Start:
    """The pretrained backbone of ``inputs['pretrained']``, or a fresh one (seeded) without it.

    Leaves the global RNG seeded from ``settings.seed``, so the task heads built next are too.
    """
    if inputs.get("pretrained"):
        loaded = load_pretrained(inputs["pretrained"])
        vocab = loaded.meta.get("text_vocab")
        if vocab is None:
            raise ValueError(f"{inputs['pretrained']}: the model file has no text vocabulary (meta.text_vocab)")
        start = Start(loaded.backbone, TextTokenizer(vocab), loaded.heads, pretrained=True)
    else:
        if "data" not in inputs:
            raise ConfigError("inputs.data", "a task needs a data root")
        tokenizer = resolve_text_tokenizer(inputs, inputs["data"], settings.vocab_keep_fraction)
        torch.manual_seed(derived_seed(settings.seed, "init"))
        backbone = EViLM(preset_config(settings.model, {"text": {"vocab_size": tokenizer.vocab_size}}))
        start = Start(backbone, tokenizer, {}, pretrained=False)
    if "data" in inputs:
        start.frame_cache = frame_cache_dir(settings.frame_cache, inputs["data"])
    torch.manual_seed(derived_seed(settings.seed, "task heads"))
    return start


def make_dataset(kind: str, records: list, start: Start, settings: FinetuneSettings, train: bool, **kwargs) -> Any:
    """A data set of ``records`` with frames and text as the backbone takes them.

    A training set is cut to ``settings.train_items`` (a seeded random subset) when that is set.
    """
    cfg = start.backbone.config
    if train and 0 < settings.train_items < len(records):
        keep = torch.randperm(len(records), generator=generator_for(settings.seed, "train subset"))
        records = [records[i] for i in sorted(keep[: settings.train_items].tolist())]
    augment = train and settings.augment
    dataset = build_dataset(kind, records, start.text_tokenizer, frame_config(cfg, start.frame_cache), train=augment,
                            max_text_len=cfg.max_text_len, seed=settings.seed, **kwargs)
    if settings.cache_clips and not augment:
        dataset = CachedClips(dataset)
    return dataset


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def rank_part(size: int) -> range:
    """This rank's contiguous part of ``range(size)`` (sizes differ by at most one; one process: all)."""
    rank, world = D.rank_and_world()
    base, extra = divmod(size, world)
    start = rank * base + min(rank, extra)
    return range(start, start + base + int(rank < extra))


def eval_batches(dataset: Any, settings: FinetuneSettings, device: torch.device, description: str = "evaluate",
                 ) -> Iterator[dict[str, Any]]:
    """The data set in order, in batches of ``eval_batch_size``, on the device; unreadable clips skipped.

    Under torch.distributed: this rank's contiguous part of it (gather the results in rank order).
    """
    part = dataset if not D.is_distributed() else Subset(dataset, rank_part(len(dataset)))
    loader = DataLoader(part, batch_size=settings.eval_batch_size, shuffle=False, collate_fn=BatchCollator(dataset),
                        num_workers=settings.num_workers)
    bar = ProgressBar(settings.progress and D.on_main(), total=len(loader), start=0, description=description)
    for i, batch in enumerate(loader):
        if "frames" in batch:
            yield to_device(batch, device)
        bar.update(i + 1, {})
    bar.close()


def gather_items(items: list[Any]) -> list[Any]:
    """Every rank's items (picklable: per-item result rows), concatenated in rank order, on every rank."""
    if not D.is_distributed():
        return items
    parts: list[Any] = [None] * D.rank_and_world()[1]
    dist.all_gather_object(parts, items)
    return [item for part in parts for item in part]


def gather_tensor(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``D.gather_rows`` (which exchanges on the backend's device and returns rows where they were)."""
    return D.gather_rows(tensor)


class _GatherRows(torch.autograd.Function):
    """Every rank's rows, concatenated; the gradient of each row goes back, summed over ranks, to its rank."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, rows: slice) -> torch.Tensor:
        ctx.rows = rows
        return D.gather_rows(tensor)

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
    if not D.is_distributed():
        return tensor, None
    counts = D.gather_rows(torch.tensor([len(tensor)], device=tensor.device))
    start = int(counts[: D.rank_and_world()[0]].sum())
    rows = slice(start, start + len(tensor))
    return _GatherRows.apply(tensor, rows), rows


def shard_batches(size: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """This rank's rows of each batch of the (seed, epoch) order of ``size`` items.

    Batch ``i`` is the one-process batch; under torch.distributed it is split into W consecutive parts
    (equal for a full batch; a short last batch gives its extra rows to the first ranks, and none to
    the last ones when it holds fewer rows than there are ranks).
    """
    rank, world = D.rank_and_world()
    out = []
    for batch in EpochBatchSampler(size, batch_size, seed, epoch, drop_last=False):
        base, extra = divmod(len(batch), world)
        start = rank * base + min(rank, extra)
        out.append(batch[start : start + base + int(rank < extra)])
    return out


def average_gradients(params: list[nn.Parameter]) -> None:
    """Under torch.distributed: each gradient averaged over the ranks (what DDP does in the backward pass).

    A rank that reached a parameter nowhere (no rows in the step) adds zeros; a parameter that no rank
    reached keeps no gradient, as in one process (AdamW then leaves it alone).
    """
    if not D.is_distributed() or not params:
        return
    world = D.rank_and_world()[1]
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
    if not D.is_distributed():
        return
    buffers = [b for b in module.buffers() if b.is_floating_point()]
    if buffers:
        flat = torch.cat([b.reshape(-1) for b in buffers]).to(D.comm_device())
        dist.all_reduce(flat)
        flat /= D.rank_and_world()[1]
        offset = 0
        for b in buffers:
            b.copy_(flat[offset: offset + b.numel()].view_as(b))
            offset += b.numel()


def broadcast_parameters(module: nn.Module) -> None:
    """Under torch.distributed: rank 0's weights and buffers on every rank (as DDP does when it wraps)."""
    if D.is_distributed():
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, 0)


def _global_means(local: dict[str, float], counts: torch.Tensor) -> dict[str, float]:
    """The ranks' mean of each share-weighted term; a rank without rows (no terms) adds zeros."""
    if int(counts.min()) == 0:  # (every rank knows the counts: all take this branch or none)
        names: list[Any] = [None] * D.rank_and_world()[1]
        dist.all_gather_object(names, sorted(local))
        local = {k: local.get(k, 0.0) for k in sorted({k for part in names for k in part})}
    return D.mean_over_ranks(local)


LossFn = Callable[[dict[str, Any]], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def finetune(
    module: nn.Module,
    dataset: Any,
    settings: FinetuneSettings,
    loss_fn: LossFn,
    on_metrics: MetricsCallback | None,
    prefix: str,
    trainable: list[nn.Parameter] | None = None,
    exchanges: bool = False,
) -> dict[str, float]:
    """AdamW over ``settings.epochs`` epochs of ``dataset``; ``loss_fn(batch) -> (loss, logged terms)``.

    Data order comes from (seed, epoch); a NaN or infinite loss stops with ``NonFiniteLossError``.
    Returns the last epoch's mean terms and the throughput.

    Under torch.distributed every rank calls this with the same arguments (module docstring):
    ``loss_fn`` gets this rank's rows and returns their means. ``exchanges``: ``loss_fn`` itself
    exchanges data between ranks (retrieval gathers the batch's embeddings), so every rank calls it
    at every step, with ``None`` on a rank that has no rows in the step.
    """
    device = resolve_device(settings.device)
    rank, world = D.rank_and_world()
    if settings.batch_size % world:
        raise ConfigError("train.batch_size", f"{settings.batch_size} items (the global batch) do not split evenly "
                          f"over {world} ranks: use a multiple of {world}")
    module.to(device).train()
    broadcast_parameters(module)
    params = trainable if trainable is not None else [p for p in module.parameters() if p.requires_grad]
    optimizer = create_optimizer(params, settings.optim)
    steps_per_epoch = EpochBatchSampler(len(dataset), settings.batch_size, settings.seed, 0, drop_last=False).batches_per_epoch()
    total = settings.epochs * steps_per_epoch
    scheduler = create_scheduler(optimizer, total, settings.optim)
    amp_dtype = autocast_dtype(settings.amp, device)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    torch.manual_seed(derived_seed(settings.seed, prefix, "train"))
    bar = ProgressBar(settings.progress and rank == 0, total=total, start=0, description=f"{prefix} fine-tune")
    step = 0
    epoch_terms: dict[str, float] = {}
    window: dict[str, float] = {}  # sums since the last log line (it may span an epoch boundary)
    window_steps = 0
    seen, busy = 0, 0.0
    for epoch in range(settings.epochs):
        if isinstance(getattr(dataset, "epoch", None), int):
            dataset.epoch = epoch
        loader = DataLoader(dataset, batch_sampler=shard_batches(len(dataset), settings.batch_size, settings.seed, epoch),
                            collate_fn=BatchCollator(dataset), num_workers=settings.num_workers,
                            generator=generator_for(settings.seed, prefix, epoch))
        epoch_terms, count, epoch_seen = {}, 0, 0
        t0 = time.perf_counter()
        for batch in loader:
            autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
            if world == 1:
                if "frames" not in batch:
                    continue
                batch = to_device(batch, device)
                with autocast:
                    loss, terms = loss_fn(batch)
                value = loss.item()
                logged = {"loss": value, **{k: float(v) for k, v in terms.items()}}
                rows = len(batch["frames"])
            else:
                mine = len(batch["frames"]) if "frames" in batch else 0
                counts = D.gather_rows(torch.tensor([mine], device=device))
                rows = int(counts.sum())
                if rows == 0:  # no readable clip on any rank: one process skips this batch too
                    continue
                share = mine * world / rows  # the ranks' mean of share-weighted means is the global mean
                torch.manual_seed(derived_seed(settings.seed, prefix, "dropout", step, rank))
                loss, local = None, {}
                if mine or exchanges:
                    with autocast:
                        loss, terms = loss_fn(to_device(batch, device) if mine else None)
                    loss = loss * share
                    if mine:
                        local = {"loss": loss.item(), **{k: float(v) * share for k, v in terms.items()}}
                logged = _global_means(local, counts)
                value = logged["loss"]
            if not math.isfinite(value):
                raise NonFiniteLossError(step + 1, f"{prefix} loss", value)
            optimizer.zero_grad(set_to_none=True)
            if loss is not None:
                (scaler.scale(loss) if scaler is not None else loss).backward()
            average_gradients(params)
            if scaler is not None:
                scaler.unscale_(optimizer)
            if settings.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, settings.optim.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            average_buffers(module)
            scheduler.step()
            step += 1
            count += 1
            window_steps += 1
            epoch_seen += rows
            for k, v in logged.items():
                epoch_terms[k] = epoch_terms.get(k, 0.0) + v
                window[k] = window.get(k, 0.0) + v
            if step % settings.log_every == 0 or step == total:
                shown = {f"{prefix}/train_{k}": v / window_steps for k, v in window.items()}
                if rank == 0:
                    report(on_metrics, shown, step)
                rate = (seen + epoch_seen) / max(busy + time.perf_counter() - t0, 1e-9)
                bar.update(step, {"train/loss": shown[f"{prefix}/train_loss"], "train/clips_per_s": rate})
                window, window_steps = {}, 0
        busy += time.perf_counter() - t0
        seen += epoch_seen
        epoch_terms = {k: v / max(count, 1) for k, v in epoch_terms.items()}
    bar.close()
    out = {f"{prefix}/train_{k}": v for k, v in epoch_terms.items()}
    out[f"{prefix}/train_clips_per_s"] = seen / max(busy, 1e-9)
    out[f"{prefix}/train_steps"] = float(step)
    return out


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)
    return path


def finish(out_dir: str | Path, metrics: dict[str, float], per_item: dict[str, Any],
           extra: dict[str, tuple[str, Any]] | None = None) -> dict[str, Path]:
    """Write ``metrics.json``, ``per_item.json`` (for bootstrapping over test items) and ``extra``
    (artifact name -> (file name, data)); on rank 0 only, and every rank returns once they are written."""
    out_dir = Path(out_dir)
    files = {"metrics": ("metrics.json", metrics), "per_item": ("per_item.json", per_item), **(extra or {})}
    if D.on_main():
        for name, data in files.values():
            write_json(out_dir / name, data)
    D.barrier()
    return {key: out_dir / name for key, (name, _) in files.items()}


FINETUNE_PRESETS: dict[str, dict[str, Any]] = {
    # task-specific learning rates/epochs in the paper are not given; these follow the field's
    # usual fine-tuning (AdamW 1e-4 / 5e-5, a few epochs) with augmented frames.
    "paper": {"model": "paper", "epochs": 5, "batch_size": 32, "eval_batch_size": 64, "augment": True,
              "cache_clips": False, "num_workers": 8, "vocab_keep_fraction": 0.3, "log_every": 50},
    # a 2-core CPU: 2 epochs over (at most) 300 training items, fixed frames decoded once,
    # a higher learning rate; the full test splits.
    "quick": {"model": "quick", "epochs": 2, "batch_size": 16, "eval_batch_size": 32, "vocab_keep_fraction": 1.0,
              "train_items": 300, "frame_cache": FRAME_CACHE, "optim": {"lr": 3e-4, "weight_decay": 0.01, "warmup_ratio": 0.1}},
    "smoke": {"model": "smoke", "epochs": 1, "batch_size": 4, "eval_batch_size": 8, "vocab_keep_fraction": 1.0,
              "frame_cache": FRAME_CACHE,
              "log_every": 1, "optim": {"lr": 1e-3, "weight_decay": 0.01, "warmup_ratio": 0.1}},
}


def finetune_settings(profile: str, overrides: dict[str, Any] | None = None) -> FinetuneSettings:
    """The fine-tuning settings of a profile (``smoke``/``quick``/``paper``) with validated overrides."""
    import copy

    from evilm.config import close_match, deep_update, from_dict

    if profile not in FINETUNE_PRESETS:
        raise ConfigError("profile", f"unknown profile '{profile}'{close_match(profile, FINETUNE_PRESETS)}; "
                          f"known: {', '.join(FINETUNE_PRESETS)}")
    return from_dict(FinetuneSettings, deep_update(copy.deepcopy(FINETUNE_PRESETS[profile]), overrides or {}))
