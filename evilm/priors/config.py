"""Settings of the prior stages (no torch here: planning imports this).

The paper starts E-ViLM's video encoder from ImageNet weights and its semantic tokenizer's encoder
from CLIP. On the generated world the quick and smoke profiles train analogues of both, once per
world, never on a downstream clip:

- ``ImagePriorConfig``: the *ImageNet analogue*, the per-frame backbone trained to name what a
  frame shows (which shapes, colours, textures and sizes are in it, and how many objects), from the
  ground truth - a labelled image set, as ImageNet is: frames of freshly drawn scenes, or the
  pre-training clips' frames.
- ``ClipPriorConfig``: the *CLIP analogue*, the same kind of backbone trained contrastively to
  match a frame of a pre-training clip with the clip's caption.

The paper profile replaces both stages by local weight files (``ablations/base/evilm.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evilm.config import ConfigError, from_preset
from evilm.train.config import OptimConfig


@dataclass
class PriorData:
    """Which clips train a prior and how their frames are read (as the model that uses it reads them)."""

    benchmark: str = "webvid"  # a video-text benchmark: its training split trains, its validation split measures
    image_size: int = 96
    frames_per_clip: int = 4  # frames of each clip, each a training image
    # evaluation clips decoded once for all stages into this folder (relative: under the data root); None: off
    frame_cache: str | None = None

    def __post_init__(self):
        for key in ("image_size", "frames_per_clip"):
            if getattr(self, key) < 1:
                raise ConfigError(f"data.{key}", f"must be >= 1, got {getattr(self, key)}")


@dataclass
class ImagePriorConfig:
    backbone: str = "world_cnn_s32"  # a timm name: the video encoder's backbone it will initialise
    data: PriorData = field(default_factory=PriorData)
    # > 0: train on the frames of this many freshly drawn scenes (evilm.data.scene_images), an image set
    # apart from every benchmark, as ImageNet is; 0: on the decoded frames of data.benchmark's training
    # clips. Either way data.benchmark's validation clips measure it.
    rendered_scenes: int = 0
    frames_per_scene: int = 2  # frames of each rendered scene, at distinct times of its clip
    steps: int = 600  # optimizer steps, each a batch of frames drawn from every training frame
    batch_size: int = 64
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=3e-3, weight_decay=0.01, warmup_ratio=0.05))
    seed: int = 0
    progress: bool = True

    def __post_init__(self):
        for key in ("steps", "batch_size", "frames_per_scene"):
            if getattr(self, key) < 1:
                raise ConfigError(key, f"must be >= 1, got {getattr(self, key)}")
        if self.rendered_scenes < 0:
            raise ConfigError("rendered_scenes", f"must be >= 0, got {self.rendered_scenes}")


@dataclass
class ClipPriorConfig:
    backbone: str = "world_cnn_s32"  # a timm name: the semantic tokenizer's encoder it will initialise
    data: PriorData = field(default_factory=PriorData)
    embed_dim: int = 128  # the joint embedding space
    temperature: float = 0.07  # initial softmax temperature (learned, as in CLIP)
    steps: int = 600
    batch_size: int = 128  # frames of different clips per contrastive batch
    vocab_keep_fraction: float = 1.0  # caption words the text side knows (the most frequent fraction)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=3e-3, weight_decay=0.01, warmup_ratio=0.05))
    seed: int = 0
    progress: bool = True

    def __post_init__(self):
        for key in ("steps", "batch_size", "embed_dim"):
            if getattr(self, key) < 1:
                raise ConfigError(key, f"must be >= 1, got {getattr(self, key)}")
        if self.batch_size < 2:
            raise ConfigError("batch_size", "a contrastive batch needs at least 2 frames")
        if self.temperature <= 0:
            raise ConfigError("temperature", f"must be > 0, got {self.temperature}")


# The backbone and frames of each profile's E-ViLM (evilm.models PRESETS) and tokenizer: a prior
# must train the architecture it initialises, at the resolution it will see.
# Quick: the world's 1,900 pre-training clips teach colour, size and count, but a frame classifier
# memorises them before it learns shape or texture (benchmarks/bench_image_prior.py); 20,000 rendered
# scenes do not let it.
IMAGE_PRESETS: dict[str, dict] = {
    "quick": {"backbone": "world_cnn_s32", "rendered_scenes": 20000, "steps": 1800,
              "data": {"image_size": 96, "frame_cache": ".frame_cache"}},
    "smoke": {"backbone": "edgenext_xx_small", "steps": 8, "batch_size": 8, "rendered_scenes": 16,
              "data": {"image_size": 64, "frames_per_clip": 2, "frame_cache": ".frame_cache"}},
    "paper": {"backbone": "edgenext_small", "data": {"image_size": 256}},
}
CLIP_PRESETS: dict[str, dict] = {
    "quick": {"backbone": "world_cnn_s32", "data": {"image_size": 96, "frame_cache": ".frame_cache"}},
    "smoke": {"backbone": "edgenext_xx_small", "steps": 8, "batch_size": 8, "embed_dim": 16,
              "data": {"image_size": 64, "frames_per_clip": 2, "frame_cache": ".frame_cache"}},
    "paper": {"backbone": "vit_base_patch32_clip_224", "data": {"image_size": 256}},
}


def image_prior_config(profile: str, overrides: dict | None = None) -> ImagePriorConfig:
    return from_preset(ImagePriorConfig, IMAGE_PRESETS, profile, overrides)


def clip_prior_config(profile: str, overrides: dict | None = None) -> ClipPriorConfig:
    return from_preset(ClipPriorConfig, CLIP_PRESETS, profile, overrides)
