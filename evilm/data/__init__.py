"""Video-language data: reading clips, the generated world, real data-set formats, text, datasets.

- ``evilm.data.video``: frame sampling and decoding (``FrameConfig``, ``load_clip``).
- ``evilm.data.text``: the squeezed vocabulary, ``TextTokenizer``, ``mask_tokens``.
- ``evilm.data.formats``: readers for each data set's own annotation files.
- ``evilm.data.synthetic``: the generated world (``WorldConfig``, ``generate_world``, stage ``run``).
- ``evilm.data.catalog``: named benchmarks from a world or a real root (``load_benchmark``).
- ``evilm.data.datasets``: torch datasets and loaders (``build_dataset``, ``make_loader``).
"""

from evilm.data.answers import AnswerVocab
from evilm.data.catalog import BENCHMARKS, Benchmark, load_benchmark, text_corpus
from evilm.data.datasets import DataConfig, VideoDataset, VideoLoader, build_dataset, make_loader
from evilm.data.records import ClassItem, DataError, MCItem, QAItem, SceneInfo, VideoText
from evilm.data.synthetic import WorldConfig, generate_world, load_scenes, scene_labels
from evilm.data.text import TextTokenizer, mask_tokens
from evilm.data.video import FrameConfig, VideoReadError, load_clip, sample_frame_indices

__all__ = [
    "AnswerVocab", "BENCHMARKS", "Benchmark", "ClassItem", "DataConfig", "DataError", "FrameConfig", "MCItem",
    "QAItem", "SceneInfo", "TextTokenizer", "VideoDataset", "VideoLoader", "VideoReadError", "VideoText",
    "WorldConfig", "build_dataset", "generate_world", "load_benchmark", "load_clip", "load_scenes",
    "make_loader", "mask_tokens", "sample_frame_indices", "scene_labels", "text_corpus",
]
