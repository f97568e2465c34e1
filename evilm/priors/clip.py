"""The CLIP analogue: a per-frame backbone trained to match a frame with its clip's caption.

A batch holds one frame from each of ``batch_size`` different pre-training clips. The image side
is the backbone, mean-pooled and projected; the text side a bag of the caption's words, projected
(the world's captions carry their meaning in words, not word order); a symmetric InfoNCE loss with a
learned temperature pulls each frame to its caption, as CLIP does. The backbone then initialises
the semantic tokenizer's encoder, as CLIP's ViT initialises the paper's. The validation split
measures frame -> caption retrieval among its clips.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from evilm.data.catalog import load_benchmark
from evilm.data.text import TextTokenizer
from evilm.models.video_encoder import create_backbone
from evilm.models.weights import save_backbone
from evilm.priors.config import ClipPriorConfig
from evilm.priors.frames import Normalise, fit, load_frames
from evilm.stage import MetricsCallback, StageResult, report
from evilm.train.checkpoint import derived_seed, generator_for
from evilm.train.engine import Engine


class FrameTextModel(nn.Module):
    def __init__(self, backbone_name: str, num_words: int, embed_dim: int, temperature: float):
        super().__init__()
        self.normalise = Normalise()
        self.backbone = create_backbone(backbone_name, key="backbone")
        self.image_proj = nn.Linear(self.backbone.num_features, embed_dim)
        self.text_proj = nn.Linear(num_words, embed_dim)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        pooled = self.backbone.forward_features(self.normalise(images)).mean((2, 3))
        return F.normalize(self.image_proj(pooled), dim=-1)

    def embed_texts(self, words: torch.Tensor) -> torch.Tensor:
        """``words``: multi-hot caption words (B, V), averaged into a bag."""
        bag = words / words.sum(1, keepdim=True).clamp(min=1.0)
        return F.normalize(self.text_proj(bag), dim=-1)

    def loss(self, images: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        logits = self.log_scale.exp().clamp(max=100.0) * self.embed_images(images) @ self.embed_texts(words).t()
        target = torch.arange(len(images))
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


@torch.no_grad()
def frame_to_caption_recall(model: FrameTextModel, frames: torch.Tensor, words: torch.Tensor) -> float:
    """R@1 (%) of each clip's middle frame retrieving its caption among the split's captions."""
    model.eval()
    middle = frames[:, frames.shape[1] // 2]
    images = torch.cat([model.embed_images(x) for x in middle.split(256)])
    similarity = images @ model.embed_texts(words).t()
    model.train()
    return 100.0 * (similarity.argmax(1) == torch.arange(len(images))).float().mean().item()


def train(config: ClipPriorConfig, frames: torch.Tensor, words: torch.Tensor,
          on_metrics: MetricsCallback | None = None, log_every: int = 50) -> FrameTextModel:
    """``frames``: uint8 (N, T, 3, H, W); ``words``: multi-hot captions (N, V)."""
    torch.manual_seed(derived_seed(config.seed, "clip prior init"))
    model = FrameTextModel(config.backbone, words.shape[1], config.embed_dim, config.temperature)
    engine = Engine(model, config.optim, config.steps)
    generator = generator_for(config.seed, "clip prior batches")
    batch = min(config.batch_size, len(frames))

    def batch_loss() -> torch.Tensor:
        clips = torch.randperm(len(frames), generator=generator)[:batch]  # distinct clips: one positive each
        which = torch.randint(frames.shape[1], (batch,), generator=generator)
        return model.loss(frames[clips, which], words[clips])

    fit(engine, config.steps, batch_loss, "clip_prior", config.progress, on_metrics, log_every)
    return model


def run(config: ClipPriorConfig, inputs: dict[str, Any], out_dir: str | Path,
        on_metrics: MetricsCallback | None = None) -> StageResult:
    """Stage: train the CLIP analogue on the captioned clips of ``inputs['data']``; artifact ``weights``."""
    root = Path(inputs["data"])
    bench = load_benchmark(config.data.benchmark, root)
    vocabulary = TextTokenizer.build([r.caption for r in bench.train], keep_fraction=config.vocab_keep_fraction)
    frames, kept = load_frames(bench.train, config.data, root, config.progress, "CLIP prior: decoding clips")
    model = train(config, frames, vocabulary.word_targets([r.caption for r in kept]), on_metrics)
    metrics: dict[str, float] = {"clip_prior/train_clips": float(len(frames))}
    if bench.val:
        val_frames, val_kept = load_frames(bench.val, config.data, root, config.progress,
                                           "CLIP prior: decoding validation clips")
        recall = frame_to_caption_recall(model, val_frames, vocabulary.word_targets([r.caption for r in val_kept]))
        metrics["clip_prior/val_R@1"] = recall
        metrics["clip_prior/val_chance_R@1"] = 100.0 / len(val_kept)
    weights = save_backbone(Path(out_dir) / "backbone.pt", config.backbone, model.backbone,
                            meta={"prior": "clip", "image_size": config.data.image_size})
    report(on_metrics, metrics, config.steps)
    return StageResult(metrics=metrics, artifacts={"weights": weights})
