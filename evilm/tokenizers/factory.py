"""Build a tokenizer by name; save it as one file and load it back.

A saved tokenizer is a ``torch.save`` dict of plain values and tensors (so it
loads with ``weights_only=True``): its name, its resolved config and the weights
``encode`` needs (decoders, heads and loss networks are dropped, as the paper
keeps "only the encoder and the vector-quantized module").
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from evilm.config import ConfigError, close_match, from_dict, to_dict
from evilm.tokenizers.base import VideoTokenizer
from evilm.tokenizers.config import TOKENIZER_NAMES, TokenizerConfig

FILE_FORMAT = "evilm.video_tokenizer/1"


def create_tokenizer(name: str, config: TokenizerConfig, load_weights: bool = True) -> VideoTokenizer:
    """``semantic_focal`` | ``semantic_bce`` | ``pixel_dvae`` | ``perceptual_vq``, randomly initialised.

    ``name`` picks the tokenizer and, for the semantic ones, the word loss (eq. 6 or BCE);
    it is written into the config (``config.name``). ``load_weights=False`` skips the
    local weight files named in the config (a pretrained encoder, the perceptual loss
    network): ``load_tokenizer`` restores the weights from the saved file instead.
    """
    if name in TOKENIZER_NAMES:
        config = dataclasses.replace(config, name=name)
    if name == "semantic_focal" or name == "semantic_bce":
        from evilm.tokenizers.semantic import SemanticTokenizer

        return SemanticTokenizer(config, loss="focal" if name == "semantic_focal" else "bce", load_weights=load_weights)
    if name == "pixel_dvae":
        from evilm.tokenizers.pixel import DVAETokenizer

        return DVAETokenizer(config)
    if name == "perceptual_vq":
        from evilm.tokenizers.perceptual import PerceptualVQTokenizer

        return PerceptualVQTokenizer(config, with_loss_net=load_weights)
    raise ConfigError("name", f"unknown tokenizer '{name}'{close_match(name, TOKENIZER_NAMES)}; known: {', '.join(TOKENIZER_NAMES)}")


def save_tokenizer(tokenizer: VideoTokenizer, path: str | Path) -> Path:
    """Write the tokenizer to ``path`` (via a temporary name, renamed when complete)."""
    cfg = getattr(tokenizer, "cfg", None)
    if not isinstance(cfg, TokenizerConfig):
        raise TypeError(f"{type(tokenizer).__name__} has no TokenizerConfig; only the suite's tokenizers are saved")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in tokenizer.encoding_state().items()}
    payload = {"format": FILE_FORMAT, "name": cfg.name, "config": to_dict(cfg), "state_dict": state}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_tokenizer(path: str | Path, map_location: str | torch.device = "cpu") -> VideoTokenizer:
    """A tokenizer saved by ``save_tokenizer``, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {path}")
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
        raise ValueError(f"{path}: not a video tokenizer file (expected format {FILE_FORMAT})")
    try:
        config = from_dict(TokenizerConfig, payload["config"])
    except ConfigError as err:
        raise ConfigError(f"{path}:config.{err.path}", str(err)) from None
    tokenizer = create_tokenizer(payload["name"], config, load_weights=False)
    tokenizer.load_encoding_state(payload["state_dict"], source=str(path))
    return tokenizer.eval()
