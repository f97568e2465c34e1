"""The pre-training loop: MLM + VTM + MVM (paper Section 3.4, eq. 8), one optimizer step at a time.

Each step accumulates ``accum_steps`` micro-batches (``evilm.pretrain.objectives`` draws their
masks and pairs and computes the losses), sums the weighted terms (the paper: equal weights) and
hands the rest to ``evilm.train.engine.Engine``: clipping, AdamW under a warm-up + decay schedule.

Exact resume. The data order is a permutation drawn from (seed, epoch); the position in it is
saved. Per-step randomness comes from (seed, step), and the global RNG (dropout) is saved in the
checkpoint, so a run stopped after step k and resumed gives the same weights and metrics as one
that ran straight through.

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
computes per rank over ``batch_size / W`` clips (the ``quick`` preset's world CNN has
BatchNorm; ``smoke`` and ``paper`` use EdgeNeXt, LayerNorm only).
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from evilm.config import ConfigError, to_dict
from evilm.data.records import DataError
from evilm.files import atomic_write_json
from evilm.pretrain.config import PretrainConfig
from evilm.pretrain.objectives import EViLMForPretraining, gather_captions, prepare_batch, rank_shares
from evilm.pretrain.pretrained import save_pretrained
from evilm.stage import MetricsCallback, StageResult, report
from evilm.train import distributed as D
from evilm.train.checkpoint import derived_seed, generator_for, load_checkpoint, restore, save_checkpoint
from evilm.train.engine import Engine, RunningMeans, check_finite
from evilm.train.progress import ProgressBar
from evilm.train.runtime import EpochBatchSampler, autocast_dtype, resolve_device


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
    backbone_scale = dict.fromkeys(model.backbone.video_encoder.backbone.parameters(), cfg.video_backbone_lr_scale)
    engine = Engine(model, cfg.optim, total_steps, device, autocast_dtype(cfg.amp, device), lr_scales=backbone_scale)

    step, epoch, batch_pos = 0, 0, 0
    epoch_means = RunningMeans()  # the final metrics average the last epoch
    ckpt_path = out_dir / "checkpoints" / "last.pt"
    if resume_from is None and cfg.resume and ckpt_path.is_file():
        resume_from = ckpt_path
    if world > 1 and 0 < D.mean_over_ranks({"resume": float(resume_from is not None)})["resume"] < 1:
        raise RuntimeError(f"{ckpt_path} is visible on some ranks only: out_dir must be on storage every rank sees")
    if resume_from is not None:
        state = load_checkpoint(resume_from, map_location=device)
        if state["extra"].get("config") != json.dumps(_resume_key(cfg), sort_keys=True):
            raise ValueError(f"{resume_from}: saved by a run with other settings; cannot resume this one from it")
        restore(state, model=model, optimizer=engine.optimizer, scheduler=engine.scheduler, scaler=engine.scaler)
        step, epoch, batch_pos = state["step"], state["epoch"], state["batch_in_epoch"]
        epoch_means = RunningMeans(state["extra"]["epoch_sums"], int(state["extra"]["epoch_count"]))
    else:
        torch.manual_seed(derived_seed(cfg.seed, "global"))

    def checkpoint() -> None:
        extra = {
            "config": json.dumps(_resume_key(cfg), sort_keys=True),
            "epoch_sums": epoch_means.sums,
            "epoch_count": epoch_means.count,
        }
        if rank == 0:  # the plain model (not the DDP wrapper): it resumes on any number of ranks
            save_checkpoint(ckpt_path, model=model, optimizer=engine.optimizer, scheduler=engine.scheduler,
                            scaler=engine.scaler, step=step, epoch=epoch, batch_in_epoch=batch_pos, extra=extra)

    stop_at = min(total_steps, cfg.stop_after) if cfg.stop_after > 0 else total_steps
    window = RunningMeans()  # since the last log line
    window_time, window_data_time = 0.0, 0.0
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
            lr = engine.lr
            if world > 1:  # each rank its own dropout masks, the same again when resumed
                torch.manual_seed(derived_seed(cfg.seed, "dropout", step, rank))
            terms, data_time = _optimizer_step(cfg, model, net, batches, engine, tokenizer, device, step)
            step += 1
            batch_pos += 1
            skipped += int(terms.pop("clips_skipped"))
            if skipped > cfg.max_skip_fraction * len(dataset):
                raise DataError(f"{skipped} unreadable clips in epoch {epoch + 1}, more than max_skip_fraction="
                                f"{cfg.max_skip_fraction} of {len(dataset)}; see the data set's log for which")
            elapsed = time.perf_counter() - t0
            terms["lr"] = lr
            window.add(terms)
            epoch_means.add(terms)
            window_time += elapsed
            window_data_time += data_time
            if step % cfg.log_every == 0 or step == stop_at:
                clips = window.count * cfg.batch_size * cfg.accum_steps  # over all ranks
                logged = window.means("train/")
                logged["train/clips_per_s"] = clips / max(window_time, 1e-9)
                logged["train/data_fraction"] = window_data_time / max(window_time, 1e-9)
                if rank == 0:
                    report(on_metrics, logged, step)
                progress.update(step, logged)
                window.reset()
                window_time, window_data_time = 0.0, 0.0
            if cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0:
                checkpoint()
        if batch_pos >= steps_per_epoch:
            epoch, batch_pos = epoch + 1, 0
            if step < total_steps:  # the final metrics average the last epoch
                epoch_means.reset()
    progress.close()
    complete = step >= total_steps
    metrics = epoch_means.means("pretrain/")
    metrics.update({"pretrain/steps": float(step), "pretrain/total_steps": float(total_steps),
                    "pretrain/complete": float(complete)})
    artifacts: dict[str, Path] = {"metrics": out_dir / "metrics.json"}
    if complete:  # the final weights; the resume checkpoint is no longer needed
        artifacts["model"] = out_dir / "model.pt"
    else:  # stopped early: what a resumed run continues from
        checkpoint()
        artifacts["checkpoint"] = ckpt_path
    if rank == 0:
        atomic_write_json(artifacts["metrics"], metrics, indent=2)
        if complete:
            save_pretrained(artifacts["model"], model, meta={"pretrain_config": to_dict(cfg), **(meta or {})})
            ckpt_path.unlink(missing_ok=True)
    D.barrier()  # every rank returns once rank 0's files are in place
    return StageResult(metrics=metrics, artifacts=artifacts)


def _optimizer_step(cfg: PretrainConfig, model: EViLMForPretraining, net: torch.nn.Module, batches: Any,
                    engine: Engine, tokenizer: Any | None, device: torch.device, step: int,
                    ) -> tuple[dict[str, float], float]:
    """Accumulate ``accum_steps`` micro-batches, then the engine's step. Returns the terms (averaged
    over the micro-batches and the ranks) and the time spent waiting for data.

    ``net`` is ``model`` itself, or its DDP wrapper: forward and backward go through it.
    """
    engine.zero_grad()
    distributed = net is not model
    sums = RunningMeans()
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
        captions = gather_captions(raw, counts) if distributed else None
        batch = prepare_batch(raw, cfg, model, generator_for(cfg.seed, "step", step, micro), tokenizer, device,
                              captions)
        shares = rank_shares(batch, cfg) if distributed else {}
        # DDP averages gradients in the backward pass: only once per step, on the last micro-batch
        sync = net.no_sync() if distributed and micro < cfg.accum_steps - 1 else nullcontext()
        with sync:
            with engine.autocast():
                out = net(batch)
            if shares:
                out = {k: v * shares[k.split("_")[0]] for k, v in out.items()}  # "vtm_align": VTM's pairs
            loss = sum(cfg.weight(name) * out[name] for name in cfg.losses)
            if "vtm_align" in out:
                loss = loss + cfg.vtm_align * out["vtm_align"]
            local = {"loss": loss.item(), **{k: v.item() for k, v in out.items()}}
            averaged = D.mean_over_ranks(local)  # one process: ``local`` itself
            values = {k: averaged[k] for k in local}
            # (the ranks' mean: a non-finite term stops every rank)
            check_finite(step + 1, {**{name: values[name] for name in cfg.losses}, "total": values["loss"]})
            engine.backward(loss / cfg.accum_steps)
        sums.add(values)
    terms = {k: v / cfg.accum_steps for k, v in sums.sums.items()}
    terms["grad_norm"] = engine.step()
    terms["clips_skipped"] = float(skipped)  # over all ranks
    return terms, data_time
