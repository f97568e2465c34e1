"""The tokenizers' pretrained parts, from local files: what the tokenizer stage's inputs feed.

* ``encoder_init`` -> the semantic tokenizer's encoder (``semantic.pretrained``): on the quick
  profile the CLIP-analogue prior's backbone file; on the paper profile an OpenCLIP ViT-B/32 or
  OpenAI CLIP state dict (``semantic.encoder_arch`` builds the matching ViT).
* ``perceptual_features`` -> the perceptual tokenizer's loss network (``perceptual.feature_net:
  pretrained``): the image-analogue prior's backbone file, or a local VGG-16 / timm checkpoint.
* the released DALL-E encoder (``pixel.encoder: dall_e``) comes from the config's
  ``pixel.dall_e_encoder`` file, behind ``pixel.trust_pickle``.

Every load is strict (``evilm.tokenizers.weights.fit_strictly``). A pipeline feeds every row of a
table the same inputs, so an input the tokenizer's config does not use is left aside (and said so by
``load_pretrained_parts``); an input the config needs and does not get is an error.
"""

from __future__ import annotations

from pathlib import Path

from evilm.config import ConfigError
from evilm.tokenizers.base import VideoTokenizer
from evilm.tokenizers.perceptual import PerceptualVQTokenizer, feature_network
from evilm.tokenizers.pixel import DallETokenizer
from evilm.tokenizers.semantic import SemanticTokenizer
from evilm.tokenizers.weights import read_weights

ENCODER_INIT = "encoder_init"
PERCEPTUAL_FEATURES = "perceptual_features"


def load_encoder_init(tokenizer: VideoTokenizer, path: str | Path, key: str = f"inputs.{ENCODER_INIT}") -> None:
    """Start the tokenizer's encoder from ``path``: a backbone/CLIP file (semantic) or DALL-E's
    ``encoder.pkl`` (``DallETokenizer``, with ``pixel.trust_pickle``)."""
    if isinstance(tokenizer, SemanticTokenizer):
        tokenizer.encoder.load_pretrained(read_weights(path, key), key)
    elif isinstance(tokenizer, DallETokenizer):
        tokenizer.load_released(path, key)
    else:
        raise ConfigError(key, f"the {type(tokenizer).__name__} has no pretrained encoder to load {path} into")


def load_perceptual_features(tokenizer: VideoTokenizer, path: str | Path,
                             key: str = f"inputs.{PERCEPTUAL_FEATURES}") -> None:
    """Make the network in ``path`` the perceptual tokenizer's fixed loss network."""
    if not isinstance(tokenizer, PerceptualVQTokenizer):
        raise ConfigError(key, f"the {type(tokenizer).__name__} has no perceptual loss network")
    tokenizer.set_feature_network(feature_network(tokenizer.cfg.perceptual, read_weights(path, key), key))


def load_pretrained_parts(tokenizer: VideoTokenizer, inputs: dict[str, str | Path]) -> list[str]:
    """Load every pretrained part the tokenizer's config asks for (from ``inputs`` or the config);
    returns the names of the given inputs it did not use."""
    used = set()
    if isinstance(tokenizer, SemanticTokenizer) and tokenizer.cfg.semantic.pretrained:
        load_encoder_init(tokenizer, _needed(inputs, ENCODER_INIT, "semantic.pretrained"))
        used.add(ENCODER_INIT)
    if isinstance(tokenizer, DallETokenizer):
        load_encoder_init(tokenizer, tokenizer.cfg.pixel.dall_e_encoder, key="pixel.dall_e_encoder")
    if isinstance(tokenizer, PerceptualVQTokenizer) and tokenizer.cfg.perceptual.feature_net == "pretrained":
        load_perceptual_features(tokenizer, _needed(inputs, PERCEPTUAL_FEATURES, "perceptual.feature_net"))
        used.add(PERCEPTUAL_FEATURES)
    return sorted({ENCODER_INIT, PERCEPTUAL_FEATURES} & set(inputs) - used)


def _needed(inputs: dict[str, str | Path], name: str, key: str) -> str | Path:
    if not inputs.get(name):
        raise ConfigError(key, f"needs the stage input '{name}' (a weights file from a prior stage or a local "
                               "file); the pipeline gives none")
    return inputs[name]
