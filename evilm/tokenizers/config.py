"""Configuration of the video tokenizers and their presets by profile (no torch here).

One ``TokenizerConfig`` flows from the spec to the stage. ``name`` picks the
tokenizer (``evilm.tokenizers.factory.TOKENIZERS``; with ``semantic.word_loss``, the
rows of Table 6); the shared geometry (``image_size``, ``num_frames``, ``stride``)
must match the video encoder the tokenizer labels for: ``stride`` is the encoder's
output stride, so that ``encode`` lands on its MVM grid. Names of timm backbones
are checked when the tokenizer is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from evilm.config import ConfigError, from_preset
from evilm.data.frame_cache import FRAME_CACHE
from evilm.models.config import PRESETS as MODEL_PRESETS
from evilm.train.config import OptimConfig

TokenizerName = Literal["semantic", "pixel_dvae", "perceptual_vq"]
TOKENIZER_NAMES: tuple[str, ...] = get_args(TokenizerName)


@dataclass
class QuantizerConfig:
    """The vector quantizer (``evilm.tokenizers.quantizer``) of the semantic and perceptual tokenizers."""

    codebook_size: int = 9420  # M, Section 4.1
    code_dim: int = 32  # D
    beta: float = 1.0  # commitment weight; eq. 7 as printed weighs both terms by 1
    # "random": unit vectors drawn at random, as the paper writes. "data": at the first training step the
    # codes are set to that batch's (l2-normalised) encoder outputs, as BEiT v2's quantizer can: random codes
    # far from where the encoder's outputs lie are never chosen, and a short training budget collapses onto
    # the few that are. Not re-seeding: it happens once, before any code has been trained.
    init: Literal["random", "data"] = "random"
    ema: bool = False
    ema_decay: float = 0.99
    reseed_dead: bool = False
    reseed_every: int = 100  # training steps between dead-code checks

    def __post_init__(self):
        if self.codebook_size < 2:
            raise ConfigError("quantizer.codebook_size", f"must be at least 2, got {self.codebook_size}")
        if self.code_dim < 1:
            raise ConfigError("quantizer.code_dim", f"must be positive, got {self.code_dim}")
        if self.beta < 0:
            raise ConfigError("quantizer.beta", f"must be >= 0, got {self.beta}")
        if not 0.0 < self.ema_decay < 1.0:
            raise ConfigError("quantizer.ema_decay", f"must be in (0, 1), got {self.ema_decay}")
        if self.reseed_every < 1:
            raise ConfigError("quantizer.reseed_every", f"must be positive, got {self.reseed_every}")


@dataclass
class SemanticConfig:
    """Semantic VQ tokenizer (Section 3.3): encoder -> VQ -> decoder -> HEAD^S over caption words."""

    # "vit": a timm ViT applied per frame, patch size = stride (one token per MVM region).
    # "video_swin_t": torchvision's Video Swin-Tiny with a (1, 4, 4) patch, so that its stride-32
    # output keeps every frame; heavy (28M parameters), meant for GPUs.
    # "cnn": a timm convolutional backbone per frame (``encoder_backbone``, output stride = stride);
    # the quick profile's choice, the quick video encoder's own architecture.
    encoder: Literal["vit", "cnn", "video_swin_t"] = "vit"
    encoder_backbone: str = "mobilenetv3_small_050"  # "cnn" only: any timm model name
    # The paper starts its ViT from CLIP: the encoder's weights come from the stage input
    # ``encoder_init`` (a prior stage's backbone file, or a local OpenCLIP / OpenAI CLIP file), and
    # the stage fails without it. False: random initialisation (an ablation; the input is ignored).
    pretrained: bool = True
    # "vit" only: a timm ViT architecture name (e.g. "vit_base_patch32_clip_224", CLIP's ViT-B/32
    # image tower: class token, ln_pre, no patch-embedding bias; "vit_base_patch32_clip_quickgelu_224"
    # for OpenAI's own weights). None: a plain timm ViT of encoder_width/depth/heads.
    encoder_arch: str | None = None
    # "vit" only: width of a linear projection of every token after the last norm (CLIP's ``proj``,
    # 512 for ViT-B/32, so that a CLIP checkpoint is used whole); 0 = none.
    encoder_proj_dim: int = 0
    encoder_width: int = 384  # ViT only
    encoder_depth: int = 12
    encoder_heads: int = 6
    decoder_width: int = 512
    decoder_depth: int = 8  # Section 4.1: 8 transformer layers
    decoder_heads: int = 8
    vocab_size: int | None = None  # caption-word classes of HEAD^S; the stage fills it from the data
    # The word loss of HEAD^S: "focal" = eq. 6, the asymmetric loss (T_L_TOKEN); "bce" = plain binary
    # cross-entropy (T_L_BCE), which has no focusing terms: gamma_pos, gamma_neg and clip must keep
    # their defaults with it.
    word_loss: Literal["focal", "bce"] = "focal"
    # eq. 6 = asymmetric loss with gamma+ = 0, gamma- = 1
    gamma_pos: float = 0.0
    gamma_neg: float = 1.0
    clip: float = 0.0
    # "mean" over the K words as eq. 6 prints it, or "sum" (ASL's implementation): the latter
    # weighs the word loss K times more against the VQ terms of eq. 7. Applies to BCE too.
    word_reduction: Literal["mean", "sum"] = "mean"


@dataclass
class PixelConfig:
    """DALL-E-style discrete VAE trained only to reconstruct RGB pixels."""

    # "conv": a dVAE trained here (Gumbel-softmax, KL to the uniform prior). "dall_e": OpenAI's
    # released dVAE encoder from the local file ``dall_e_encoder``, frozen (not trained); the file
    # is a pickle, so it loads only with ``trust_pickle: true`` (and needs the dall-e package).
    encoder: Literal["conv", "dall_e"] = "conv"
    dall_e_encoder: str | None = None  # "dall_e" only: path of the released encoder.pkl
    trust_pickle: bool = False  # the explicit opt-in to unpickle ``dall_e_encoder`` (runs code from it)
    codebook_size: int = 8192  # DALL-E's vocabulary
    # Frames are resized so that this downsampling lands on the stride-S grid: DALL-E's 8x
    # (VIOLET's recipe: a 128px frame -> 32px for a 4x4 grid). Set it to ``stride`` for full resolution.
    input_stride: int = 8
    hidden: int = 64  # channels at the first (stride-2) stage; doubled per stage up to max_hidden
    max_hidden: int = 256
    code_embed_dim: int = 256  # width of the decoder's code embedding (DALL-E: a 1x1 conv on one-hots)
    # Gumbel-softmax temperature, annealed exponentially from start to end over the first
    # ``temperature_anneal`` of training (DALL-E: 1 -> 1/16 over its first 150k updates), then held.
    temperature_start: float = 1.0
    temperature_end: float = 1.0 / 16
    temperature_anneal: float = 1.0
    # Weight of KL(q || uniform) in nats per code, normalised per pixel value like the
    # reconstruction term, and raised linearly from 0 over the first ``kl_warmup`` of training
    # (DALL-E: 0 -> 6.6 over its first 5k updates). DALL-E's reconstruction term is a likelihood;
    # an MSE per value is a Gaussian one divided by 2 sigma^2, so the same balance needs a
    # weight smaller by that factor.
    kl_weight: float = 1.0
    kl_warmup: float = 0.1
    recon: Literal["mse", "l1"] = "mse"


@dataclass
class PerceptualConfig:
    """PeCo-style VQ: pixel reconstruction + a perceptual loss on a fixed, trained network's features."""

    # The same input as the pixel tokenizer's, so that the two rows differ only in their losses.
    input_stride: int = 8
    hidden: int = 64
    max_hidden: int = 256
    recon: Literal["mse", "l1"] = "mse"
    perceptual_weight: float = 1.0
    # "pretrained": the features of a trained network, from the stage input ``perceptual_features``
    # (a prior stage's backbone file, or a local VGG-16 / timm checkpoint); the stage fails without it.
    # "random_conv": a fixed, randomly initialised multi-scale conv net (an ablation; the input is ignored).
    feature_net: Literal["pretrained", "random_conv"] = "pretrained"
    # The architecture of a ``perceptual_features`` file that does not name it (a raw checkpoint):
    # "vgg16" (torchvision's VGG-16) or a timm model name. A prior stage's file names its own.
    feature_backbone: str | None = None
    # The feature network sees the (reconstructed) images resized to this size, the resolution it
    # was trained at; 0: as they are.
    feature_size: int = 224
    feature_channels: tuple[int, ...] = (32, 64, 128, 256)  # random_conv stages
    feature_seed: int = 1234


