"""The frames a prior trains on: every clip of a split decoded once, kept as uint8."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from evilm.data.frame_cache import frame_cache_dir
from evilm.data.records import DataError
from evilm.data.video import FrameConfig, VideoReadError, load_clip
from evilm.models.video_encoder import IMAGENET_MEAN, IMAGENET_STD, channels_last
from evilm.priors.config import PriorData

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
