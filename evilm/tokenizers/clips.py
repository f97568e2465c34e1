"""Clips and caption-word targets for tokenizer training, from ``evilm.data``.

Batches for ``training_step`` are dicts with ``frames float (B, T, 3, H, W)`` in
[0, 1], ``word_targets float (B, V)`` (multi-hot caption words) and ``video_id``;
on the generated world also ``scene_<field>`` ground-truth labels (for the probe).

``ClipBank`` holds a whole split in memory as uint8 (decoded once, evaluation
frames); ``WordTargetLoader`` streams clips through ``evilm.data``'s loader instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from evilm.data import (
    DataConfig,
    FrameConfig,
    TextTokenizer,
    VideoText,
    build_dataset,
    load_scenes,
    make_loader,
    scene_labels,
)


def world_scene_labels(root: str | Path) -> dict[str, dict[str, int]] | None:
    """Ground-truth labels per video id for a generated world; None for real data."""
    if not (Path(root) / "scenes.jsonl").is_file():
        return None
    return {vid: scene_labels(scene) for vid, scene in load_scenes(root).items()}


@dataclass
class ClipBank(Dataset):
    frames: torch.Tensor  # uint8 (N, T, 3, H, W)
    word_targets: torch.Tensor  # float (N, V)
    video_ids: list[str]
    scene: dict[str, torch.Tensor] | None = None  # field -> long (N,)

    def __len__(self) -> int:
        return len(self.video_ids)

    def __getitem__(self, index: int) -> dict:
        item = {
            "frames": self.frames[index].float() / 255.0,
            "word_targets": self.word_targets[index],
            "video_id": self.video_ids[index],
        }
        for name, labels in (self.scene or {}).items():
            item[f"scene_{name}"] = labels[index]
        return item


def video_text_dataset(
    records: Sequence[VideoText],
    words: TextTokenizer,
    frames: FrameConfig,
    train: bool,
    seed: int,
    scenes: dict[str, dict[str, int]] | None,
):
    return build_dataset("video_text", records, words, frames, train=train, seed=seed, scene_labels=scenes)


class WordTargetLoader:
    """An ``evilm.data`` loader whose batches also carry ``word_targets`` of their captions."""

    def __init__(self, loader, words: TextTokenizer):
        self.loader = loader
        self.words = words

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            batch["word_targets"] = self.words.word_targets(batch["text"])
            yield batch


def stream_loader(
    records: Sequence[VideoText],
    words: TextTokenizer,
    frames: FrameConfig,
    data: DataConfig,
    train: bool,
    scenes: dict[str, dict[str, int]] | None = None,
) -> WordTargetLoader:
    dataset = video_text_dataset(records, words, frames, train, data.seed, scenes)
    return WordTargetLoader(make_loader(dataset, data, shuffle=train), words)


def load_clip_bank(
    records: Sequence[VideoText],
    words: TextTokenizer,
    frames: FrameConfig,
    data: DataConfig,
    scenes: dict[str, dict[str, int]] | None = None,
    progress: bool = True,
    description: str = "decoding clips",
) -> ClipBank:
    """Decode every clip once (evaluation frames) into memory. Unreadable clips are skipped
    by the data loader (and fail it past its ``max_skip_fraction``)."""
    loader = stream_loader(records, words, frames, data, train=False, scenes=scenes)
    batches = loader
    if progress:
        from rich.progress import track

        batches = track(loader, description=description, total=len(loader), transient=True)
    chunks, targets, ids = [], [], []
    scene: dict[str, list[torch.Tensor]] = {}
    for batch in batches:
        chunks.append((batch["frames"] * 255).round().clamp(0, 255).to(torch.uint8))
        targets.append(batch["word_targets"])
        ids.extend(batch["video_id"])
        for key, value in batch.items():
            if key.startswith("scene_"):
                scene.setdefault(key.removeprefix("scene_"), []).append(value)
    if not chunks:
        raise ValueError("no readable clips to train the tokenizer on")
    return ClipBank(
        frames=torch.cat(chunks),
        word_targets=torch.cat(targets),
        video_ids=ids,
        scene={k: torch.cat(v) for k, v in scene.items()} if scene else None,
    )
