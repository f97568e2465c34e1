"""Convolutional encoder/decoder of the pixel-level tokenizers (dVAE, perceptual VQ).

The encoder halves the resolution log2(s) times; frames are first resized so that
this lands exactly on the video encoder's stride-S MVM grid (s = S keeps the full
resolution). The decoder mirrors the encoder back to pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def resize_for_grid(images: torch.Tensor, grid: tuple[int, int], input_stride: int) -> torch.Tensor:
    """Resize images (N, 3, H, W) so that an ``input_stride`` downsampling gives ``grid``."""
    size = (grid[0] * input_stride, grid[1] * input_stride)
    if tuple(images.shape[-2:]) == size:
        return images
    return F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def stage_channels(stride: int, hidden: int, max_hidden: int) -> list[int]:
    """Channels of each stride-2 stage: hidden, 2*hidden, ... capped at max_hidden."""
    stages = int(math.log2(stride))
    if 2**stages != stride:
        raise ValueError(f"stride must be a power of 2, got {stride}")
    return [min(hidden * 2**i, max_hidden) for i in range(stages)]


class ResBlock(nn.Module):
    """x + 1x1(act(3x3(act(x)))): cheap residual refinement at one resolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ConvEncoder(nn.Module):
    """(N, 3, H, W) -> (N, out_dim, H/S, W/S)."""

    def __init__(self, stride: int, hidden: int, max_hidden: int, out_dim: int):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for ch in stage_channels(stride, hidden, max_hidden):
            layers += [nn.Conv2d(in_ch, ch, 4, stride=2, padding=1), ResBlock(ch)]
            in_ch = ch
        layers += [nn.ReLU(), nn.Conv2d(in_ch, out_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class ConvDecoder(nn.Module):
    """(N, in_dim, H/S, W/S) -> pixels (N, 3, H, W) in [0, 1]."""

    def __init__(self, stride: int, hidden: int, max_hidden: int, in_dim: int):
        super().__init__()
        channels = stage_channels(stride, hidden, max_hidden)[::-1]
        layers: list[nn.Module] = [nn.Conv2d(in_dim, channels[0], 1)]
        for ch, next_ch in zip(channels, channels[1:] + [channels[-1]]):
            layers += [ResBlock(ch), nn.ConvTranspose2d(ch, next_ch, 4, stride=2, padding=1)]
        layers += [nn.ReLU(), nn.Conv2d(channels[-1], 3, 3, padding=1), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
