"""Typed configurations for E-ViLM and its named presets (no torch or timm here).

Every size of the model comes from here. ``PRESETS`` holds three scales that share
one code path: ``smoke`` (tests), ``quick`` (the default, a laptop CPU) and
``paper`` (Section 4.1 of the paper). The backbone's timm name is checked when the
model is built (``evilm.models.video_encoder.create_backbone``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evilm.config import ConfigError, from_preset


@dataclass
class VideoEncoderConfig:
    backbone: str = "edgenext_small"  # any timm model name with a stride-S final feature map
    checkpoint: str | None = None  # local weights file for the backbone (never downloaded)
    drop_path_rate: float = 0.0


@dataclass
class TextEncoderConfig:
    # A small BERT (transformers) over a truncated vocabulary.
    vocab_size: int = 9157  # 30% of BERT's 30,522 word pieces, the paper's "top 30%"
    hidden_size: int = 128
    num_heads: int = 4
    num_layers: int = 6
    intermediate_size: int = 512
    dropout: float = 0.1


@dataclass
class DecoderConfig:
    width: int = 384
    depth: int = 4
    num_heads: int = 6
    mlp_ratio: float = 4.0
    dropout: float = 0.0


@dataclass
class EViLMConfig:
    video: VideoEncoderConfig = field(default_factory=VideoEncoderConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    num_frames: int = 4
    image_size: int = 256
    max_text_len: int = 40
    codebook_size: int = 9420  # MVM targets: the video tokenizer's codebook

    def __post_init__(self):
        validate(self)


NUM_SPECIAL_TOKENS = 5  # [PAD] [UNK] [CLS] [SEP] [MASK], see docs/design.md


def validate(cfg: EViLMConfig) -> None:
    """Fail early, naming the field, on configurations that cannot be built."""
    if cfg.decoder.width % cfg.decoder.num_heads:
        raise ConfigError(
            "decoder.width",
            f"{cfg.decoder.width} is not divisible by decoder.num_heads={cfg.decoder.num_heads}",
        )
    if cfg.text.hidden_size % cfg.text.num_heads:
        raise ConfigError(
            "text.hidden_size",
            f"{cfg.text.hidden_size} is not divisible by text.num_heads={cfg.text.num_heads}",
        )
    if cfg.text.vocab_size <= NUM_SPECIAL_TOKENS:
        raise ConfigError(
            "text.vocab_size",
            f"{cfg.text.vocab_size} leaves no room for words after the {NUM_SPECIAL_TOKENS} special tokens",
        )
    for name in ("num_frames", "image_size", "max_text_len", "codebook_size"):
        if getattr(cfg, name) < 1:
            raise ConfigError(name, f"must be positive, got {getattr(cfg, name)}")
    for name in ("depth", "width"):
        if getattr(cfg.decoder, name) < 1:
            raise ConfigError(f"decoder.{name}", f"must be positive, got {getattr(cfg.decoder, name)}")


@dataclass
class SmallVideoConfig:
    """The supervised ceiling's small video model (``evilm.models.small_video``), not E-ViLM."""

    num_frames: int = 4  # frames read per clip
    image_size: int = 96  # frames as read (the size of the evaluation clips' shared disk cache)
    input_size: int = 48  # resized to this before the first convolution
    channels: tuple[int, ...] = (32, 64, 128)  # conv blocks (conv, norm, ReLU, max-pool)
    # consecutive frames stacked per pass of the motion stream, each stack's cells tagged with its time
    # (None: all frames in one stack). Two: a question can attend to what happens early or late
    tubelet: int | None = None
    width: int = 256
    max_text_len: int = 32
    # self-attention layers over the words (0: a bag of words). Word order carries what a bag loses:
    # in "what does it do before X ? Y" which action the question names and which the option offers;
    # but a bag learnt TGIF Action faster
    text_layers: int = 0
    dropout: float = 0.1
    # a frozen per-frame image backbone (a timm name), loaded from the image prior; None: motion stream only
    appearance: str | None = None

    def __post_init__(self):
        self.channels = tuple(self.channels)
        if not self.channels or min(self.channels) < 1:
            raise ConfigError("channels", f"needs at least one positive width, got {list(self.channels)}")
        if self.input_size % (2 ** len(self.channels)):
            raise ConfigError("input_size", f"{self.input_size} px does not halve {len(self.channels)} times evenly")
        for name in ("num_frames", "image_size", "width", "max_text_len"):
            if getattr(self, name) < 1:
                raise ConfigError(name, f"must be positive, got {getattr(self, name)}")
        if self.tubelet is not None and (self.tubelet < 1 or self.num_frames % self.tubelet):
            raise ConfigError("tubelet", f"{self.tubelet} does not divide num_frames={self.num_frames}")
        if self.text_layers < 0:
            raise ConfigError("text_layers", f"must be >= 0, got {self.text_layers}")


PRESETS: dict[str, dict[str, Any]] = {
    # Section 4.1: EdgeNeXt-small on 4 frames of 256x256, BERT hidden 128 / 4 heads,
    # decoder 4 blocks of width 384, 40 text tokens, 9,420 codes.
    "paper": {},
    # A laptop-CPU model: 4 frames of 96x96 (a 3x3 region grid per frame). The backbone is the world's
    # small CNN (evilm.models.backbones, stride 32), started from the image prior (evilm.priors) as the
    # paper starts EdgeNeXt-small from ImageNet; trained from scratch, small backbones did not learn the
    # world's shapes and actions in a CPU budget (benchmarks/bench_backbone_learning.py).
    "quick": {
        "video": {"backbone": "world_cnn_s32"},
        "text": {"vocab_size": 1000, "hidden_size": 128, "num_heads": 4, "num_layers": 2, "intermediate_size": 256},
        "decoder": {"width": 192, "depth": 2, "num_heads": 4},
        "num_frames": 4,
        "image_size": 96,
        "max_text_len": 32,
    },
    # Tests and CI: 2 frames of 64x64 (a 2x2 grid), one narrow block everywhere.
    "smoke": {
        "video": {"backbone": "edgenext_xx_small"},
        "text": {"vocab_size": 200, "hidden_size": 32, "num_heads": 2, "num_layers": 1, "intermediate_size": 64},
        "decoder": {"width": 32, "depth": 1, "num_heads": 2},
        "num_frames": 2,
        "image_size": 64,
        "max_text_len": 24,
        "codebook_size": 64,
    },
}


def preset_config(name: str, overrides: dict[str, Any] | None = None) -> EViLMConfig:
    """The named preset with ``overrides`` (nested or dotted keys) applied and validated."""
    return from_preset(EViLMConfig, PRESETS, name, overrides, key="preset")