@dataclass
class DataSection:
    """Which clips train the tokenizer and how they are read (the stage's side of ``evilm.data``)."""

    benchmark: str = "webvid"  # a video-text benchmark of ``evilm.data.load_benchmark``
    # HEAD^S classes: the most frequent ``words_keep_fraction`` of the training captions' distinct
    # words (``inputs["vocab"]``, a saved TextTokenizer, replaces this).
    words_keep_fraction: float = 1.0
    words_min_count: int = 2
    # Decode every clip once (evaluation frames: the middle of each segment, no crop) and train
    # from memory: on a CPU the decoder would otherwise cost as much as the tokenizer. Off: stream
    # clips with training augmentation every epoch.
    preload: bool = True
    # evaluation clips decoded once for all stages into this folder (relative: under the data root); None: off
    frame_cache: str | None = None
    num_workers: int = 2
    cache_codes: bool = True  # after training, label every clip of the benchmark (codes.pt)


@dataclass
class TrainConfig:
    # Section 4.1: lr 2e-4; AdamW with a short warm-up, then cosine decay to 0 (evilm.train.engine)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=2e-4, weight_decay=0.01, warmup_ratio=0.05))
    epochs: int = 10  # Section 4.1: 10 epochs on WebVid
    batch_size: int = 32
    seed: int = 0
    val_fraction: float = 0.1  # held-out clips for codebook usage, when the data has no validation split


