"""The tokenizers by name; save one as a file and load it back.

A saved tokenizer is a ``torch.save`` dict of plain values and tensors (so it
loads with ``weights_only=True``): its name, its resolved config and the weights
``encode`` needs (decoders, heads and loss networks are dropped, as the paper
keeps "only the encoder and the vector-quantized module").
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from evilm.config import ConfigError, from_dict, pick, to_dict
from evilm.files import atomic_torch_save
from evilm.tokenizers.base import VideoTokenizer
from evilm.tokenizers.config import TokenizerConfig
from evilm.tokenizers.perceptual import PerceptualVQTokenizer
from evilm.tokenizers.pixel import DallETokenizer, DVAETokenizer
from evilm.tokenizers.semantic import SemanticTokenizer

# Every tokenizer is built as ``cls(config)``; the names are ``TokenizerConfig.name``'s.
TOKENIZERS: dict[str, type[VideoTokenizer]] = {
    "semantic": SemanticTokenizer,  # semantic VQ: word loss focal (eq. 6) or bce (semantic.word_loss)
    "pixel_dvae": DVAETokenizer,  # DALL-E-style discrete VAE on pixels (DallETokenizer: the released one)
    "perceptual_vq": PerceptualVQTokenizer,  # PeCo-style VQ with a perceptual loss
}

FILE_FORMAT = "evilm.video_tokenizer/3"


def create_tokenizer(name: str, config: TokenizerConfig) -> VideoTokenizer:
    """The tokenizer ``name`` (a key of ``TOKENIZERS``), randomly initialised; ``name`` is written
    into the config (``config.name``). Pretrained parts come from files afterwards
    (``evilm.tokenizers.pretrained``); ``load_tokenizer`` restores a saved one.
    """
    cls = pick(TOKENIZERS, name, "name", "tokenizer")
    if cls is DVAETokenizer and config.pixel.encoder == "dall_e":
        cls = DallETokenizer
    return cls(dataclasses.replace(config, name=name))


def save_tokenizer(tokenizer: VideoTokenizer, path: str | Path) -> Path:
    """Write the tokenizer to ``path`` (via a temporary name, renamed when complete)."""
    cfg = getattr(tokenizer, "cfg", None)
    if not isinstance(cfg, TokenizerConfig):
        raise TypeError(f"{type(tokenizer).__name__} has no TokenizerConfig; only the suite's tokenizers are saved")
    state = {k: v.detach().cpu().clone() for k, v in tokenizer.encoding_state().items()}
    payload = {"format": FILE_FORMAT, "name": cfg.name, "config": to_dict(cfg), "state_dict": state}
    return atomic_torch_save(payload, path)


def load_tokenizer(path: str | Path, map_location: str | torch.device = "cpu") -> VideoTokenizer:
    """A tokenizer saved by ``save_tokenizer``, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {path}")
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
        raise ValueError(f"{path}: not a video tokenizer file of this version (expected format {FILE_FORMAT}; "
                         "train the tokenizer again)")
    try:
        config = from_dict(TokenizerConfig, payload["config"])
    except ConfigError as err:
        raise ConfigError(f"{path}:config.{err.path}", str(err)) from None
    tokenizer = create_tokenizer(payload["name"], config)
    tokenizer.load_encoding_state(payload["state_dict"], source=str(path))
    return tokenizer.eval()
