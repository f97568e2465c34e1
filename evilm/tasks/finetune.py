"""What the downstream tasks share: the backbone to start from, the data, the fine-tuning loop, the outputs.

A task starts from ``inputs['pretrained']`` (a pretraining stage's ``model.pt``) or,
without it, from a randomly initialised model of ``settings.model`` (Table 5's "no
pretraining" row: the same fine-tuning from random initialisation). Either way the
text vocabulary is the one pretraining used (stored in ``model.pt``), or, without
pretraining, the one pretraining would have built, so every row of a table has
the same model.

Data parallel (``torch.distributed`` initialised by the caller, e.g. ``experiments/torchrun_pretrain.py
--stage qa``; every rank runs the stage with the same config and inputs), with the conventions of
pretraining (``evilm.pretrain.loop``); the collectives are ``evilm.train.distributed``'s:

- fine-tuning: ``batch_size`` is the global batch; each of W ranks takes its consecutive part of each
  batch of the one-process order (``shard_batches``). A rank's loss is the mean over its rows, weighed
  by its share of the batch's rows, and the ranks' gradients are averaged (``average_gradients``), so
  every step is the one-process step; the logged terms are the global means. A rank may have no rows
  in a step (the last batch of an epoch holds fewer items than there are ranks, or its clips are
  unreadable): it adds zeros. Dropout masks are each rank's own (seeded by step and rank).
- evaluation: each rank takes a contiguous part of the test set (``eval_batches``); the per-item
  results (``gather_items``) and embeddings or features (``gather_rows``) of every rank are gathered
  in rank order, which is the test set's order, and every metric is computed over the whole test set.
- rank 0 alone writes files (``finish``) and reports metrics.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from evilm.config import ConfigError, deep_update
from evilm.data.datasets import build_dataset
from evilm.data.frame_cache import frame_cache_dir
from evilm.data.loading import BatchCollator, CachedClips, frame_config, resolve_text_tokenizer
from evilm.data.text import TextTokenizer
from evilm.files import atomic_write_json
from evilm.models.config import preset_config
from evilm.models.evilm import EViLM
from evilm.models.weights import load_backbone
from evilm.pretrain.pretrained import load_pretrained
from evilm.stage import MetricsCallback, report
from evilm.tasks.config import FinetuneSettings
from evilm.train import distributed as D
from evilm.train.checkpoint import derived_seed, generator_for
from evilm.train.engine import Engine, RunningMeans, check_finite
from evilm.train.progress import ProgressBar
from evilm.train.runtime import EpochBatchSampler, autocast_dtype, resolve_device


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
        tokenizer = resolve_text_tokenizer(inputs, inputs["data"], settings.vocab_keep_fraction, settings.vocab_text)
        torch.manual_seed(derived_seed(settings.seed, "init"))
        overrides = deep_update(copy.deepcopy(settings.model_overrides), {"text": {"vocab_size": tokenizer.vocab_size}})
        backbone = EViLM(preset_config(settings.model, overrides))
        if inputs.get("video_init"):  # the image prior / ImageNet weights, as pre-training starts from
            load_backbone(backbone.video_encoder.backbone, inputs["video_init"], backbone.config.video.backbone)
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


def eval_batches(dataset: Any, settings: FinetuneSettings, device: torch.device, description: str = "evaluate",
                 ) -> Iterator[dict[str, Any]]:
    """The data set in order, in batches of ``eval_batch_size``, on the device; unreadable clips skipped.

    Under torch.distributed: this rank's contiguous part of it (gather the results in rank order).
    """
    part = dataset if not D.is_distributed() else Subset(dataset, D.rank_part(len(dataset)))
    loader = DataLoader(part, batch_size=settings.eval_batch_size, shuffle=False, collate_fn=BatchCollator(dataset),
                        num_workers=settings.num_workers)
    bar = ProgressBar(settings.progress and D.on_main(), total=len(loader), start=0, description=description)
    for i, batch in enumerate(loader):
        if "frames" in batch:
            yield to_device(batch, device)
        bar.update(i + 1, {})
    bar.close()


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
    D.broadcast_parameters(module)
    params = trainable if trainable is not None else [p for p in module.parameters() if p.requires_grad]
    steps_per_epoch = EpochBatchSampler(len(dataset), settings.batch_size, settings.seed, 0, drop_last=False).batches_per_epoch()
    total = settings.epochs * steps_per_epoch
    engine = Engine(params, settings.optim, total, device, autocast_dtype(settings.amp, device))
    torch.manual_seed(derived_seed(settings.seed, prefix, "train"))
    bar = ProgressBar(settings.progress and rank == 0, total=total, start=0, description=f"{prefix} fine-tune")
    step = 0
    epoch_terms = RunningMeans()
    window = RunningMeans()  # since the last log line (it may span an epoch boundary)
    seen, busy = 0, 0.0
    for epoch in range(settings.epochs):
        if isinstance(getattr(dataset, "epoch", None), int):
            dataset.epoch = epoch
        loader = DataLoader(dataset, batch_sampler=D.shard_batches(len(dataset), settings.batch_size, settings.seed, epoch),
                            collate_fn=BatchCollator(dataset), num_workers=settings.num_workers,
                            generator=generator_for(settings.seed, prefix, epoch))
        epoch_terms, epoch_seen = RunningMeans(), 0
        t0 = time.perf_counter()
        for batch in loader:
            if world == 1:
                if "frames" not in batch:
                    continue
                batch = to_device(batch, device)
                with engine.autocast():
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
                    with engine.autocast():
                        loss, terms = loss_fn(to_device(batch, device) if mine else None)
                    loss = loss * share
                    if mine:
                        local = {"loss": loss.item(), **{k: float(v) * share for k, v in terms.items()}}
                logged = D.mean_over_ranks_with_gaps(local, counts)
                value = logged["loss"]
            check_finite(step + 1, {f"{prefix} loss": value})
            engine.zero_grad()
            if loss is not None:
                engine.backward(loss)
            D.average_gradients(engine.params)
            engine.step()
            D.average_buffers(module)
            step += 1
            epoch_seen += rows
            epoch_terms.add(logged)
            window.add(logged)
            if step % settings.log_every == 0 or step == total:
                shown = window.means(f"{prefix}/train_")
                if rank == 0:
                    report(on_metrics, shown, step)
                rate = (seen + epoch_seen) / max(busy + time.perf_counter() - t0, 1e-9)
                bar.update(step, {"train/loss": shown[f"{prefix}/train_loss"], "train/clips_per_s": rate})
                window.reset()
        busy += time.perf_counter() - t0
        seen += epoch_seen
    bar.close()
    out = epoch_terms.means(f"{prefix}/train_")
    out[f"{prefix}/train_clips_per_s"] = seen / max(busy, 1e-9)
    out[f"{prefix}/train_steps"] = float(step)
    return out


def finish(out_dir: str | Path, metrics: dict[str, float], per_item: dict[str, Any],
           extra: dict[str, tuple[str, Any]] | None = None) -> dict[str, Path]:
    """Write ``metrics.json``, ``per_item.json`` (for bootstrapping over test items) and ``extra``
    (artifact name -> (file name, data)); on rank 0 only, and every rank returns once they are written."""
    out_dir = Path(out_dir)
    files = {"metrics": ("metrics.json", metrics), "per_item": ("per_item.json", per_item), **(extra or {})}
    if D.on_main():
        for name, data in files.values():
            atomic_write_json(out_dir / name, data)
    D.barrier()
    return {key: out_dir / name for key, (name, _) in files.items()}
