"""Stage 1: train a video tokenizer.

``train_tokenizer`` is the loop (``evilm.train.engine``: AdamW with a warm-up, then cosine
decay; a progress bar, losses and codebook usage per epoch). ``run`` is the stage: it builds
the data set from ``inputs["data"]``, loads the pretrained parts the config asks for
(``evilm.tokenizers.pretrained``), trains, saves the tokenizer as one file for the next stage,
measures it (codebook usage, perplexity, reconstruction PSNR where it reconstructs, the
semantic probes) and labels every clip once (``codes.pt``) so pretraining can read cached targets.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from evilm.config import ConfigError, from_dict, merge
from evilm.data.frame_cache import frame_cache_dir
from evilm.stage import MetricsCallback, StageResult, report
from evilm.tokenizers.base import VideoTokenizer
from evilm.tokenizers.config import TokenizerConfig, TrainConfig
from evilm.tokenizers.factory import create_tokenizer, save_tokenizer
from evilm.tokenizers.usage import CodeCounter
from evilm.train.engine import Engine, RunningMeans, check_finite


def _device_of(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


@torch.no_grad()
def encode_loader(tokenizer: VideoTokenizer, loader: Iterable[dict]) -> torch.Tensor:
    """Eval-mode codes of every clip of ``loader``, ``long (N, T, gh, gw)``."""
    was_training = tokenizer.training
    tokenizer.eval()
    device = _device_of(tokenizer)
    codes = [tokenizer.encode(batch["frames"].to(device)).cpu() for batch in loader]
    tokenizer.train(was_training)
    if not codes:
        raise ValueError("the evaluation loader gave no clips")
    return torch.cat(codes)


def train_tokenizer(
    tokenizer: VideoTokenizer,
    train_loader: DataLoader,
    val_loader: DataLoader | None,
    cfg: TrainConfig,
    on_metrics: MetricsCallback | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """Train in place; returns the last epoch's metrics.

    Per epoch: mean loss terms; ``train_usage_rate`` / ``train_perplexity`` / ``train_codes_used`` of the
    codes assigned during the epoch's training steps (a moving model); ``val_*`` the same for the
    evaluation-mode codes of ``val_loader`` at the end of the epoch (VOC. RATE).
    """
    device = _device_of(tokenizer)
    total_steps = cfg.epochs * len(train_loader)
    engine = Engine(tokenizer, cfg.optim, total_steps, device)

    step = 0
    metrics: dict[str, float] = {}
    for epoch in range(cfg.epochs):
        tokenizer.train()
        counter = CodeCounter(tokenizer.codebook_size)
        means = RunningMeans()
        batches = _progress(train_loader, progress, f"tokenizer epoch {epoch + 1}/{cfg.epochs}")
        for batch in batches:
            out = tokenizer.training_step(_to_device(batch, device), progress=step / max(1, total_steps))
            check_finite(step + 1, {"tokenizer loss": out.loss.detach().item()})
            engine.zero_grad()
            engine.backward(out.loss)
            engine.step()
            step += 1
            counter.update(out.codes)
            means.add({name: float(value) for name, value in {"loss": out.loss.detach(), **out.terms}.items()})
        metrics = means.means()
        metrics.update({f"train_{k}": v for k, v in counter.result().items()})
        if val_loader is not None:
            val_codes = encode_loader(tokenizer, val_loader)
            val_counter = CodeCounter(tokenizer.codebook_size)
            val_counter.update(val_codes)
            metrics.update({f"val_{k}": v for k, v in val_counter.result().items()})
        metrics["epoch"] = float(epoch + 1)
        report(on_metrics, metrics, epoch + 1)
        if progress:
            _print_epoch(metrics)
    return metrics


def _progress(loader, enabled: bool, description: str):
    if not enabled:
        return loader
    from rich.progress import track

    return track(loader, description=description, total=len(loader), transient=True)


def _print_epoch(metrics: dict[str, float]) -> None:
    from rich.console import Console

    shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k != "epoch")
    Console(stderr=True).print(f"[bold]tokenizer epoch {int(metrics['epoch'])}[/bold]: {shown}")


def build_tokenizer(config: TokenizerConfig) -> VideoTokenizer:
    """A fresh tokenizer of ``config.name``, initialised under ``config.train.seed``."""
    torch.manual_seed(config.train.seed)
    return create_tokenizer(config.name, config)


def bank_loader(dataset, cfg: TrainConfig, shuffle: bool) -> DataLoader:
    """Batches of an in-memory ``ClipBank``; shuffling is seeded."""
    generator = torch.Generator().manual_seed(cfg.seed)
    return DataLoader(dataset, batch_size=cfg.batch_size, shuffle=shuffle, generator=generator)


def _with_vocab_size(config: TokenizerConfig, num_words: int) -> TokenizerConfig:
    given = config.semantic.vocab_size
    if given is not None and given != num_words:
        raise ConfigError(
            "semantic.vocab_size", f"{given} differs from the caption vocabulary's {num_words} words; leave it unset"
        )
    return merge(config, {"semantic": {"vocab_size": num_words}})


def split_records(bench, cfg: TrainConfig) -> tuple[list, list]:
    """(training, held-out) clips of a video-text benchmark: its own val split, or a seeded
    ``val_fraction`` of its training clips when it has none."""
    if bench.val:
        return bench.train, bench.val
    return _split_val(bench.train, cfg.val_fraction, cfg.seed)


def _split_val(records: list, fraction: float, seed: int) -> tuple[list, list]:
    order = torch.randperm(len(records), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, round(fraction * len(records)))
    val = sorted(order[:n_val])
    keep = sorted(order[n_val:])
    return [records[i] for i in keep], [records[i] for i in val]


def run(
    config: TokenizerConfig | dict,
    inputs: dict[str, str | Path],
    out_dir: str | Path,
    on_metrics: MetricsCallback | None = None,
    progress: bool = True,
) -> StageResult:
    """Stage 1: train ``config.name`` on the captioned clips of ``inputs["data"]``.

    ``inputs``: ``data`` (a generated world or a real data root laid out for
    ``evilm.data.load_benchmark``), optionally ``vocab`` (a saved ``TextTokenizer``
    whose words are HEAD^S's classes), ``encoder_init`` and ``perceptual_features``
    (weights files, used when the config asks for them: ``evilm.tokenizers.pretrained``).
    Writes ``tokenizer.pt`` (for ``load_tokenizer``), ``words.json`` (the caption-word
    vocabulary) and, with ``data.cache_codes``, ``codes.pt`` (codes of every train/val clip,
    for ``CachedCodes``). Metrics: the last epoch's losses and usage; usage and perplexity of
    the evaluation-mode codes of the training (``train_eval_*``, the VOC. RATE) and validation
    clips; ``val_psnr`` for a tokenizer that reconstructs pixels; on a generated world the
    semantic probes of the validation clips. A frozen tokenizer (the released DALL-E encoder)
    is not trained, only measured.
    """
    from evilm.data import DataConfig, FrameConfig, TextTokenizer, load_benchmark
    from evilm.tokenizers.cache import save_codes
    from evilm.tokenizers.clips import load_clip_bank, stream_loader, world_scene_labels
    from evilm.tokenizers.pretrained import load_pretrained_parts
    from evilm.tokenizers.probe import semantic_probe

    if not isinstance(config, TokenizerConfig):  # a plain mapping from a spec
        config = from_dict(TokenizerConfig, config)
    if "data" not in inputs:
        raise KeyError("tokenizer stage: inputs need 'data' (a data root or generated world)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = Path(inputs["data"])
    bench = load_benchmark(config.data.benchmark, root)
    if bench.kind != "video_text":
        raise ConfigError("data.benchmark", f"'{bench.name}' has no captions ({bench.kind}); use a video-text benchmark")
    train_records, val_records = split_records(bench, config.train)

    if inputs.get("vocab"):
        words = TextTokenizer.load(inputs["vocab"])
    else:
        words = TextTokenizer.build(
            [r.caption for r in train_records], config.data.words_keep_fraction, config.data.words_min_count
        )
    config = _with_vocab_size(config, words.num_words)
    scenes = world_scene_labels(root)
    frames = FrameConfig(num_frames=config.num_frames, image_size=config.image_size,
                         cache_dir=frame_cache_dir(config.data.frame_cache, root))
    data = DataConfig(
        frames=frames, batch_size=config.train.batch_size, num_workers=config.data.num_workers, seed=config.train.seed
    )

    if config.data.preload:
        train_bank = load_clip_bank(train_records, words, frames, data, scenes, progress, "decoding training clips")
        val_bank = load_clip_bank(val_records, words, frames, data, scenes, progress, "decoding validation clips")
        train_loader = bank_loader(train_bank, config.train, shuffle=True)
        train_eval_loader = bank_loader(train_bank, config.train, shuffle=False)
        val_loader = bank_loader(val_bank, config.train, shuffle=False)
    else:
        train_loader = stream_loader(train_records, words, frames, data, train=True)
        train_eval_loader = stream_loader(train_records, words, frames, data, train=False, scenes=scenes)
        val_loader = stream_loader(val_records, words, frames, data, train=False, scenes=scenes)

    tokenizer = build_tokenizer(config)
    ignored = load_pretrained_parts(tokenizer, inputs)
    if ignored and progress:
        print(f"tokenizer '{config.name}': inputs {', '.join(ignored)} are not used by this configuration")
    start = time.perf_counter()
    metrics = {}
    if tokenizer.trainable:
        metrics = train_tokenizer(tokenizer, train_loader, val_loader, config.train, on_metrics, progress)
    metrics["train_seconds"] = time.perf_counter() - start
    artifacts = {
        "tokenizer": save_tokenizer(tokenizer, out_dir / "tokenizer.pt"),
        "words": words.save(out_dir / "words.json"),
    }

    # Evaluation-mode labels of every clip: usage, the probe, and the cache pretraining can read.
    train_eval = encode_with_labels(tokenizer, train_eval_loader)
    val_eval = encode_with_labels(tokenizer, val_loader)
    for prefix, part in (("train_eval", train_eval), ("val", val_eval)):
        counter = CodeCounter(tokenizer.codebook_size)
        counter.update(part["codes"])
        metrics.update({f"{prefix}_{k}": v for k, v in counter.result().items()})
    if hasattr(tokenizer, "reconstruct"):
        metrics["val_psnr"] = reconstruction_psnr(tokenizer, val_loader)
    if scenes is not None:
        fields = [k.removeprefix("scene_") for k in train_eval if k.startswith("scene_")]
        metrics.update(
            semantic_probe(
                train_eval["codes"],
                val_eval["codes"],
                tokenizer.codebook_size,
                train_fields={f: [str(int(x)) for x in train_eval[f"scene_{f}"]] for f in fields},
                test_fields={f: [str(int(x)) for x in val_eval[f"scene_{f}"]] for f in fields},
                train_words=train_eval["word_targets"],
                test_words=val_eval["word_targets"],
            )
        )
    if config.data.cache_codes:
        codes = torch.cat([train_eval["codes"], val_eval["codes"]])
        ids = train_eval["video_id"] + val_eval["video_id"]
        artifacts["codes"] = save_codes(ids, codes, tokenizer.codebook_size, tokenizer.stride, out_dir / "codes.pt")
    report(on_metrics, metrics, config.train.epochs + 1)
    return StageResult(metrics=metrics, artifacts=artifacts)


@torch.no_grad()
def encode_with_labels(tokenizer: VideoTokenizer, loader: Iterable[dict]) -> dict:
    """Eval-mode ``codes`` of every clip, with its ``video_id``, ``word_targets`` and ``scene_*`` labels."""
    was_training = tokenizer.training
    tokenizer.eval()
    device = _device_of(tokenizer)
    out: dict[str, list] = {}
    for batch in loader:
        out.setdefault("codes", []).append(tokenizer.encode(batch["frames"].to(device)).cpu())
        out.setdefault("video_id", []).extend(batch["video_id"])
        for key in batch:
            if key == "word_targets" or key.startswith("scene_"):
                out.setdefault(key, []).append(batch[key])
    tokenizer.train(was_training)
    if not out:
        raise ValueError("the loader gave no clips")
    return {k: v if k == "video_id" else torch.cat(v) for k, v in out.items()}


@torch.no_grad()
def reconstruction_psnr(tokenizer: VideoTokenizer, loader: Iterable[dict]) -> float:
    """PSNR (dB, pixels in [0, 1]) of the images the tokenizer reconstructs from its eval-mode codes,
    from the mean squared error over every pixel value of ``loader``'s clips."""
    was_training = tokenizer.training
    tokenizer.eval()
    device = _device_of(tokenizer)
    squared, count = 0.0, 0
    for batch in loader:
        target, recon = tokenizer.reconstruct(batch["frames"].to(device))
        squared += float((recon.float() - target.float()).pow(2).sum())
        count += target.numel()
    tokenizer.train(was_training)
    if count == 0:
        raise ValueError("the loader gave no clips")
    return 10 * math.log10(1.0 / max(squared / count, 1e-12))
