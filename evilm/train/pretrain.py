"""Video-language pretraining: MLM + VTM + MVM (paper Section 3.4, eq. 8).

One optimizer step, top to bottom:

1. ``prepare_batch`` draws everything random for the step from a generator seeded
   by (seed, step, micro-batch): the MLM word mask (15% of words, 80/10/10), the
   region mask (block-wise, 40% of each frame by default), the mismatched
   captions for VTM. The tokenizer labels the *unmasked* frames.
2. ``EViLMForPretraining.forward`` computes the chosen losses:
   - MLM and MVM share one pass: masked frames (masked regions zeroed in pixel
     space) with masked text; the MLM head reads the masked words, the MVM head
     the masked regions (eq. 3).
   - VTM runs on clean inputs: each clip with its own caption (label 1) and with
     another clip's caption from the batch (label 0; 1 if the two captions are
     the same words), a binary head on CLS.
3. The weighted sum (the paper: equal weights) is back-propagated, accumulated
   over ``accum_steps`` micro-batches, clipped, and applied by AdamW under a
   warm-up + decay schedule.

Exact resume. The data order is a permutation drawn from (seed, epoch); the
position in it is saved. Per-step randomness comes from (seed, step), and the
global RNG (dropout) is saved in the checkpoint, so a run stopped after step k
and resumed gives the same weights and metrics as one that ran straight through.

Data parallel (``torch.distributed`` initialised by the caller, e.g. ``experiments/torchrun_pretrain.py``).
``batch_size`` is the global micro-batch: each of W ranks takes ``batch_size / W`` clips of the
one-process batch (the data order's batch ``i`` is split into W consecutive parts), and W ranks
train on exactly what one process would:

- the step's random draws are made for the global batch: every rank gathers the micro-batch's
  captions (a few integers per clip) and draws the MLM mask, region mask and VTM pairs as one
  process would, then keeps its rows. VTM's mismatched captions thus come from the whole global
  batch; a rank encodes the ones it needs itself.
- each term is a mean over its targets (masked words, masked regions, pairs), and ranks hold
  different numbers of them: a rank weighs its means by its share of the targets, so that DDP's
  average of the ranks' gradients is the gradient of the global mean, and so are the logged
  values (averaged over ranks before they are reported).
- rank 0 alone writes files and reports metrics; a checkpoint holds the plain (unwrapped) model
  and resumes on any number of ranks (``out_dir`` must be on storage every rank sees).

Two things differ from one process by design: dropout masks (each rank draws its own, seeded by
(seed, step, rank) so that a resumed run repeats them), and BatchNorm statistics, which DDP
computes per rank over ``batch_size / W`` clips (the ``quick`` preset's MobileNetV3 has
BatchNorm; ``smoke`` and ``paper`` use EdgeNeXt, LayerNorm only).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from evilm.config import ConfigError, to_dict
from evilm.data import DataError
from evilm.data.text import PAD_ID, mask_tokens
from evilm.models import EViLM, MLMHead, MVMHead, VTMHead
from evilm.stage import MetricsCallback, StageResult, report
from evilm.train import distributed as D
from evilm.train.checkpoint import (
    atomic_save,
    derived_seed,
    generator_for,
    load_checkpoint,
    restore,
    save_checkpoint,
)
from evilm.train.data import FRAME_CACHE
from evilm.train.losses import IGNORE, mlm_loss, mvm_loss, vtm_loss, vtm_pairs
from evilm.train.masking import MaskConfig, apply_region_mask, make_mask
from evilm.train.optim import OptimConfig, create_optimizer, create_scheduler
from evilm.train.progress import ProgressBar

LOSSES = ("mlm", "vtm", "mvm")


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or infinite; names the step and the term."""

    def __init__(self, step: int, term: str, value: float):
        self.step, self.term, self.value = step, term, value
        super().__init__(f"non-finite loss at step {step}: {term} = {value}; the run was stopped")


