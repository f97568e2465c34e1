"""The ImageNet analogue: a per-frame backbone trained to name what a frame of the world shows.

Each training frame is labelled from the ground truth with which shapes, colours, textures and
sizes its objects have (multi-label) and how many objects there are. A linear head on the
backbone's mean-pooled final feature map learns them; the backbone then initialises E-ViLM's video
encoder (and the perceptual tokenizer's feature net), as ImageNet weights initialise the paper's
EdgeNeXt. The training frames are those of freshly drawn scenes (``rendered_scenes`` > 0,
``evilm.data.scene_images``: an image set of its own) or of the pre-training corpus's training
clips (``scenes.jsonl``); the corpus's validation clips, decoded, measure how well each attribute
is named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from evilm.data.catalog import load_benchmark
from evilm.data.records import DataError
from evilm.data.scene_images import render_labelled_frames
from evilm.data.scenes import COLOURS, SHAPES, SIZES, TEXTURES
from evilm.data.synthetic import load_scenes, world_settings
from evilm.models.video_encoder import create_backbone
from evilm.models.weights import save_backbone
from evilm.priors.config import ImagePriorConfig
from evilm.priors.frames import Normalise, fit, load_frames
from evilm.stage import MetricsCallback, StageResult, report
from evilm.train.checkpoint import derived_seed, generator_for
from evilm.train.engine import Engine

ATTRIBUTES = {"shape": SHAPES, "colour": list(COLOURS), "texture": TEXTURES, "size": list(SIZES)}
MAX_OBJECTS = 3


def frame_labels(scene) -> tuple[torch.Tensor, int]:
    """Multi-hot presence over every attribute value (a colour an object changes to counts), and
    the object count - 1."""
    parts = []
    for name, values in ATTRIBUTES.items():
        present = torch.zeros(len(values))
        for obj in scene.objects:
            present[values.index(getattr(obj, name))] = 1.0
            if name == "colour" and obj.details.get("new_colour"):
                present[values.index(obj.details["new_colour"])] = 1.0
        parts.append(present)
    return torch.cat(parts), len(scene.objects) - 1


class FrameClassifier(nn.Module):
    """A backbone and one linear layer: attribute-presence logits, then object-count logits."""

    def __init__(self, backbone_name: str):
        super().__init__()
        self.normalise = Normalise()
        self.backbone = create_backbone(backbone_name, key="backbone")
        self.num_presence = sum(len(v) for v in ATTRIBUTES.values())
        self.head = nn.Linear(self.backbone.num_features, self.num_presence + MAX_OBJECTS)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone.forward_features(self.normalise(images)).mean((2, 3)))

    def loss(self, images: torch.Tensor, presence: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        """Per frame: the presence terms summed over every attribute value, plus the count's.

        (Averaged over the values instead, the count's gradient outweighs each value's 24 to 1 and
        the backbone learns colour and count but not shape or texture.)
        """
        logits = self(images)
        presence_loss = F.binary_cross_entropy_with_logits(logits[:, : self.num_presence], presence,
                                                           reduction="none").sum(1).mean()
        return presence_loss + F.cross_entropy(logits[:, self.num_presence :], count)


@torch.no_grad()
def attribute_accuracy(model: FrameClassifier, images: torch.Tensor, presence: torch.Tensor,
                       count: torch.Tensor) -> dict[str, float]:
    """Per attribute, how often the value scored highest is one the frame shows; and the count's accuracy (%)."""
    model.eval()
    logits = torch.cat([model(x) for x in images.split(256)])
    model.train()
    out, start = {}, 0
    for name, values in ATTRIBUTES.items():
        scores, shown = logits[:, start : start + len(values)], presence[:, start : start + len(values)]
        out[name] = 100.0 * shown.gather(1, scores.argmax(1, keepdim=True)).mean().item()
        start += len(values)
    out["count"] = 100.0 * (logits[:, start:].argmax(1) == count).float().mean().item()
    return out


