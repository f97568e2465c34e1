"""Pre-training's typed config and its ``smoke``/``quick``/``paper`` presets (no torch here).

``pretrain_config(profile, overrides)`` is the config the pre-training stage runs with: a spec's
``pretrain.*`` keys land on these fields, and each field is read where it is used
(``mask`` by ``evilm.pretrain.masking``, ``optim`` by ``evilm.train.engine``, the rest by the loop
``evilm.pretrain.loop`` and the stage ``evilm.pretrain.stage``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from evilm.config import ConfigError, from_preset
from evilm.data.frame_cache import FRAME_CACHE
from evilm.train.config import OptimConfig

LOSSES = ("mlm", "vtm", "mvm")
MaskKind = Literal["block", "random", "tube"]


@dataclass
class MaskConfig:
    """Which regions MVM masks (``evilm.pretrain.masking``); the defaults are the paper's."""

    kind: MaskKind = "block"  # Section 4.1: block-wise masking
    ratio: float = 0.4  # fraction of each frame's regions that are masked (Section 4.1: 40%)
    min_block: int = 4  # block masking: smallest rectangle, in regions
    min_aspect: float = 0.3  # block masking: aspect ratio drawn log-uniformly in [min_aspect, 1/min_aspect]
    attempts: int = 10  # block masking: tries per rectangle before giving up on rectangles

    def __post_init__(self):
        if not 0.0 <= self.ratio < 1.0:
            raise ConfigError("mask.ratio", f"must be in [0, 1), got {self.ratio}")
        if self.min_block < 1:
            raise ConfigError("mask.min_block", f"must be >= 1, got {self.min_block}")
        if not 0.0 < self.min_aspect <= 1.0:
            raise ConfigError("mask.min_aspect", f"must be in (0, 1], got {self.min_aspect}")


@dataclass
class PretrainConfig:
    model: str = "quick"  # evilm.models preset
    # Merged into the preset. text.vocab_size and codebook_size are set from the data and the tokenizer.
    model_overrides: dict[str, Any] = field(default_factory=dict)
    losses: list[str] = field(default_factory=lambda: ["mlm", "vtm", "mvm"])
    loss_weights: dict[str, float] = field(default_factory=dict)  # a missing term weighs 1.0 (the paper)
    mlm_prob: float = 0.15  # fraction of words masked (80% [MASK], 10% random word, 10% kept)
    # > 0: with VTM, also this weight times a contrastive term aligning the unimodal embeddings (mean of
    # the text encoder's tokens, mean of the video encoder's tokens) over the batch, before the decoder
    # fuses them (ALBEF's "align before fuse"). Not in the paper (0 there); on a CPU budget the matching
    # head stays near chance without it (benchmarks/bench_pretrain_learning.py).
    vtm_align: float = 0.0
    mask: MaskConfig = field(default_factory=MaskConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    # The video backbone's learning rate as a multiple of optim.lr (the paper: 1, one rate). Below 1 it
    # keeps more of what its start (the image prior, ImageNet) learned while the text encoder, decoder
    # and heads, initialised at random, learn at the full rate.
    video_backbone_lr_scale: float = 1.0
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
    vocab_text: Literal["captions", "training_text"] = "captions"  # what it is built from (evilm.data.loading)
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
        if not self.video_backbone_lr_scale > 0:
            raise ConfigError("video_backbone_lr_scale", f"must be > 0, got {self.video_backbone_lr_scale}")
        if not self.vtm_align >= 0:
            raise ConfigError("vtm_align", f"must be >= 0, got {self.vtm_align}")
        if "vtm" in self.losses and self.batch_size < 2:
            raise ConfigError("batch_size", "VTM draws mismatched captions from the batch: needs >= 2")
        if self.mvm_targets == "cached" and self.augment:
            raise ConfigError("mvm_targets", "cached codes label the fixed (evaluation-mode) frames; with "
                              "augment=true the frames change every epoch, so label online")
        if not 0.0 < self.vocab_keep_fraction <= 1.0:
            raise ConfigError("vocab_keep_fraction", f"must be in (0, 1], got {self.vocab_keep_fraction}")

    def weight(self, name: str) -> float:
        return float(self.loss_weights.get(name, 1.0))


PRESETS: dict[str, dict[str, Any]] = {
    # Section 4.1: lr 1e-4, weight decay 0.01, 20 epochs of WebVid, block masking of 40%,
    # 15% of words (the dataclass defaults); augmented frames decoded by worker processes;
    # mixed precision on GPUs.
    "paper": {
        "model": "paper", "batch_size": 32, "epochs": 20, "augment": True, "cache_clips": False,
        "num_workers": 8, "log_every": 50, "checkpoint_every": 2000,
    },
    # A 2-core CPU: 500 steps of 32 clips (about 8 epochs of the world's 1,900 WebVid clips), fixed
    # frames decoded once, a learning rate 10x the paper's because the run is ~1,000x shorter, and VTM's
    # alignment term. Chosen with benchmarks/bench_pretrain_learning.py (the README has its figures):
    # the alignment term mattered, the learning rate and its weight did not, so the step count is the
    # lever left. The world's vocabulary (~270 words) has no long
    # tail: keeping 30% of it would turn ~19% of caption words (colour and shape synonyms) into [UNK]. Its
    # captions alone lack the words only questions and options use, so it is built from all training text.
    # The video backbone, started from the image prior, learns at 0.3x: at one rate the pre-training wore
    # the prior's features down (the HMDB51 probe of the pre-trained encoder fell below the prior's own),
    # at 0.1x and 0.3x it kept them, VTM and MLM alike; chosen on that positive control alone (README).
    # bf16 autocast, as the paper's GPUs train in mixed precision: on a CPU with native bf16 (AVX512-BF16 or
    # AMX) a step costs about 0.6x of full precision (benchmarks/bench_amp.py); elsewhere use amp=off.
    "quick": {
        "model": "quick", "batch_size": 32, "max_steps": 500, "vocab_keep_fraction": 1.0, "amp": "bf16",
        "vocab_text": "training_text", "frame_cache": FRAME_CACHE, "vtm_align": 1.0, "video_backbone_lr_scale": 0.3,
        "optim": {"lr": 1e-3, "warmup_ratio": 0.05},
    },
    "smoke": {
        "model": "smoke", "batch_size": 4, "epochs": 1, "vocab_keep_fraction": 1.0, "vocab_text": "training_text",
        "log_every": 1,
        "frame_cache": FRAME_CACHE,
        "optim": {"lr": 1e-3},
    },
}


def pretrain_config(profile: str, overrides: dict[str, Any] | None = None) -> PretrainConfig:
    """The pretraining config of a profile (``smoke``/``quick``/``paper``) with validated overrides."""
    return from_preset(PretrainConfig, PRESETS, profile, overrides)
