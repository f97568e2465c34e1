"""The record types every reader produces, whatever the data set's own format.

A reader (``evilm.data.formats``) turns one annotation file into a list of these;
the datasets (``evilm.data.datasets``) turn records into tensors. ``source`` says
where a record came from ("MSR_VTT.json annotation 17") so that an error about
its video can name the file and the row. ``meta`` keeps format-specific extras
(DiDeMo moment times, a TGIF key, an MSRVTT-QA category) that no task needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class DataError(ValueError):
    """Bad input data: a missing/corrupt video, a malformed annotation row, too many skipped clips."""


@dataclass
class VideoText:
    """A video with one caption (pretraining, retrieval)."""

    video_id: str
    video_path: str
    caption: str
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class QAItem:
    """An open-ended question with a one-word (or short) answer."""

    video_id: str
    video_path: str
    question: str
    answer: str
    answer_type: str = ""
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class MCItem:
    """A multiple-choice item: the right option among ``options`` is ``answer`` (an index)."""

    video_id: str
    video_path: str
    options: list[str]
    answer: int
    question: str = ""
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ClassItem:
    """A video with an action-class label (linear probes)."""

    video_id: str
    video_path: str
    label: str
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


Record = VideoText | QAItem | MCItem | ClassItem


# --- ground truth of the generated world -------------------------------------------------------


@dataclass
class ObjectInfo:
    """One object of a generated scene: its attributes and what it does, in order."""

    shape: str
    colour: str
    size: str
    texture: str
    actions: list[str]
    repeats: int = 1  # > 1: the (single) action is performed that many times
    # action details that captions may mention: rotation sense, entry/exit side, new colour
    details: dict[str, str] = field(default_factory=dict)


@dataclass
class SceneInfo:
    """What a generated clip shows, so another package can measure how semantic a code is.

    ``objects[main]`` is the object that captions and questions talk about.
    """

    video_id: str
    pool: str
    objects: list[ObjectInfo]
    main: int = 0

    @property
    def main_object(self) -> ObjectInfo:
        return self.objects[self.main]
