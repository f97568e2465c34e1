"""Video tokenizers: the MVM targets of E-ViLM (Section 3.3, Table 6).

``create_tokenizer(name, config)`` with ``name`` one of ``semantic_focal``,
``semantic_bce``, ``pixel_dvae``, ``perceptual_vq``; every tokenizer offers
``encode(frames) -> long (B, T, H // S, W // S)`` on the video encoder's MVM grid,
``codebook_size``, ``stride``, and saves/loads as one file.
"""

from __future__ import annotations

from evilm.tokenizers.base import TokenizerStep, VideoTokenizer
from evilm.tokenizers.cache import CachedCodes, cache_codes
from evilm.tokenizers.config import (
    PRESETS,
    TOKENIZER_NAMES,
    PerceptualConfig,
    PixelConfig,
    SemanticConfig,
    TokenizerConfig,
    TrainConfig,
    preset_config,
)
from evilm.tokenizers.factory import create_tokenizer, load_tokenizer, save_tokenizer
from evilm.tokenizers.quantizer import QuantizerConfig, VectorQuantizer
from evilm.tokenizers.usage import CodeCounter, codebook_usage

__all__ = [
    "PRESETS",
    "TOKENIZER_NAMES",
    "CachedCodes",
    "CodeCounter",
    "PerceptualConfig",
    "PixelConfig",
    "QuantizerConfig",
    "SemanticConfig",
    "TokenizerConfig",
    "TokenizerStep",
    "TrainConfig",
    "VectorQuantizer",
    "VideoTokenizer",
    "cache_codes",
    "codebook_usage",
    "create_tokenizer",
    "load_tokenizer",
    "preset_config",
    "save_tokenizer",
]
