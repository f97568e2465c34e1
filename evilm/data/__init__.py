"""Video-language data: reading clips, the generated world, real data-set formats, text, datasets.

- ``evilm.data.video``: frame sampling and decoding (``FrameConfig``, ``load_clip``).
- ``evilm.data.text``: the squeezed vocabulary, ``TextTokenizer``, ``mask_tokens``.
- ``evilm.data.formats``: readers for each data set's own annotation files.
- ``evilm.data.synthetic``: the generated world (``WorldConfig``, ``generate_world``, stage ``run``).
- ``evilm.data.catalog``: named benchmarks from a world or a real root (``load_benchmark``).
- ``evilm.data.datasets``: torch datasets and loaders (``build_dataset``, ``make_loader``).
- ``evilm.data.frame_cache``: where evaluation clips are decoded once for every stage.
- ``evilm.data.loading``: what the training stages share (text tokenizer, ``CachedClips``, ``BatchCollator``).

The names below are imported on first use (``evilm.lazy``): importing this package loads nothing.
"""

from evilm.lazy import lazy_exports

_EXPORTS = {
    "AnswerVocab": "evilm.data.answers",
    **dict.fromkeys(["BENCHMARKS", "Benchmark", "load_benchmark", "text_corpus"], "evilm.data.catalog"),
    **dict.fromkeys(["DataConfig", "VideoDataset", "VideoLoader", "build_dataset", "make_loader"],
                    "evilm.data.datasets"),
    **dict.fromkeys(["FRAME_CACHE", "frame_cache_dir"], "evilm.data.frame_cache"),
    **dict.fromkeys(["BatchCollator", "CachedClips", "build_text_tokenizer", "frame_config", "records_of",
                     "resolve_text_tokenizer"], "evilm.data.loading"),
    **dict.fromkeys(["ClassItem", "DataError", "MCItem", "QAItem", "SceneInfo", "VideoText"], "evilm.data.records"),
    **dict.fromkeys(["WorldConfig", "generate_world", "load_scenes", "scene_labels"], "evilm.data.synthetic"),
    **dict.fromkeys(["TextTokenizer", "mask_tokens"], "evilm.data.text"),
    **dict.fromkeys(["FrameConfig", "VideoReadError", "load_clip", "sample_frame_indices"], "evilm.data.video"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