@dataclass
class PretrainConfig:
    model: str = "quick"  # evilm.models preset
    # Merged into the preset. text.vocab_size and codebook_size are set from the data and the tokenizer.
    model_overrides: dict[str, Any] = field(default_factory=dict)
    losses: list[str] = field(default_factory=lambda: ["mlm", "vtm", "mvm"])
    loss_weights: dict[str, float] = field(default_factory=dict)  # a missing term weighs 1.0 (the paper)
    mlm_prob: float = 0.15  # fraction of words masked (80% [MASK], 10% random word, 10% kept)
    mask: MaskConfig = field(default_factory=MaskConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    batch_size: int = 16  # clips per micro-batch, over all ranks (each of W ranks takes batch_size / W)
    accum_steps: int = 1  # micro-batches per optimizer step
    epochs: int = 1
    max_steps: int = 0  # > 0: this many optimizer steps in all, instead of `epochs`
    stop_after: int = 0  # > 0: stop after this many optimizer steps, with a checkpoint (the schedule still plans the full run)
    checkpoint_every: int = 0  # optimizer steps between checkpoints; 0: only when the run stops or ends
    resume: bool = False  # continue from out_dir/checkpoints/last.pt when it exists
    log_every: int = 10
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"  # auto: bf16 (or fp16) on CUDA, off on CPU
    device: str = "auto"  # auto: cuda when available, else cpu
    num_workers: int = 0
    seed: int = 0
    progress: bool = True
    # data (used by the stage ``run``)
    benchmark: str = "webvid"  # the video-text corpus under inputs["data"]
    augment: bool = False  # training-mode frames (random frame per segment, crop, jitter) instead of fixed ones
    cache_clips: bool = True  # without augmentation: decode each clip once and keep it in memory
    # evaluation clips decoded once for all stages into this folder (relative: under the data root); None: off
    frame_cache: str | None = None
    mvm_targets: Literal["online", "cached"] = "online"  # tokenizer on each batch, or inputs["codes"] per clip
    vocab_keep_fraction: float = 0.3  # text vocabulary when none is given: top 30% of caption words (the paper)
    max_skip_fraction: float = 0.05  # unreadable clips tolerated per epoch

    def __post_init__(self):
        unknown = [name for name in self.losses if name not in LOSSES]
        if unknown or not self.losses or len(set(self.losses)) != len(self.losses):
            raise ConfigError("losses", f"{self.losses} must be distinct names from {', '.join(LOSSES)}")
        for name, weight in self.loss_weights.items():
            if name not in LOSSES:
                raise ConfigError(f"loss_weights.{name}", f"unknown loss; allowed: {', '.join(LOSSES)}")
            if not weight >= 0:
                raise ConfigError(f"loss_weights.{name}", f"must be >= 0, got {weight}")
        if not 0.0 < self.mlm_prob < 1.0:
            raise ConfigError("mlm_prob", f"must be in (0, 1), got {self.mlm_prob}")
        for key in ("batch_size", "accum_steps", "epochs", "log_every"):
            if getattr(self, key) < 1:
                raise ConfigError(key, f"must be >= 1, got {getattr(self, key)}")
        if "vtm" in self.losses and self.batch_size < 2:
            raise ConfigError("batch_size", "VTM draws mismatched captions from the batch: needs >= 2")
        if self.mvm_targets == "cached" and self.augment:
            raise ConfigError("mvm_targets", "cached codes label the fixed (evaluation-mode) frames; with "
                              "augment=true the frames change every epoch, so label online")
        if not 0.0 < self.vocab_keep_fraction <= 1.0:
            raise ConfigError("vocab_keep_fraction", f"must be in (0, 1], got {self.vocab_keep_fraction}")

    def weight(self, name: str) -> float:
        return float(self.loss_weights.get(name, 1.0))


# --- the model with its pretraining heads ------------------------------------------------------


class EViLMForPretraining(nn.Module):
    """The E-ViLM backbone plus the heads of the chosen losses."""

    def __init__(self, backbone: EViLM, losses: list[str]):
        super().__init__()
        self.backbone = backbone
        self.losses = list(losses)
        cfg = backbone.config
        self.mlm_head = MLMHead(backbone.width, cfg.text.vocab_size) if "mlm" in losses else None
        self.vtm_head = VTMHead(backbone.width) if "vtm" in losses else None
        self.mvm_head = MVMHead(backbone.width, cfg.codebook_size) if "mvm" in losses else None

    def heads(self) -> dict[str, nn.Module]:
        return {name: getattr(self, f"{name}_head") for name in self.losses}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Loss terms and accuracies of a batch made by ``prepare_batch``."""
        out: dict[str, torch.Tensor] = {}
        bb = self.backbone
        frames, ids, attn = batch["frames"], batch["input_ids"], batch["attention_mask"]
        clean_video = None
        if self.mlm_head is not None or self.mvm_head is not None:
            if self.mvm_head is not None:
                video = bb.encode_video(apply_region_mask(frames, batch["region_mask"], bb.stride))
            else:
                video = clean_video = bb.encode_video(frames)
            text_ids = batch["mlm_input_ids"] if self.mlm_head is not None else ids
            fused = bb.fuse(video=video, text=bb.encode_text(text_ids, attn), text_mask=attn)
            if self.mlm_head is not None:
                labels = batch["mlm_labels"]
                chosen = labels != IGNORE
                logits = self.mlm_head(fused.text[chosen])
                out["mlm"] = mlm_loss(logits, labels[chosen])
                out["mlm_acc"] = _accuracy(logits, labels[chosen])
            if self.mvm_head is not None:
                region_mask = batch["region_mask"]
                logits = self.mvm_head(fused.video[region_mask.flatten(1)])
                out["mvm"] = mvm_loss(logits, batch["codes"], region_mask)
                out["mvm_acc"] = _accuracy(logits, batch["codes"][region_mask])
        if self.vtm_head is not None:
            if clean_video is None:
                clean_video = bb.encode_video(frames)
            text = bb.encode_text(ids, attn)
            if "vtm_negative_ids" in batch:  # under DDP: captions drawn from the global batch, encoded here
                neg_attn = batch["vtm_negative_mask"]
                neg_text = bb.encode_text(batch["vtm_negative_ids"], neg_attn)
            else:
                neg = batch["vtm_negatives"]
                neg_text, neg_attn = text[neg], attn[neg]
            fused = bb.fuse(
                video=torch.cat([clean_video, clean_video]),
                text=torch.cat([text, neg_text]),
                text_mask=torch.cat([attn, neg_attn]),
            )
            logits = self.vtm_head(fused.cls)
            out["vtm"] = vtm_loss(logits, batch["vtm_labels"])
            out["vtm_acc"] = _accuracy(logits, batch["vtm_labels"])
        return out


def _accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if targets.numel() == 0:
        return torch.zeros((), device=logits.device)
    return (logits.detach().argmax(-1) == targets).float().mean()


# --- per-step randomness -----------------------------------------------------------------------


@dataclass
class GlobalCaptions:
    """Under DDP: the captions of the whole micro-batch (every rank's rows in rank order, padded to one
    length) and this rank's rows among them."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    rows: slice


def prepare_batch(
    batch: dict[str, Any],
    cfg: PretrainConfig,
    model: EViLMForPretraining,
    generator: torch.Generator,
    tokenizer: Any | None,
    device: torch.device,
    captions: GlobalCaptions | None = None,
) -> dict[str, torch.Tensor]:
    """Move a data batch to the device and draw the step's masks, MLM targets and VTM negatives.

    With ``captions`` (DDP), the draws are made for the global batch, as one process would make
    them, and this rank keeps its rows; VTM negatives then come as captions, not indices.
    """
    sharded = captions is not None
    if captions is None:  # one process: its batch is the global batch
        captions = GlobalCaptions(batch["input_ids"], batch["attention_mask"], slice(None))
    all_ids, all_attn, mine = captions.input_ids, captions.attention_mask, captions.rows
    frames = batch["frames"]
    ids, attn = all_ids[mine], all_attn[mine]
    out: dict[str, torch.Tensor] = {"frames": frames, "input_ids": ids, "attention_mask": attn}
    if "mlm" in cfg.losses:
        # BERT's 80/10/10 masking of cfg.mlm_prob of the words (evilm.data.text); labels IGNORE elsewhere
        vocab_size = model.backbone.config.text.vocab_size
        masked, labels = mask_tokens(all_ids, all_attn, vocab_size, cfg.mlm_prob, generator)
        out["mlm_input_ids"], out["mlm_labels"] = masked[mine], labels[mine]
    if "mvm" in cfg.losses:
        _, t, _, h, w = frames.shape
        gh, gw = model.backbone.video_grid(h, w)
        out["region_mask"] = make_mask((len(all_ids), t, gh, gw), cfg.mask, generator)[mine]
        if "codes" in batch:  # labels cached per clip by evilm.tokenizers
            out["codes"] = batch["codes"].long()
        elif tokenizer is not None:
            out["codes"] = tokenizer.encode(frames.to(device)).cpu()
        else:
            raise ValueError("MVM needs a video tokenizer (inputs['tokenizer']) or cached codes in the batch")
        if out["codes"].shape != out["region_mask"].shape:
            raise ValueError(
                f"tokenizer codes {tuple(out['codes'].shape)} are not on the model's MVM grid "
                f"{tuple(out['region_mask'].shape)}: the tokenizer's stride/image size do not match the model"
            )
    if "vtm" in cfg.losses:
        neg = vtm_pairs(len(all_ids), generator)
        # an identical caption still matches
        same = (all_ids == all_ids[neg]).all(1) & (all_attn == all_attn[neg]).all(1)
        if sharded:  # the mismatched caption may sit on another rank: pass the caption itself
            out["vtm_negative_ids"], out["vtm_negative_mask"] = all_ids[neg[mine]], all_attn[neg[mine]]
        else:
            out["vtm_negatives"] = neg
        out["vtm_labels"] = torch.cat([torch.ones(len(ids), dtype=torch.long), same[mine].long()])
    return {k: v.to(device, non_blocking=True) for k, v in out.items()}


def _gather_captions(batch: dict[str, Any], counts: list[int]) -> GlobalCaptions:
    """Every rank's captions of this micro-batch, padded to the longest (as one process's collate pads
    the global batch), and this rank's rows; ``counts`` is every rank's number of clips."""
    ids, attn = batch["input_ids"], batch["attention_mask"]
    length = int(D.gather_rows(torch.tensor([ids.shape[1]])).max())
    pad = length - ids.shape[1]
    ids = torch.nn.functional.pad(ids, (0, pad), value=PAD_ID)
    attn = torch.nn.functional.pad(attn.to(ids.dtype), (0, pad), value=0)
    both = D.gather_rows(torch.stack([ids, attn], dim=1))  # (B, 2, L): one exchange for ids and mask
    rank = D.rank_and_world()[0]
    start = sum(counts[:rank])
    return GlobalCaptions(both[:, 0], both[:, 1].to(batch["attention_mask"].dtype),
                          slice(start, start + counts[rank]))


def _rank_shares(batch: dict[str, torch.Tensor], cfg: PretrainConfig) -> dict[str, float]:
    """Under DDP, each term's weight on this rank: its number of targets over the ranks' mean number.

    A term is the mean over its targets (masked words, masked regions, video-text pairs). DDP averages
    the ranks' gradients; weighting rank r's mean by n_r / mean(n) makes that average the gradient of
    the global batch's mean, and the ranks' average of the weighted values the global value.
    """
    counts: dict[str, float] = {}
    if "mlm" in cfg.losses:
        counts["mlm"] = float((batch["mlm_labels"] != IGNORE).sum())
    if "mvm" in cfg.losses:
        counts["mvm"] = float(batch["region_mask"].sum())
    if "vtm" in cfg.losses:
        counts["vtm"] = float(len(batch["vtm_labels"]))
    mean = D.mean_over_ranks(counts)
    return {k: counts[k] / mean[k] if mean[k] > 0 else 0.0 for k in counts}


# --- data order --------------------------------------------------------------------------------


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


# --- the loop ----------------------------------------------------------------------------------


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full precision."""
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if amp == "bf16" else torch.float16


def _resume_key(cfg: PretrainConfig) -> dict[str, Any]:
    """The settings a resumed run must share with the run that saved the checkpoint."""
    d = to_dict(cfg)
    for key in ("stop_after", "checkpoint_every", "resume", "log_every", "progress", "num_workers", "device"):
        d.pop(key)
    return d


def pretrain(
    cfg: PretrainConfig,
    model: EViLMForPretraining,
    dataset: Dataset,
    out_dir: str | Path,
    *,
    tokenizer: Any | None = None,
    collate_fn: Any | None = None,
    on_metrics: MetricsCallback | None = None,
    resume_from: str | Path | None = None,
    meta: dict[str, Any] | None = None,
) -> StageResult:
    """Train ``model`` on ``dataset`` (dict items: frames, input_ids, attention_mask[, codes]).

    Writes ``checkpoints/last.pt`` when it stops or ends (and every ``checkpoint_every`` steps),
    and ``model.pt`` (backbone + heads + ``meta``, see ``save_pretrained``) only when the run is
    complete. Under ``torch.distributed`` every rank calls this with the same arguments (see the
    module docstring); rank 0 writes the files and calls ``on_metrics``.
    """
    out_dir = Path(out_dir)
    rank, world = D.rank_and_world()
    if cfg.batch_size % world:
        raise ConfigError("batch_size", f"{cfg.batch_size} clips (the global micro-batch) do not split evenly "
                          f"over {world} ranks: use a multiple of {world}")
    device = resolve_device(cfg.device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())  # this rank's GPU (set by init_distributed)
    model.to(device)
    if tokenizer is not None:
        tokenizer.to(device).eval()
    rank_batch = cfg.batch_size // world
    sampler_probe = EpochBatchSampler(len(dataset), rank_batch, cfg.seed, 0, rank=rank, world_size=world)
    steps_per_epoch = sampler_probe.batches_per_epoch() // cfg.accum_steps
    if steps_per_epoch < 1:
        raise ValueError(
            f"{len(dataset)} clips make no full step of batch_size={cfg.batch_size} x accum_steps={cfg.accum_steps}"
        )
    total_steps = cfg.max_steps if cfg.max_steps > 0 else cfg.epochs * steps_per_epoch
    optimizer = create_optimizer(model, cfg.optim)
    scheduler = create_scheduler(optimizer, total_steps, cfg.optim)
    amp_dtype = autocast_dtype(cfg.amp, device)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None

    step, epoch, batch_pos = 0, 0, 0
    epoch_sums: dict[str, float] = {}
    epoch_count = 0
    ckpt_path = out_dir / "checkpoints" / "last.pt"
    if resume_from is None and cfg.resume and ckpt_path.is_file():
        resume_from = ckpt_path
    if world > 1 and 0 < D.mean_over_ranks({"resume": float(resume_from is not None)})["resume"] < 1:
        raise RuntimeError(f"{ckpt_path} is visible on some ranks only: out_dir must be on storage every rank sees")
    if resume_from is not None:
        state = load_checkpoint(resume_from, map_location=device)
        if state["extra"].get("config") != json.dumps(_resume_key(cfg), sort_keys=True):
            raise ValueError(f"{resume_from}: saved by a run with other settings; cannot resume this one from it")
        restore(state, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler)
        step, epoch, batch_pos = state["step"], state["epoch"], state["batch_in_epoch"]
        epoch_sums = dict(state["extra"]["epoch_sums"])
        epoch_count = int(state["extra"]["epoch_count"])
    else:
        torch.manual_seed(derived_seed(cfg.seed, "global"))

    def checkpoint() -> None:
        extra = {
            "config": json.dumps(_resume_key(cfg), sort_keys=True),
            "epoch_sums": epoch_sums,
            "epoch_count": epoch_count,
        }
        if rank == 0:  # the plain model (not the DDP wrapper): it resumes on any number of ranks
            save_checkpoint(ckpt_path, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                            step=step, epoch=epoch, batch_in_epoch=batch_pos, extra=extra)

    stop_at = min(total_steps, cfg.stop_after) if cfg.stop_after > 0 else total_steps
    window: dict[str, float] = {}
    window_steps, window_time, window_data_time = 0, 0.0, 0.0
    progress = ProgressBar(cfg.progress and rank == 0, total=total_steps, start=step)
    net = D.wrap(model, device)  # DDP when distributed (gradients averaged over ranks), else the model itself
    model.train()
    while step < stop_at:
        if isinstance(getattr(dataset, "epoch", None), int):
            dataset.epoch = epoch  # the data set's own randomness (frame choice, crops) follows the epoch
        skipped = 0
        sampler = EpochBatchSampler(len(dataset), rank_batch, cfg.seed, epoch,
                                    start=batch_pos * cfg.accum_steps, rank=rank, world_size=world)
        loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.num_workers, collate_fn=collate_fn,
                            generator=generator_for(cfg.seed, "loader", epoch), pin_memory=device.type == "cuda")
        batches = iter(loader)
        while batch_pos < steps_per_epoch and step < stop_at:
            t0 = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            if world > 1:  # each rank its own dropout masks, the same again when resumed
                torch.manual_seed(derived_seed(cfg.seed, "dropout", step, rank))
            terms, data_time = _optimizer_step(
                cfg, model, net, batches, optimizer, scaler, amp_dtype, tokenizer, device, step
            )
            scheduler.step()
            step += 1
            batch_pos += 1
            skipped += int(terms.pop("clips_skipped"))
            if skipped > cfg.max_skip_fraction * len(dataset):
                raise DataError(f"{skipped} unreadable clips in epoch {epoch + 1}, more than max_skip_fraction="
                                f"{cfg.max_skip_fraction} of {len(dataset)}; see the data set's log for which")
            elapsed = time.perf_counter() - t0
            terms["lr"] = lr
            for k, v in terms.items():
                window[k] = window.get(k, 0.0) + v
                epoch_sums[k] = epoch_sums.get(k, 0.0) + v
            epoch_count += 1
            window_steps += 1
            window_time += elapsed
            window_data_time += data_time
            if step % cfg.log_every == 0 or step == stop_at:
                clips = window_steps * cfg.batch_size * cfg.accum_steps  # over all ranks
                logged = {f"train/{k}": v / window_steps for k, v in window.items()}
                logged["train/clips_per_s"] = clips / max(window_time, 1e-9)
                logged["train/data_fraction"] = window_data_time / max(window_time, 1e-9)
                if rank == 0:
                    report(on_metrics, logged, step)
                progress.update(step, logged)
                window, window_steps, window_time, window_data_time = {}, 0, 0.0, 0.0
            if cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0:
                checkpoint()
        if batch_pos >= steps_per_epoch:
            epoch, batch_pos = epoch + 1, 0
            if step < total_steps:  # the final metrics average the last epoch
                epoch_sums, epoch_count = {}, 0
    progress.close()
    checkpoint()

    complete = step >= total_steps
    metrics = {f"pretrain/{k}": v / max(epoch_count, 1) for k, v in epoch_sums.items()}
    metrics.update({"pretrain/steps": float(step), "pretrain/total_steps": float(total_steps),
                    "pretrain/complete": float(complete)})
    artifacts: dict[str, Path] = {"checkpoint": ckpt_path, "metrics": out_dir / "metrics.json"}
    if complete:
        artifacts["model"] = out_dir / "model.pt"
    if rank == 0:
        _write_json(artifacts["metrics"], metrics)
        if complete:
            save_pretrained(artifacts["model"], model, meta={"pretrain_config": to_dict(cfg), **(meta or {})})
    D.barrier()  # every rank returns once rank 0's files are in place
    return StageResult(metrics=metrics, artifacts=artifacts)


def _optimizer_step(cfg, model, net, batches, optimizer, scaler, amp_dtype, tokenizer, device, step):
    """Accumulate ``accum_steps`` micro-batches, clip, step. Returns the terms (averaged over the
    micro-batches and the ranks) and the time spent waiting for data.

    ``net`` is ``model`` itself, or its DDP wrapper: forward and backward go through it.
    """
    optimizer.zero_grad(set_to_none=True)
    distributed = net is not model
    sums: dict[str, float] = {}
    data_time = 0.0
    skipped = 0
    for micro in range(cfg.accum_steps):
        t0 = time.perf_counter()
        raw = next(batches)
        data_time += time.perf_counter() - t0  # waiting for the loader (decoding, collating)
        # every rank's (readable clips, unreadable clips); one process: its own
        readable = len(raw["frames"]) if "frames" in raw else 0
        per_rank = D.gather_rows(torch.tensor([[readable, int(raw.get("num_skipped", 0))]]))
        counts = per_rank[:, 0].tolist()
        skipped += int(per_rank[:, 1].sum())
        if min(counts) == 0 or ("vtm" in cfg.losses and sum(counts) < 2):
            raise DataError(f"step {step + 1}: too few readable clips in a batch ({skipped} unreadable)")
        captions = _gather_captions(raw, counts) if distributed else None
        batch = prepare_batch(raw, cfg, model, generator_for(cfg.seed, "step", step, micro), tokenizer, device,
                              captions)
        shares = _rank_shares(batch, cfg) if distributed else {}
        autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
        # DDP averages gradients in the backward pass: only once per step, on the last micro-batch
        sync = net.no_sync() if distributed and micro < cfg.accum_steps - 1 else nullcontext()
        with sync:
            with autocast:
                out = net(batch)
            if shares:
                out = {k: v * shares[k.removesuffix("_acc")] for k, v in out.items()}
            loss = sum(cfg.weight(name) * out[name] for name in cfg.losses)
            local = {"loss": loss.item(), **{k: v.item() for k, v in out.items()}}
            averaged = D.mean_over_ranks(local)  # one process: ``local`` itself
            values = {k: averaged[k] for k in local}
            for name in cfg.losses:  # (the ranks' mean: a non-finite term stops every rank)
                if not math.isfinite(values[name]):
                    raise NonFiniteLossError(step + 1, name, values[name])
            if not math.isfinite(values["loss"]):
                raise NonFiniteLossError(step + 1, "total", values["loss"])
            scaled = loss / cfg.accum_steps
            (scaler.scale(scaled) if scaler is not None else scaled).backward()
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v
    if scaler is not None:
        scaler.unscale_(optimizer)
    params = [p for p in model.parameters() if p.grad is not None]
    if cfg.optim.grad_clip > 0:
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
    else:
        grad_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    terms = {k: v / cfg.accum_steps for k, v in sums.items()}
    terms["grad_norm"] = float(grad_norm)
    terms["clips_skipped"] = float(skipped)  # over all ranks
    return terms, data_time


# --- saved pretrained models -------------------------------------------------------------------


def save_pretrained(path: str | Path, model: EViLMForPretraining, meta: dict[str, Any] | None = None) -> Path:
    """Backbone config + weights + pretraining heads, loadable with ``weights_only=True``."""
    state = {
        "format": "evilm-pretrained/1",
        "model_config": to_dict(model.backbone.config),
        "backbone": model.backbone.state_dict(),
        "heads": {name: head.state_dict() for name, head in model.heads().items()},
        "meta": json.dumps(meta or {}),
    }
    return atomic_save(state, path)


@dataclass
class Pretrained:
    backbone: EViLM
    heads: dict[str, dict[str, torch.Tensor]]  # head name -> state dict
    meta: dict[str, Any]


def load_pretrained(path: str | Path) -> Pretrained:
    """The backbone (weights loaded) and the heads' state dicts of a ``model.pt``."""
    from evilm.config import from_dict
    from evilm.models import EViLMConfig

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained model not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: not a readable model file ({err})") from err
    if not isinstance(state, dict) or state.get("format") != "evilm-pretrained/1":
        raise ValueError(f"{path}: not an evilm pretrained model (format evilm-pretrained/1)")
    backbone = EViLM(from_dict(EViLMConfig, state["model_config"], path="model_config"))
    backbone.load_state_dict(state["backbone"])
    return Pretrained(backbone=backbone, heads=state["heads"], meta=json.loads(state["meta"]))


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    tmp.replace(path)


# --- presets and the stage ---------------------------------------------------------------------

PRESETS: dict[str, dict[str, Any]] = {
    # Section 4.1: lr 1e-4, weight decay 0.01, 20 epochs of WebVid, block masking of 40%,
    # 15% of words; augmented frames decoded by worker processes; mixed precision on GPUs.
    "paper": {
        "model": "paper", "batch_size": 32, "epochs": 20, "augment": True, "cache_clips": False,
        "num_workers": 8, "log_every": 50, "checkpoint_every": 2000,
    },
    # A 2-core CPU, where one step of 16 clips takes seconds: 30 steps (480 of the world's
    # ~1,900 WebVid clips), fixed frames decoded once. The learning rate is higher than the
    # paper's because the run is ~100,000x shorter. The generated world's vocabulary (~270
    # words) has no long tail: keeping 30% of it would turn ~19% of caption words (colour and
    # shape synonyms) into [UNK].
    "quick": {
        "model": "quick", "batch_size": 16, "max_steps": 30, "vocab_keep_fraction": 1.0, "frame_cache": FRAME_CACHE,
        "optim": {"lr": 5e-4, "warmup_ratio": 0.1},
    },
    "smoke": {
        "model": "smoke", "batch_size": 4, "epochs": 1, "vocab_keep_fraction": 1.0, "log_every": 1,
        "frame_cache": FRAME_CACHE,
        "optim": {"lr": 1e-3},
    },
}


def pretrain_config(profile: str, overrides: dict[str, Any] | None = None) -> PretrainConfig:
    """The pretraining config of a profile (``smoke``/``quick``/``paper``) with validated overrides."""
    import copy

    from evilm.config import close_match, deep_update, from_dict

    if profile not in PRESETS:
        raise ConfigError("profile", f"unknown profile '{profile}'{close_match(profile, PRESETS)}; known: {', '.join(PRESETS)}")
    return from_dict(PretrainConfig, deep_update(copy.deepcopy(PRESETS[profile]), overrides or {}))


def run(
    config: PretrainConfig,
    inputs: dict[str, Any],
    out_dir: str | Path,
    on_metrics: MetricsCallback | None = None,
) -> StageResult:
    """Stage: pretrain on ``inputs['data']`` (a data root with ``config.benchmark``).

    Inputs: ``data`` (required); ``tokenizer`` (a video tokenizer file, for MVM online);
    ``codes`` (per-clip codes from the tokenizer stage, for ``mvm_targets='cached'``);
    ``text_tokenizer`` (a TextTokenizer file; default: built from the data's WebVid captions);
    ``resume`` (a checkpoint to continue from).
    Artifacts: ``model`` (model.pt, only when complete), ``checkpoint``, ``text_tokenizer``, ``metrics``.
    """
    from evilm.config import deep_update
    from evilm.data import build_dataset
    from evilm.models import preset_config
    from evilm.train.data import (
        BatchCollator,
        CachedClips,
        frame_cache_dir,
        frame_config,
        records_of,
        resolve_text_tokenizer,
    )

    out_dir = Path(out_dir)
    if "data" not in inputs:
        raise ConfigError("inputs.data", "pretraining needs a data root")
    data_root = Path(inputs["data"])
    text_tokenizer = resolve_text_tokenizer(inputs, data_root, config.vocab_keep_fraction)
    overrides: dict[str, Any] = {"text": {"vocab_size": text_tokenizer.vocab_size}}
    video_tokenizer, codes = None, None
    if "mvm" in config.losses:
        if config.mvm_targets == "cached":
            from evilm.tokenizers import CachedCodes

            if "codes" not in inputs:
                raise ConfigError("inputs.codes", "mvm_targets='cached' needs the tokenizer stage's codes file")
            codes = CachedCodes(inputs["codes"])
            overrides["codebook_size"] = codes.codebook_size
            stride = codes.stride
        else:
            from evilm.tokenizers import load_tokenizer

            if "tokenizer" not in inputs:
                raise ConfigError("inputs.tokenizer", "MVM needs a video tokenizer file")
            video_tokenizer = load_tokenizer(inputs["tokenizer"])
            overrides["codebook_size"] = video_tokenizer.codebook_size
            stride = video_tokenizer.stride
    model_cfg = preset_config(config.model, deep_update(config.model_overrides, overrides))

    torch.manual_seed(derived_seed(config.seed, "init"))
    model = EViLMForPretraining(EViLM(model_cfg), config.losses)
    if "mvm" in config.losses and stride != model.backbone.stride:
        raise ValueError(f"the video tokenizer labels {stride}px regions but the model's MVM grid has "
                         f"{model.backbone.stride}px regions; train the tokenizer with stride={model.backbone.stride}")

    _, records = records_of(config.benchmark, data_root, "train")
    frames = frame_config(model_cfg, frame_cache_dir(config.frame_cache, data_root))
    dataset = build_dataset("video_text", records, text_tokenizer, frames, train=config.augment,
                            max_text_len=model_cfg.max_text_len, seed=config.seed)
    if config.cache_clips and not config.augment:
        if config.num_workers > 0:
            raise ConfigError("num_workers", "cache_clips keeps clips in this process: use num_workers=0")
        dataset = CachedClips(dataset)
    out_dir.mkdir(parents=True, exist_ok=True)
    text_path = out_dir / "text_tokenizer.json"
    if D.on_main():  # ranks share out_dir: one writer (every rank built the same vocabulary)
        text_tokenizer.save(text_path)
    result = pretrain(
        config, model, dataset, out_dir, tokenizer=video_tokenizer, collate_fn=BatchCollator(dataset, codes),
        on_metrics=on_metrics, resume_from=inputs.get("resume"),
        meta={"text_vocab": text_tokenizer.vocab, "benchmark": config.benchmark},
    )
    result.artifacts["text_tokenizer"] = text_path
    return result
