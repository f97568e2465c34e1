"""Label a data set once and keep its codes per clip (the paper's "off-the-shelf" labels).

Pretraining may read MVM targets from this file instead of running the tokenizer
on every batch. The labels are for the clip the loader gives, so the loader must
be deterministic (an evaluation-mode data set: the centre frame of each segment,
no random crop); a pretraining loader that samples other frames should label online.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader

from evilm.files import atomic_torch_save
from evilm.tokenizers.base import VideoTokenizer

CACHE_FORMAT = "evilm.video_codes/1"


def _progress(iterable, enabled: bool, description: str, total: int | None = None):
    if not enabled:
        return iterable
    from rich.progress import track

    return track(iterable, description=description, total=total, transient=True)


@torch.no_grad()
def cache_codes(tokenizer: VideoTokenizer, loader: DataLoader, path: str | Path, progress: bool = True) -> Path:
    """Encode every clip of ``loader`` (batches with ``frames`` and ``video_id``) into ``path``."""
    was_training = tokenizer.training
    tokenizer.eval()
    device = next(tokenizer.parameters()).device
    video_ids: list[str] = []
    chunks: list[torch.Tensor] = []
    seen: set[str] = set()
    total = len(loader) if hasattr(loader, "__len__") else None
    for batch in _progress(loader, progress, "labelling clips", total):
        if "video_id" not in batch:
            raise KeyError("cache_codes needs batches with a 'video_id' entry")
        codes = tokenizer.encode(batch["frames"].to(device)).cpu()
        for i, vid in enumerate(batch["video_id"]):
            if vid in seen:  # a video with several captions: the same frames, the same codes
                continue
            seen.add(vid)
            video_ids.append(str(vid))
            chunks.append(codes[i])
    tokenizer.train(was_training)
    if not chunks:
        raise ValueError("cache_codes: the loader gave no clips")
    return save_codes(video_ids, torch.stack(chunks), tokenizer.codebook_size, tokenizer.stride, path)


def save_codes(video_ids: list[str], codes: torch.Tensor, codebook_size: int, stride: int, path: str | Path) -> Path:
    """Write codes ``(N, T, gh, gw)`` of ``video_ids`` (first occurrence kept) as a code cache."""
    if len(video_ids) != len(codes):
        raise ValueError(f"{len(video_ids)} video ids for {len(codes)} clips of codes")
    first = {}
    for i, vid in enumerate(video_ids):
        first.setdefault(str(vid), i)
    dtype = torch.int16 if codebook_size <= torch.iinfo(torch.int16).max else torch.int32
    payload = {
        "format": CACHE_FORMAT,
        "video_ids": list(first),
        "codes": codes[list(first.values())].to(dtype),
        "codebook_size": codebook_size,
        "stride": stride,
    }
    return atomic_torch_save(payload, path)


class CachedCodes:
    """Codes per clip from ``cache_codes``: ``cached.lookup(video_ids) -> long (B, T, gh, gw)``."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"code cache not found: {path}")
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != CACHE_FORMAT:
            raise ValueError(f"{path}: not a code cache (expected format {CACHE_FORMAT})")
        self.path = path
        self.codes = payload["codes"]
        self.codebook_size = int(payload["codebook_size"])
        self.stride = int(payload["stride"])
        self.index = {vid: i for i, vid in enumerate(payload["video_ids"])}

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, video_id: str) -> bool:
        return video_id in self.index

    def lookup(self, video_ids) -> torch.Tensor:
        missing = [v for v in video_ids if v not in self.index]
        if missing:
            raise KeyError(f"{self.path}: no codes for video ids {missing[:5]}")
        return self.codes[[self.index[v] for v in video_ids]].long()
