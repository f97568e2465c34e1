"""The frames a prior trains on: every clip of a split decoded once, kept as uint8."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from evilm.data.frame_cache import frame_cache_dir
from evilm.data.records import DataError
from evilm.data.video import FrameConfig, VideoReadError, load_clip
from evilm.models.video_encoder import IMAGENET_MEAN, IMAGENET_STD, channels_last
from evilm.priors.config import PriorData
from evilm.stage import report
from evilm.train.engine import RunningMeans, check_finite
from evilm.train.progress import ProgressBar

MAX_SKIPPED = 0.05  # unreadable clips tolerated in a split


def load_frames(records: list[Any], data: PriorData, root: str | Path, progress: bool = False,
                description: str = "decoding clips") -> tuple[torch.Tensor, list[Any]]:
    """``uint8 (N, T, 3, H, W)`` evaluation frames of the readable records, and those records."""
    cfg = FrameConfig(num_frames=data.frames_per_clip, image_size=data.image_size,
                      cache_dir=frame_cache_dir(data.frame_cache, root))
    clips, kept, skipped = [], [], []
    items = records
    if progress:
        from rich.progress import track

        items = track(records, description=description, transient=True)
    for record in items:
        try:
            clip = load_clip(record.video_path, cfg)
        except VideoReadError as err:
            skipped.append(str(err))
            continue
        clips.append(clip.mul(255).round_().to(torch.uint8))
        kept.append(record)
    if len(skipped) > MAX_SKIPPED * max(1, len(records)):
        raise DataError(f"{len(skipped)} of {len(records)} clips unreadable (more than {MAX_SKIPPED:.0%}); "
                        f"first: {skipped[0]}")
    if not clips:
        raise DataError("no readable clip to train a prior on")
    return torch.stack(clips), kept


class Normalise(torch.nn.Module):
    """uint8 or [0, 1] images -> ImageNet-normalised, channels-last: what the video encoder feeds its backbone."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float().div(255.0) if images.dtype == torch.uint8 else images
        return channels_last((x - self.mean) / self.std)


def fit(engine: Any, steps: int, batch_loss: Callable[[], torch.Tensor], name: str, progress: bool,
        on_metrics: Any = None, log_every: int = 50) -> None:
    """The priors' training loop: ``steps`` engine steps on ``batch_loss()`` (a fresh batch's loss each
    call), the mean loss reported as ``<name>/train_loss`` every ``log_every`` steps and at the end."""
    window = RunningMeans()
    bar = ProgressBar(progress, total=steps, start=0, description=name.replace("_", " "))
    for step in range(1, steps + 1):
        engine.zero_grad()
        loss = batch_loss()
        check_finite(step, {f"{name.replace('_', ' ')} loss": loss.item()})
        engine.backward(loss)
        engine.step()
        window.add({"loss": loss.item()})
        if step % log_every == 0 or step == steps:
            logged = window.means(f"{name}/train_")
            report(on_metrics, logged, step)
            bar.update(step, {"train/loss": logged[f"{name}/train_loss"]})
            window.reset()
    bar.close()
