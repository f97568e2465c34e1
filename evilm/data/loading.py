"""Loading data for training: what pretraining, the tokenizer and the downstream tasks share.

- the text tokenizer every stage of one experiment must share (the language
  encoder's embedding table is indexed by it);
- the frame settings that match a model (frames and resolution);
- ``CachedClips``: keeps each decoded evaluation-mode clip in memory, so that
  epochs after the first (and questions about the same video) do not decode again;
- ``BatchCollator``: the data set's collate, plus skipped-clip accounting and
  cached tokenizer codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from evilm.data.catalog import TASKS, load_benchmark, text_corpus
from evilm.data.records import DataError
from evilm.data.text import TextTokenizer
from evilm.data.video import FrameConfig

# What a text vocabulary is built from: the pretraining captions alone (the paper keeps the top 30% of
# its corpus's words), or the training text of every benchmark with text (captions, questions, options;
# never a test split), as a general-purpose vocabulary such as BERT's covers the downstream words. A
# word-level vocabulary of the captions alone turns words that only questions and options use ("blink",
# "after", "how many") into [UNK]: options that differ only in such words cannot be told apart.
VOCAB_TEXT = {
    "captions": ("webvid",),
    "training_text": tuple(name for name, task in TASKS.items() if task != "class"),
}


def build_text_tokenizer(data_root: str | Path, keep_fraction: float, text: str = "captions") -> TextTokenizer:
    """The top ``keep_fraction`` of the distinct words of the ``VOCAB_TEXT[text]`` training text."""
    if text not in VOCAB_TEXT:
        raise DataError(f"unknown vocabulary text {text!r}; use one of {', '.join(VOCAB_TEXT)}")
    return TextTokenizer.build(text_corpus(data_root, VOCAB_TEXT[text]), keep_fraction=keep_fraction)


def resolve_text_tokenizer(inputs: dict[str, Any], data_root: str | Path, keep_fraction: float,
                           text: str = "captions") -> TextTokenizer:
    """``inputs['text_tokenizer']`` when given, else built from the data root's text (``build_text_tokenizer``)."""
    path = inputs.get("text_tokenizer")
    if path is not None:
        return TextTokenizer.load(path)
    return build_text_tokenizer(data_root, keep_fraction, text)


def frame_config(model_config: Any, cache_dir: str | None = None) -> FrameConfig:
    """Frames as the model takes them: ``num_frames`` frames of ``image_size`` pixels (evaluation
    clips cached on disk in ``cache_dir`` when given)."""
    return FrameConfig(num_frames=model_config.num_frames, image_size=model_config.image_size, cache_dir=cache_dir)


def records_of(benchmark: str, data_root: str | Path, split: str, **options) -> Any:
    """The benchmark (``evilm.data.Benchmark``) and one split's records; fails naming an empty split."""
    bench = load_benchmark(benchmark, data_root, **options)
    records = bench.split(split)
    if not records:
        raise DataError(f"{benchmark}: the '{split}' split under {data_root} is empty")
    return bench, records


class CachedClips(Dataset):
    """A data set whose items are read once and kept, clips as uint8 (evaluation-mode data only).

    Items that share a video share one stored clip. Use with ``num_workers=0``: the cache
    lives in the process that reads the items. Storing as uint8 moves a pixel by at most
    1/510 (none when the decoded frames need no resize: they are already on the 1/255 grid).
    """

    def __init__(self, dataset: Any):
        if getattr(dataset, "train", False):
            raise ValueError("CachedClips keeps one decoding per clip: use it on evaluation-mode data sets only")
        self.dataset = dataset
        self.items: dict[int, dict[str, Any]] = {}
        self.clips: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:  # records, collate, epoch, ... of the wrapped data set
        if name in ("dataset", "items", "clips"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, index: int) -> Any:
        if index not in self.items:
            path = str(self.dataset.records[index].video_path)
            if path in self.clips:  # another item of the same video: no second decoding
                item = self.dataset.item_with_clip(index, self.clips[path])
            else:
                item = self.dataset[index]
                if not isinstance(item, dict):  # a skipped (unreadable) clip: not cached
                    return item
                self.clips[path] = item["frames"].mul(255).round_().to(torch.uint8)
            self.items[index] = {**item, "frames": self.clips[path]}
        item = dict(self.items[index])
        item["frames"] = item["frames"].float().div_(255.0)
        return item


class BatchCollator:
    """``dataset.collate`` that moves skipped clips into a count, and adds cached MVM codes."""

    def __init__(self, dataset: Any, codes: Any | None = None):
        self.dataset = dataset
        self.codes = codes

    def __call__(self, items: list[Any]) -> dict[str, Any]:
        batch = self.dataset.collate(items)
        batch["num_skipped"] = len(batch.pop("skipped", []))
        if self.codes is not None and "video_id" in batch:
            batch["codes"] = self.codes.lookup(batch["video_id"])
        return batch


__all__ = [
    "BatchCollator",
    "CachedClips",
    "build_text_tokenizer",
    "frame_config",
    "records_of",
    "resolve_text_tokenizer",
]
