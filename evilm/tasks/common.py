"""What the downstream tasks share: the backbone to start from, the data, a fine-tuning loop.

A task starts from ``inputs['pretrained']`` (a pretraining stage's ``model.pt``) or,
without it, from a randomly initialised model of ``settings.model`` (Table 5's "no
pretraining" row: the same fine-tuning from random initialisation). Either way the
text vocabulary is the one pretraining used (stored in ``model.pt``), or, without
pretraining, the one pretraining would have built, so every row of a table has
the same model.
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
from torch import nn
from torch.utils.data import DataLoader

from evilm.config import ConfigError
from evilm.data import TextTokenizer, build_dataset
from evilm.models import EViLM, preset_config
from evilm.stage import MetricsCallback, report
from evilm.train.checkpoint import derived_seed, generator_for
from evilm.train.data import BatchCollator, CachedClips, frame_config, resolve_text_tokenizer
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
    batch_size: int = 16
    eval_batch_size: int = 32
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4, weight_decay=0.01, warmup_ratio=0.1))
    augment: bool = False  # training-mode frames (random frame per segment, crop, jitter)
    cache_clips: bool = True  # without augmentation: decode each clip once and keep it in memory
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
    dataset = build_dataset(kind, records, start.text_tokenizer, frame_config(cfg), train=augment,
                            max_text_len=cfg.max_text_len, seed=settings.seed, **kwargs)
    if settings.cache_clips and not augment:
        dataset = CachedClips(dataset)
    return dataset


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def eval_batches(dataset: Any, settings: FinetuneSettings, device: torch.device, description: str = "evaluate",
                 ) -> Iterator[dict[str, Any]]:
    """The data set in order, in batches of ``eval_batch_size``, on the device; unreadable clips skipped."""
    loader = DataLoader(dataset, batch_size=settings.eval_batch_size, shuffle=False, collate_fn=BatchCollator(dataset),
                        num_workers=settings.num_workers)
    bar = ProgressBar(settings.progress, total=len(loader), start=0, description=description)
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
) -> dict[str, float]:
    """AdamW over ``settings.epochs`` epochs of ``dataset``; ``loss_fn(batch) -> (loss, logged terms)``.

    Data order comes from (seed, epoch); a NaN or infinite loss stops with ``NonFiniteLossError``.
    Returns the last epoch's mean terms and the throughput.
    """
    device = resolve_device(settings.device)
    module.to(device).train()
    params = trainable if trainable is not None else [p for p in module.parameters() if p.requires_grad]
    optimizer = create_optimizer(params, settings.optim)
    steps_per_epoch = EpochBatchSampler(len(dataset), settings.batch_size, settings.seed, 0, drop_last=False).batches_per_epoch()
    total = settings.epochs * steps_per_epoch
    scheduler = create_scheduler(optimizer, total, settings.optim)
    amp_dtype = autocast_dtype(settings.amp, device)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    torch.manual_seed(derived_seed(settings.seed, prefix, "train"))
    bar = ProgressBar(settings.progress, total=total, start=0, description=f"{prefix} fine-tune")
    step = 0
    epoch_terms: dict[str, float] = {}
    seen, busy = 0, 0.0
    for epoch in range(settings.epochs):
        if isinstance(getattr(dataset, "epoch", None), int):
            dataset.epoch = epoch
        sampler = EpochBatchSampler(len(dataset), settings.batch_size, settings.seed, epoch, drop_last=False)
        loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=BatchCollator(dataset),
                            num_workers=settings.num_workers, generator=generator_for(settings.seed, prefix, epoch))
        epoch_terms, count, epoch_seen = {}, 0, 0
        window: dict[str, float] = {}
        t0 = time.perf_counter()
        for batch in loader:
            if "frames" not in batch:
                continue
            batch = to_device(batch, device)
            autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
            with autocast:
                loss, terms = loss_fn(batch)
            value = loss.item()
            if not math.isfinite(value):
                raise NonFiniteLossError(step + 1, f"{prefix} loss", value)
            optimizer.zero_grad(set_to_none=True)
            (scaler.scale(loss) if scaler is not None else loss).backward()
            if scaler is not None:
                scaler.unscale_(optimizer)
            if settings.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, settings.optim.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            step += 1
            count += 1
            epoch_seen += len(batch["frames"])
            logged = {"loss": value, **{k: float(v) for k, v in terms.items()}}
            for k, v in logged.items():
                epoch_terms[k] = epoch_terms.get(k, 0.0) + v
                window[k] = window.get(k, 0.0) + v
            if step % settings.log_every == 0 or step == total:
                n = settings.log_every if step % settings.log_every == 0 else (step % settings.log_every)
                shown = {f"{prefix}/train_{k}": v / n for k, v in window.items()}
                report(on_metrics, shown, step)
                rate = (seen + epoch_seen) / max(busy + time.perf_counter() - t0, 1e-9)
                bar.update(step, {"train/loss": shown[f"{prefix}/train_loss"], "train/clips_per_s": rate})
                window = {}
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


def finish(out_dir: str | Path, metrics: dict[str, float], per_item: dict[str, Any]) -> dict[str, Path]:
    """Write ``metrics.json`` and ``per_item.json`` (for bootstrapping over test items)."""
    out_dir = Path(out_dir)
    return {
        "metrics": write_json(out_dir / "metrics.json", metrics),
        "per_item": write_json(out_dir / "per_item.json", per_item),
    }


FINETUNE_PRESETS: dict[str, dict[str, Any]] = {
    # task-specific learning rates/epochs in the paper are not given; these follow the field's
    # usual fine-tuning (AdamW 1e-4 / 5e-5, a few epochs) with augmented frames.
    "paper": {"model": "paper", "epochs": 5, "batch_size": 32, "eval_batch_size": 64, "augment": True,
              "cache_clips": False, "num_workers": 8, "vocab_keep_fraction": 0.3, "log_every": 50},
    # a 2-core CPU: 2 epochs over (at most) 300 training items, fixed frames decoded once,
    # a higher learning rate; the full test splits.
    "quick": {"model": "quick", "epochs": 2, "batch_size": 16, "eval_batch_size": 32, "vocab_keep_fraction": 1.0,
              "train_items": 300, "optim": {"lr": 3e-4, "weight_decay": 0.01, "warmup_ratio": 0.1}},
    "smoke": {"model": "smoke", "epochs": 1, "batch_size": 4, "eval_batch_size": 8, "vocab_keep_fraction": 1.0,
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
