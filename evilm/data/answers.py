"""Answer vocabularies for open-ended QA, as the field builds them.

Open-ended video QA is a classification over the K most frequent training
answers (MSRVTT-QA 1,500, MSVD-QA 1,000, TGIF-FrameQA 1,540) plus one
out-of-vocabulary class. A question whose answer is out of the vocabulary
gets ``oov_id`` as its target; evaluation must count it as wrong whatever the
model predicts (``AnswerVocab.is_oov``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from evilm.data.records import DataError
from evilm.files import atomic_write_text

OOV = "[OOV]"

# the top-K answer set size each benchmark uses in the literature
TOP_K = {"msrvtt_qa": 1500, "msvd_qa": 1000, "tgif_frame": 1540}


def normalise_answer(answer: str) -> str:
    return " ".join(str(answer).strip().lower().split())


@dataclass
class AnswerVocab:
    answers: list[str]  # class i is answers[i]; class len(answers) is out-of-vocabulary

    @classmethod
    def build(cls, answers: Iterable[str], top_k: int) -> AnswerVocab:
        """The ``top_k`` most frequent answers (ties alphabetical, so the order is reproducible)."""
        if top_k < 1:
            raise DataError(f"top_k must be >= 1, got {top_k}")
        counts = Counter(normalise_answer(a) for a in answers)
        counts.pop("", None)
        if not counts:
            raise DataError("cannot build an answer vocabulary without answers")
        ranked = sorted(counts, key=lambda a: (-counts[a], a))
        return cls(ranked[:top_k])

    def __post_init__(self):
        self._index = {a: i for i, a in enumerate(self.answers)}

    @property
    def oov_id(self) -> int:
        return len(self.answers)

    @property
    def num_classes(self) -> int:
        """Classifier width: the answers plus the out-of-vocabulary class."""
        return len(self.answers) + 1

    def encode(self, answer: str) -> int:
        return self._index.get(normalise_answer(answer), self.oov_id)

    def decode(self, class_id: int) -> str:
        return self.answers[class_id] if 0 <= class_id < len(self.answers) else OOV

    def is_oov(self, answer: str) -> bool:
        return self.encode(answer) == self.oov_id

    def coverage(self, answers: Iterable[str]) -> float:
        """Fraction of ``answers`` inside the vocabulary (an upper bound on accuracy)."""
        answers = list(answers)
        return sum(not self.is_oov(a) for a in answers) / max(1, len(answers))

    def save(self, path: str | Path) -> Path:
        return atomic_write_text(path, json.dumps({"answers": self.answers, "oov": OOV}, indent=0))

    @classmethod
    def load(cls, path: str | Path) -> AnswerVocab:
        try:
            return cls(list(json.loads(Path(path).read_text())["answers"]))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataError(f"{path}: not a saved answer vocabulary ({err})") from None
