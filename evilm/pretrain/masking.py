"""Region masks for masked video modeling (MVM).

A mask is ``bool (B, T, gh, gw)`` on the video encoder's output grid, ``True`` =
masked. Every strategy masks exactly ``round(ratio * gh * gw)`` regions in each
frame, so the MVM loss always averages over the same number of regions.

- ``block``: BEiT-style. Rectangles of random area (at least ``min_block``
  regions) and log-uniform aspect ratio are dropped onto the frame while they
  fit in the remaining count; what rectangles cannot fill (fewer than
  ``min_block`` left, or no fit in ``attempts`` tries) is filled with single
  regions next to the masked ones, so the count is exact.
- ``random``: regions chosen uniformly, independently per frame.
- ``tube``: one random spatial mask per clip, repeated over time (VideoMAE).

Randomness comes only from the ``torch.Generator`` passed in, so a training run
that stores its generator state resumes with the same masks.
"""

from __future__ import annotations

import math
import random

import torch

from evilm.config import ConfigError
from evilm.pretrain.config import MaskConfig


def masked_count(gh: int, gw: int, ratio: float) -> int:
    """Regions masked per frame: ``round(ratio * gh * gw)``, at least one when ratio > 0 and at
    least one region left visible."""
    n = int(round(ratio * gh * gw))
    if ratio > 0:
        n = max(n, 1)
    return min(n, gh * gw - 1) if gh * gw > 1 else n


def _python_rng(generator: torch.Generator | None) -> random.Random:
    # One draw from the torch generator seeds a fast Python RNG for the many
    # small draws below; the result still depends only on the generator state.
    seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    return random.Random(seed)


def _block_frame(gh: int, gw: int, count: int, cfg: MaskConfig, rng: random.Random) -> torch.Tensor:
    mask = [[False] * gw for _ in range(gh)]
    masked = 0
    min_block = min(cfg.min_block, count)
    log_lo, log_hi = math.log(cfg.min_aspect), math.log(1.0 / cfg.min_aspect)
    while count - masked >= min_block:
        remaining = count - masked
        placed = False
        for _ in range(cfg.attempts):
            area = rng.uniform(min_block, remaining)
            aspect = math.exp(rng.uniform(log_lo, log_hi))
            h = int(round(math.sqrt(area * aspect)))
            w = int(round(math.sqrt(area / aspect)))
            if h * w < min_block or h > gh or w > gw:
                continue
            top, left = rng.randint(0, gh - h), rng.randint(0, gw - w)
            cells = [(i, j) for i in range(top, top + h) for j in range(left, left + w) if not mask[i][j]]
            if 0 < len(cells) <= remaining:
                for i, j in cells:
                    mask[i][j] = True
                masked += len(cells)
                placed = True
                break
        if not placed:
            break
    # Exact count: fill what rectangles could not, preferring regions that touch the mask.
    while masked < count:
        free = [(i, j) for i in range(gh) for j in range(gw) if not mask[i][j]]
        touching = [
            (i, j)
            for i, j in free
            if any(0 <= i + di < gh and 0 <= j + dj < gw and mask[i + di][j + dj]
                   for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)))
        ]
        i, j = rng.choice(touching or free)
        mask[i][j] = True
        masked += 1
    return torch.tensor(mask, dtype=torch.bool)


def _random_frame(gh: int, gw: int, count: int, rng: random.Random) -> torch.Tensor:
    flat = torch.zeros(gh * gw, dtype=torch.bool)
    flat[rng.sample(range(gh * gw), count)] = True
    return flat.view(gh, gw)


def block_mask(shape: tuple[int, int, int, int], cfg: MaskConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """BEiT-style block mask ``bool (B, T, gh, gw)`` with exactly ``masked_count`` regions per frame."""
    b, t, gh, gw = shape
    rng = _python_rng(generator)
    count = masked_count(gh, gw, cfg.ratio)
    frames = [_block_frame(gh, gw, count, cfg, rng) for _ in range(b * t)]
    return torch.stack(frames).view(b, t, gh, gw)


def random_mask(shape: tuple[int, int, int, int], cfg: MaskConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniformly random regions, ``masked_count`` per frame, independent across frames."""
    b, t, gh, gw = shape
    rng = _python_rng(generator)
    count = masked_count(gh, gw, cfg.ratio)
    return torch.stack([_random_frame(gh, gw, count, rng) for _ in range(b * t)]).view(b, t, gh, gw)


def tube_mask(shape: tuple[int, int, int, int], cfg: MaskConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """One random spatial mask per clip, the same in every frame."""
    b, t, gh, gw = shape
    rng = _python_rng(generator)
    count = masked_count(gh, gw, cfg.ratio)
    per_clip = torch.stack([_random_frame(gh, gw, count, rng) for _ in range(b)])
    return per_clip[:, None].expand(b, t, gh, gw).contiguous()


MASKERS = {"block": block_mask, "random": random_mask, "tube": tube_mask}


def make_mask(shape: tuple[int, int, int, int], cfg: MaskConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """The mask of kind ``cfg.kind``."""
    if cfg.kind not in MASKERS:
        raise ConfigError("mask.kind", f"unknown '{cfg.kind}'; allowed: {', '.join(MASKERS)}")
    return MASKERS[cfg.kind](shape, cfg, generator)


def apply_region_mask(frames: torch.Tensor, mask: torch.Tensor, stride: int) -> torch.Tensor:
    """Frames ``(B, T, 3, H, W)`` with every masked ``stride x stride`` region set to zero."""
    b, t, _, h, w = frames.shape
    if mask.shape[:2] != (b, t) or mask.shape[2] * stride != h or mask.shape[3] * stride != w:
        raise ValueError(
            f"mask {tuple(mask.shape)} with stride {stride} does not tile frames {tuple(frames.shape)}"
        )
    pixels = mask.repeat_interleave(stride, dim=2).repeat_interleave(stride, dim=3)
    return frames.masked_fill(pixels[:, :, None], 0.0)