@dataclass
class TokenizerConfig:
    name: TokenizerName = "semantic"
    image_size: int = 256
    num_frames: int = 4
    stride: int = 32  # the video encoder's output stride (EdgeNeXt: 32)
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)
    semantic: SemanticConfig = field(default_factory=SemanticConfig)
    pixel: PixelConfig = field(default_factory=PixelConfig)
    perceptual: PerceptualConfig = field(default_factory=PerceptualConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataSection = field(default_factory=DataSection)

    def __post_init__(self):
        validate(self)


def validate(cfg: TokenizerConfig) -> None:
    """Fail early, naming the key, on configurations that cannot be built."""
    for key in ("image_size", "num_frames", "stride"):
        if getattr(cfg, key) < 1:
            raise ConfigError(key, f"must be positive, got {getattr(cfg, key)}")
    if cfg.image_size % cfg.stride:
        raise ConfigError("image_size", f"{cfg.image_size} is not a multiple of stride={cfg.stride}")
    for key, section in (("pixel", cfg.pixel), ("perceptual", cfg.perceptual)):
        s = section.input_stride
        if s < 2 or s & (s - 1):
            raise ConfigError(f"{key}.input_stride", f"the conv tokenizers downsample by 2 per stage; {s} is not a power of 2")
    sem = cfg.semantic
    if sem.encoder == "vit" and sem.encoder_width % sem.encoder_heads:
        raise ConfigError(
            "semantic.encoder_width", f"{sem.encoder_width} is not divisible by encoder_heads={sem.encoder_heads}"
        )
    if sem.encoder == "video_swin_t" and cfg.stride != 32:
        raise ConfigError("stride", f"video_swin_t has a fixed stride of 32, got {cfg.stride}")
    if sem.decoder_width % sem.decoder_heads:
        raise ConfigError(
            "semantic.decoder_width", f"{sem.decoder_width} is not divisible by decoder_heads={sem.decoder_heads}"
        )
    if sem.vocab_size is not None and sem.vocab_size < 1:
        raise ConfigError("semantic.vocab_size", f"must be positive, got {sem.vocab_size}")
    if not 0.0 <= sem.clip < 1.0:
        raise ConfigError("semantic.clip", f"must be in [0, 1), got {sem.clip}")
    if sem.word_loss == "bce":
        defaults = SemanticConfig()
        for key in ("gamma_pos", "gamma_neg", "clip"):
            if getattr(sem, key) != getattr(defaults, key):
                raise ConfigError(f"semantic.{key}", f"word_loss 'bce' has no focusing terms, so {key}="
                                  f"{getattr(sem, key)} would be ignored: keep {getattr(defaults, key)} or use "
                                  "word_loss 'focal'")
    if not 0.0 < cfg.pixel.temperature_end <= cfg.pixel.temperature_start:
        raise ConfigError("pixel.temperature_end", "must be positive and at most pixel.temperature_start")
    if not 0.0 < cfg.pixel.temperature_anneal <= 1.0:
        raise ConfigError("pixel.temperature_anneal", f"must be in (0, 1], got {cfg.pixel.temperature_anneal}")
    if cfg.pixel.codebook_size < 2:
        raise ConfigError("pixel.codebook_size", f"must be at least 2, got {cfg.pixel.codebook_size}")
    if cfg.pixel.encoder == "dall_e" and not cfg.pixel.dall_e_encoder:
        raise ConfigError("pixel.dall_e_encoder", "encoder 'dall_e' needs the path of the released encoder.pkl")
    if sem.encoder_proj_dim < 0:
        raise ConfigError("semantic.encoder_proj_dim", f"must be >= 0, got {sem.encoder_proj_dim}")
    if cfg.perceptual.feature_size < 0:
        raise ConfigError("perceptual.feature_size", f"must be >= 0, got {cfg.perceptual.feature_size}")
    for key in ("epochs", "batch_size"):
        if getattr(cfg.train, key) < 1:
            raise ConfigError(f"train.{key}", f"must be positive, got {getattr(cfg.train, key)}")
    if not 0.0 < cfg.data.words_keep_fraction <= 1.0:
        raise ConfigError("data.words_keep_fraction", f"must be in (0, 1], got {cfg.data.words_keep_fraction}")
    if not 0.0 < cfg.train.val_fraction < 1.0:
        raise ConfigError("train.val_fraction", f"must be in (0, 1), got {cfg.train.val_fraction}")


PRESETS: dict[str, dict[str, Any]] = {
    # Section 4.1: a ViT encoder, an 8-block decoder, 9,420 x 32 codes, lr 2e-4, 10 epochs,
    # on the paper model's 4 frames of 256x256 (stride 32 -> an 8x8 grid per frame).
    # The encoder is CLIP's ViT-B/32 image tower (its projection included), started from a local
    # OpenCLIP/OpenAI CLIP file (input ``encoder_init``); the DALL-E row uses the released dVAE encoder
    # (a local pickle: set ``pixel.trust_pickle: true`` to load it); the perceptual loss uses VGG-16.
    "paper": {
        "semantic": {"encoder_arch": "vit_base_patch32_clip_224", "encoder_proj_dim": 512},
        "pixel": {"encoder": "dall_e", "dall_e_encoder": "weights/dall-e/encoder.pkl"},
        "perceptual": {"feature_backbone": "vgg16"},
    },
    # The quick model's 4 frames of 96x96 (a 3x3 grid); small enough for a 2-core CPU.
    "quick": {
        "image_size": 96,
        # One epoch of ~60 steps over the world's ~1,900 WebVid clips; when re-seeding is turned on
        # (a sweep, not Table 6), dead codes are checked every 10 steps. Codes start at the first batch's
        # encoder outputs: from random codes, the default tokenizer's evaluation-mode codes collapsed onto
        # 5 of 9,420 (with EMA codes 6, after 4 epochs 5), and its codes->colour probe sat at chance.
        "quantizer": {"reseed_every": 10, "init": "data"},
        # A CNN encoder, the quick video encoder's own architecture, started from the CLIP-analogue
        # prior (input ``encoder_init``), which trains that backbone: a ViT from scratch left every
        # semantic probe at chance after 2 epochs; the paper's ViT is kept for the paper preset.
        "semantic": {
            "encoder": "cnn",
            "encoder_backbone": MODEL_PRESETS["quick"]["video"]["backbone"],
            "decoder_width": 128,
            "decoder_depth": 2,
            "decoder_heads": 4,
        },
        # KL weight 1 flattened the dVAE's posterior onto the uniform prior within its ~60 steps (0.002 nats
        # per code), so every evaluation-mode argmax was one code; at 0.05 it used 516 codes
        "pixel": {"hidden": 16, "max_hidden": 64, "code_embed_dim": 64, "kl_weight": 0.05},
        # the image-analogue prior (input ``perceptual_features``) is trained on 96 px frames
        "perceptual": {"hidden": 16, "max_hidden": 64, "feature_size": 96},
        # the paper's tokenizer learning rate (2e-4); 1e-3 collapsed the codes even from data-initialised ones
        "train": {"epochs": 1, "batch_size": 32, "optim": {"lr": 2e-4}},
        "data": {"frame_cache": FRAME_CACHE},
    },
    # Tests: 2 frames of 64x64 (a 2x2 grid), a 64-code book, one narrow block everywhere.
    "smoke": {
        "image_size": 64,
        "num_frames": 2,
        "quantizer": {"codebook_size": 64, "code_dim": 16},
        # Tests check the pipeline, not the priors: every tokenizer starts from random weights, and
        # the perceptual loss uses a fixed random conv net (an input given anyway is ignored).
        "semantic": {
            "pretrained": False,
            "encoder_width": 32,
            "encoder_depth": 1,
            "encoder_heads": 2,
            "decoder_width": 32,
            "decoder_depth": 1,
            "decoder_heads": 2,
        },
        "pixel": {"codebook_size": 64, "hidden": 8, "max_hidden": 16, "code_embed_dim": 16},
        "perceptual": {"hidden": 8, "max_hidden": 16, "feature_net": "random_conv", "feature_channels": [8, 16]},
        "train": {"epochs": 1, "batch_size": 8, "optim": {"lr": 1e-3}},
        "data": {"frame_cache": FRAME_CACHE},
    },
}


def preset_config(profile: str, overrides: dict[str, Any] | None = None) -> TokenizerConfig:
    """The tokenizer config of a profile (``smoke``/``quick``/``paper``) with validated overrides."""
    return from_preset(TokenizerConfig, PRESETS, profile, overrides)
