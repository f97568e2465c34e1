"""Video tokenizers: the MVM targets of E-ViLM (Section 3.3, Table 6).

``create_tokenizer(name, config)`` with ``name`` one of ``TOKENIZERS``: ``semantic``
(its word loss ``semantic.word_loss``: ``focal``, eq. 6, or ``bce``), ``pixel_dvae``,
``perceptual_vq``; every tokenizer offers ``encode(frames) -> long (B, T, H // S, W // S)``
on the video encoder's MVM grid, ``codebook_size``, ``stride``, and saves/loads as one file.
``evilm.tokenizers.train.run`` is the tokenizer stage.

The names below are imported on first use (``evilm.lazy``): ``evilm.tokenizers.config`` reads
without torch.
"""

from evilm.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["TokenizerStep", "VideoTokenizer"], "evilm.tokenizers.base"),
    **dict.fromkeys(["CachedCodes", "cache_codes"], "evilm.tokenizers.cache"),
    **dict.fromkeys(["PRESETS", "TOKENIZER_NAMES", "PerceptualConfig", "PixelConfig", "QuantizerConfig",
                     "SemanticConfig", "TokenizerConfig", "TrainConfig", "preset_config"], "evilm.tokenizers.config"),
    **dict.fromkeys(["TOKENIZERS", "create_tokenizer", "load_tokenizer", "save_tokenizer"], "evilm.tokenizers.factory"),
    "VectorQuantizer": "evilm.tokenizers.quantizer",
    **dict.fromkeys(["CodeCounter", "codebook_usage"], "evilm.tokenizers.usage"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
