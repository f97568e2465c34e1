"""Weights files for the tokenizers' pretrained parts: reading them and fitting them strictly.

Nothing is downloaded; every file is local. The formats read here (``read_weights``):

* a prior stage's backbone file (``evilm.priors``): ``{"format": "evilm-backbone/1", "backbone":
  <timm name>, "state_dict": ...}``, keys as the timm backbone names them, no classifier head;
* a plain checkpoint: a state dict, bare or under ``state_dict`` / ``model`` / ``state_dict_ema``,
  ``module.`` prefixes (DDP) removed; ``.safetensors`` files too. A timm classifier checkpoint
  (e.g. EdgeNeXt-small's ImageNet weights) keeps its head: ``without_head`` sets it aside;
* a CLIP model's state dict (OpenCLIP ``ViT-B-32``, or OpenAI CLIP's keys): the image tower is
  under ``visual.``; ``clip_image_tower`` sets the text tower aside and converts the image tower to
  timm's ViT names with timm's own converter.

``fit_strictly`` loads a state dict into a module only when every weight of the module comes from
it and every weight in it finds a place, else a ``ConfigError`` names the file and the keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from evilm.config import ConfigError

BACKBONE_FORMAT = "evilm-backbone/1"
# What a timm classifier checkpoint holds after the features: the classifier head (timm names it
# ``head``, ``fc`` or ``classifier``; EdgeNeXt/ConvNeXt put a norm in ``head.norm``; MobileNetV3 a 1x1
# conv head before it). The backbones here end at ``forward_features``.
HEAD_PREFIXES = ("head.", "fc.", "classifier.", "conv_head.", "norm_head.", "head_hidden.")
_WRAPPERS = ("state_dict", "model", "state_dict_ema", "module")


@dataclass
class WeightsFile:
    path: Path
    state: dict[str, torch.Tensor]
    backbone: str | None = None  # the timm name an evilm backbone file gives; None for a plain checkpoint


def read_weights(path: str | Path, key: str) -> WeightsFile:
    """The tensors of a local weights file (see the module docstring); ``key`` names the config key or
    input that gave the path, for errors."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(key, f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return WeightsFile(path, dict(load_file(str(path))))
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (every unreadable file gets the same clear error)
        raise ConfigError(key, f"{path}: not a weights file that loads without unpickling code "
                               f"({type(err).__name__}: {str(err).splitlines()[0]}); OpenAI's TorchScript CLIP "
                               "archives: save torch.jit.load(f).state_dict() first") from None
    if isinstance(data, dict) and data.get("format") == BACKBONE_FORMAT:
        return WeightsFile(path, dict(data["state_dict"]), backbone=str(data["backbone"]))
    for wrapper in _WRAPPERS:
        if isinstance(data, dict) and isinstance(data.get(wrapper), dict):
            data = data[wrapper]
            break
    if not isinstance(data, dict) or not data or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ConfigError(key, f"{path}: no state dict of tensors in it")
    return WeightsFile(path, {k.removeprefix("module."): v for k, v in data.items()})


def without_head(weights: WeightsFile) -> dict[str, torch.Tensor]:
    """The state without a classifier head (``HEAD_PREFIXES``); a prior's backbone file has none."""
    if weights.backbone is not None:
        return weights.state
    return {k: v for k, v in weights.state.items() if not k.startswith(HEAD_PREFIXES)}


def check_backbone_name(weights: WeightsFile, expected: str, key: str) -> None:
    if weights.backbone is not None and weights.backbone != expected:
        raise ConfigError(key, f"{weights.path} holds a '{weights.backbone}' backbone, the config builds '{expected}'")


def is_clip(state: dict[str, torch.Tensor]) -> bool:
    return "visual.class_embedding" in state


def clip_image_tower(state: dict[str, torch.Tensor], vit: nn.Module) -> dict[str, torch.Tensor]:
    """A CLIP state dict's image tower (``visual.*``) in timm ViT names, its position embedding resampled
    to ``vit``'s grid; the text tower (every other key) is set aside. CLIP's ``proj`` becomes
    ``head.weight`` (with a zero ``head.bias``)."""
    from timm.models.vision_transformer import checkpoint_filter_fn

    return checkpoint_filter_fn({k: v for k, v in state.items() if k.startswith("visual.")}, vit)


def fit_strictly(module: nn.Module, state: dict[str, torch.Tensor], path: Path, key: str, what: str) -> None:
    """``module.load_state_dict(state)`` when the keys and shapes match exactly, else a ``ConfigError``
    at ``key`` naming ``path``, the missing and the unused keys (``what`` says what was loaded)."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unused = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and state[k].shape != own[k].shape]
    if missing or unused or shapes:
        parts = [f"{label} ({len(keys)}): {keys[:6]}{' ...' if len(keys) > 6 else ''}"
                 for label, keys in (("missing", missing), ("unused", unused), ("other shape (file vs model)", shapes))
                 if keys]
        raise ConfigError(key, f"{path} does not fit the {what}: " + "; ".join(parts))
    module.load_state_dict(state, strict=True)