def _labels(scenes: list, per_scene: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Presence and count of each of ``per_scene`` consecutive frames of every scene."""
    labels = [frame_labels(scene) for scene in scenes]
    presence = torch.stack([p for p, _ in labels]).repeat_interleave(per_scene, 0)
    count = torch.tensor([c for _, c in labels]).repeat_interleave(per_scene, 0)
    return presence, count


def labelled_frames(records: list[Any], config: ImagePriorConfig, root: Path, scenes: dict, description: str):
    """Every frame of the records as its own image: ``uint8 (N*T, 3, H, W)``, presence, count."""
    frames, kept = load_frames(records, config.data, root, config.progress, description)
    return (frames.flatten(0, 1), *_labels([scenes[r.video_id] for r in kept], frames.shape[1]))


def rendered_frames(config: ImagePriorConfig, root: Path):
    """The frames of ``config.rendered_scenes`` fresh scenes of the world at ``root``, with their labels."""
    world = world_settings(root)
    images, scenes = render_labelled_frames(world["seed"], world["num_frames"], world["image_size"],
                                            config.rendered_scenes, config.frames_per_scene, config.seed,
                                            config.progress)
    size = config.data.image_size
    if images.shape[-1] != size:  # resized as decoded clips are (evilm.data.video)
        images = torch.cat([F.interpolate(part.float(), size=(size, size), mode="bilinear", antialias=True,
                                          align_corners=False).round_().clamp_(0, 255).to(torch.uint8)
                            for part in images.split(1024)])
    return (images, *_labels(scenes, config.frames_per_scene))


def train(config: ImagePriorConfig, images: torch.Tensor, presence: torch.Tensor, count: torch.Tensor,
          on_metrics: MetricsCallback | None = None, log_every: int = 50) -> FrameClassifier:
    torch.manual_seed(derived_seed(config.seed, "image prior init"))
    model = FrameClassifier(config.backbone)
    engine = Engine(model, config.optim, config.steps)
    generator = generator_for(config.seed, "image prior batches")

    def batch_loss() -> torch.Tensor:
        rows = torch.randint(len(images), (config.batch_size,), generator=generator)
        return model.loss(images[rows], presence[rows], count[rows])

    fit(engine, config.steps, batch_loss, "image_prior", config.progress, on_metrics, log_every)
    return model


def run(config: ImagePriorConfig, inputs: dict[str, Any], out_dir: str | Path,
        on_metrics: MetricsCallback | None = None) -> StageResult:
    """Stage: train the ImageNet analogue on ``inputs['data']`` (a generated world); artifact ``weights``."""
    root = Path(inputs["data"])
    if not (root / "scenes.jsonl").is_file():
        raise DataError(f"{root}: the image prior learns from a generated world's ground truth (scenes.jsonl); "
                        "for real data give ImageNet weights as a file (stage kind weights_file)")
    bench = load_benchmark(config.data.benchmark, root)
    scenes = load_scenes(root)
    if config.rendered_scenes > 0:
        images, presence, count = rendered_frames(config, root)
    else:
        images, presence, count = labelled_frames(bench.train, config, root, scenes, "image prior: decoding clips")
    model = train(config, images, presence, count, on_metrics)
    metrics: dict[str, float] = {"image_prior/train_frames": float(len(images))}
    if bench.val:
        val = labelled_frames(bench.val, config, root, scenes, "image prior: decoding validation clips")
        accuracy = attribute_accuracy(model, *val)
        metrics.update({f"image_prior/val_{k}": v for k, v in accuracy.items()})
        metrics["image_prior/val_mean"] = sum(accuracy.values()) / len(accuracy)
    out_dir = Path(out_dir)
    weights = save_backbone(out_dir / "backbone.pt", config.backbone, model.backbone,
                            meta={"prior": "image", "image_size": config.data.image_size})
    report(on_metrics, metrics, config.steps)
    return StageResult(metrics=metrics, artifacts={"weights": weights})
