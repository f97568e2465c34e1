"""Torch datasets and loaders: records -> batches of clips and token ids.

``build_dataset(kind, records, tokenizer, frames, train)`` and ``make_loader(dataset, config)``
are the entry points. A batch is a dict:

- every kind: ``frames float (B, T, 3, H, W)`` in [0, 1], ``index long (B,)`` (position in
  ``records``), ``video_id list[str]``;
- ``video_text``: ``input_ids``/``attention_mask long (B, L)`` of the caption, ``text list[str]``;
- ``qa``: ``input_ids``/``attention_mask`` of the question, ``answer_id long (B,)`` (the answer
  vocabulary's ``oov_id`` for an answer outside it), ``answer list[str]``;
- ``mc``: ``option_ids``/``option_mask long (B, K, L)`` of "question option" for each option,
  ``choice_ids``/``choice_mask long (B, K, L)`` of each option alone, ``answer long (B,)``, the right
  option's index;
- ``class``: ``label long (B,)``.
- with ``scene_labels`` (generated world): ``scene_<name> long (B,)`` per ground-truth field.

Unreadable clips (missing, empty, corrupt) are skipped, not fatal: the loader counts
them and fails with one clear ``DataError`` only when more than
``max_skip_fraction`` of the data set is unreadable in one pass.
Randomness (frame choice, crops, shuffling) is a function of ``seed``, the epoch and
the item index, so results do not depend on the number of workers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from evilm.config import ConfigError
from evilm.data.answers import AnswerVocab
from evilm.data.records import ClassItem, DataError, MCItem, QAItem, Record, VideoText
from evilm.data.text import TextTokenizer
from evilm.data.video import FrameConfig, VideoReadError, load_clip

log = logging.getLogger(__name__)

Kind = Literal["video_text", "qa", "mc", "class"]
RECORD_TYPES = {"video_text": VideoText, "qa": QAItem, "mc": MCItem, "class": ClassItem}


@dataclass
class DataConfig:
    frames: FrameConfig = field(default_factory=FrameConfig)
    batch_size: int = 16
    num_workers: int = 2  # one decode thread each
    max_text_len: int = 32
    max_skip_fraction: float = 0.05  # fail when more of a pass is unreadable
    seed: int = 0

    def __post_init__(self):
        if self.batch_size < 1:
            raise ConfigError("batch_size", f"must be >= 1, got {self.batch_size}")
        if self.num_workers < 0:
            raise ConfigError("num_workers", f"must be >= 0, got {self.num_workers}")
        if not 0 <= self.max_skip_fraction < 1:
            raise ConfigError("max_skip_fraction", f"must be in [0, 1), got {self.max_skip_fraction}")


@dataclass
class Skipped:
    index: int
    path: str
    source: str
    reason: str


class VideoDataset(Dataset):
    def __init__(
        self,
        kind: Kind,
        records: Sequence[Record],
        tokenizer: TextTokenizer | None,
        frames: FrameConfig,
        train: bool,
        answers: AnswerVocab | None = None,
        classes: Sequence[str] | None = None,
        max_text_len: int = 32,
        seed: int = 0,
        scene_labels: dict[str, dict[str, int]] | None = None,
    ):
        if kind not in RECORD_TYPES:
            raise DataError(f"unknown dataset kind {kind!r}; use one of {', '.join(RECORD_TYPES)}")
        expected = RECORD_TYPES[kind]
        for i, record in enumerate(records):
            if not isinstance(record, expected):
                raise DataError(f"a '{kind}' dataset needs {expected.__name__} records; "
                                f"record {i} is {type(record).__name__}")
        if kind != "class" and tokenizer is None:
            raise DataError(f"a '{kind}' dataset needs a tokenizer")
        if kind == "qa" and answers is None:
            raise DataError("a 'qa' dataset needs an answer vocabulary (AnswerVocab)")
        if kind == "class":
            classes = list(classes) if classes is not None else sorted({r.label for r in records})
            unknown = sorted({r.label for r in records} - set(classes))
            if unknown:
                raise DataError(f"labels {unknown[:5]} are not in the class list")
        self.kind = kind
        self.records = list(records)
        self.tokenizer = tokenizer
        self.frames = frames
        self.train = train
        self.answers = answers
        self.classes = list(classes) if classes is not None else None
        self._class_index = {c: i for i, c in enumerate(self.classes or [])}
        self.max_text_len = max_text_len
        self.seed = seed
        self.epoch = 0
        self.scene_labels = scene_labels

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any] | Skipped:
        record = self.records[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        try:
            clip = load_clip(record.video_path, self.frames, train=self.train, rng=rng)
        except VideoReadError as err:
            return Skipped(index, record.video_path, record.source, str(err))
        return self.item_with_clip(index, clip)

    def item_with_clip(self, index: int, clip: torch.Tensor) -> dict[str, Any]:
        """Item ``index`` around an already decoded clip (questions about one video share its decoding)."""
        record = self.records[index]
        item: dict[str, Any] = {"index": index, "video_id": record.video_id, "frames": clip}
        if self.kind == "video_text":
            item["text"] = record.caption
        elif self.kind == "qa":
            item["text"] = record.question
            item["answer"] = record.answer
            item["answer_id"] = self.answers.encode(record.answer)
        elif self.kind == "mc":
            item["options"] = [f"{record.question} {o}".strip() for o in record.options]
            item["choices"] = list(record.options)
            item["answer_index"] = record.answer
        else:
            item["label"] = self._class_index[record.label]
        if self.scene_labels is not None:
            labels = self.scene_labels.get(record.video_id)
            if labels is None:
                raise DataError(f"no scene labels for video '{record.video_id}' ({record.source})")
            item["scene"] = labels
        return item

    def collate(self, items: list[dict[str, Any] | Skipped]) -> dict[str, Any]:
        skipped = [i for i in items if isinstance(i, Skipped)]
        good = [i for i in items if not isinstance(i, Skipped)]
        batch: dict[str, Any] = {"skipped": skipped}
        if not good:
            return batch
        batch["frames"] = torch.stack([i["frames"] for i in good])
        batch["index"] = torch.tensor([i["index"] for i in good], dtype=torch.long)
        batch["video_id"] = [i["video_id"] for i in good]
        if self.kind in ("video_text", "qa"):
            batch.update(self.tokenizer.encode_batch([i["text"] for i in good], self.max_text_len))
            batch["text"] = [i["text"] for i in good]
        if self.kind == "qa":
            batch["answer_id"] = torch.tensor([i["answer_id"] for i in good], dtype=torch.long)
            batch["answer"] = [i["answer"] for i in good]
        if self.kind == "mc":
            num_options = len(good[0]["options"])
            if any(len(i["options"]) != num_options for i in good):
                raise DataError("multiple-choice items in one batch must have the same number of options")
            enc = self.tokenizer.encode_batch([o for i in good for o in i["options"]], self.max_text_len)
            batch["option_ids"] = enc["input_ids"].view(len(good), num_options, -1)
            batch["option_mask"] = enc["attention_mask"].view(len(good), num_options, -1)
            enc = self.tokenizer.encode_batch([c for i in good for c in i["choices"]], self.max_text_len)
            batch["choice_ids"] = enc["input_ids"].view(len(good), num_options, -1)
            batch["choice_mask"] = enc["attention_mask"].view(len(good), num_options, -1)
            batch["answer"] = torch.tensor([i["answer_index"] for i in good], dtype=torch.long)
        if self.kind == "class":
            batch["label"] = torch.tensor([i["label"] for i in good], dtype=torch.long)
        if self.scene_labels is not None:
            for name in good[0]["scene"]:
                batch[f"scene_{name}"] = torch.tensor([i["scene"][name] for i in good], dtype=torch.long)
        return batch


def build_dataset(
    kind: Kind,
    records: Sequence[Record],
    tokenizer: TextTokenizer | None,
    frames: FrameConfig,
    train: bool,
    **kwargs,
) -> VideoDataset:
    """A dataset of ``records`` (see ``VideoDataset`` for the keyword options)."""
    return VideoDataset(kind, records, tokenizer, frames, train, **kwargs)


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)  # one decode thread per worker, no oversubscription


class VideoLoader:
    """A ``DataLoader`` over a ``VideoDataset`` that skips unreadable clips, counts them and
    fails past ``max_skip_fraction``. Iterate it once per epoch.

    ``skipped`` lists the last pass's skipped clips; ``num_skipped_total`` counts all passes.
    """

    def __init__(self, dataset: VideoDataset, config: DataConfig, shuffle: bool | None = None,
                 drop_last: bool = False, batch_size: int | None = None):
        self.dataset = dataset
        self.config = config
        self.shuffle = dataset.train if shuffle is None else shuffle
        self.drop_last = drop_last
        self.batch_size = batch_size or config.batch_size
        self.epoch = 0
        self.skipped: list[Skipped] = []
        self.num_skipped_total = 0
        self.num_seen_total = 0

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def max_skipped(self) -> int:
        return math.floor(self.config.max_skip_fraction * len(self.dataset))

    def _loader(self, epoch: int) -> DataLoader:
        self.dataset.epoch = epoch
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        workers = self.config.num_workers
        return DataLoader(self.dataset, batch_size=self.batch_size, shuffle=self.shuffle,
                          drop_last=self.drop_last, num_workers=workers, collate_fn=self.dataset.collate,
                          generator=generator, worker_init_fn=_worker_init if workers > 0 else None,
                          persistent_workers=False, prefetch_factor=4 if workers > 0 else None)

    def __iter__(self):
        epoch, self.epoch = self.epoch, self.epoch + 1  # a pass started is an epoch, even if cut short
        self.skipped = []
        seen = 0
        for batch in self._loader(epoch):
            skipped = batch.pop("skipped")
            seen += len(skipped) + (len(batch["index"]) if "index" in batch else 0)
            if skipped:
                self.skipped.extend(skipped)
                self.num_skipped_total += len(skipped)
                if len(self.skipped) > self.max_skipped:
                    raise DataError(self._too_many())
            if "index" in batch:
                yield batch
        self.num_seen_total += seen
        if self.skipped:
            log.warning("skipped %d of %d clips (unreadable); first: %s", len(self.skipped), seen,
                        self.skipped[0].reason)

    def _too_many(self) -> str:
        n, total = len(self.skipped), len(self.dataset)
        examples = "; ".join(f"{s.reason}" + (f" [{s.source}]" if s.source else "") for s in self.skipped[:3])
        return (f"{n} of {total} clips could not be read, more than max_skip_fraction="
                f"{self.config.max_skip_fraction} allows ({self.max_skipped}); first: {examples}")

    def stats(self) -> dict[str, float]:
        return {"clips_skipped": float(len(self.skipped)), "clips_skipped_total": float(self.num_skipped_total)}


def make_loader(dataset: VideoDataset, config: DataConfig, shuffle: bool | None = None, drop_last: bool = False,
                batch_size: int | None = None) -> VideoLoader:
    return VideoLoader(dataset, config, shuffle=shuffle, drop_last=drop_last, batch_size=batch_size)
