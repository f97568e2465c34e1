"""Backbone weights in files: the priors' output, and local checkpoints for the paper profile.

A prior stage (``evilm.priors``) saves the per-frame backbone it trained as
``{"format": "evilm-backbone/1", "backbone": <timm name>, "state_dict": ...}``. The same loader
takes a plain timm checkpoint file (e.g. EdgeNeXt-small's ImageNet weights, with or without a
``state_dict``/``model`` wrapper): the classifier head, which E-ViLM does not use, is left out.
Nothing is ever downloaded, and a file that does not fit the backbone is an error naming it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from evilm.config import ConfigError
from evilm.files import atomic_torch_save

FORMAT = "evilm-backbone/1"
# what a timm classifier checkpoint holds beyond the features E-ViLM uses
HEAD_PREFIXES = ("head.", "fc.", "classifier.", "conv_head.", "norm_head.", "head_hidden")


def save_backbone(path: str | Path, name: str, backbone: nn.Module, meta: dict | None = None) -> Path:
    state = {k: v.detach().cpu() for k, v in backbone.state_dict().items()}
    return atomic_torch_save({"format": FORMAT, "backbone": name, "state_dict": state, "meta": meta or {}}, path)


def read_backbone_state(path: str | Path, expected: str | None = None, key: str = "video_init") -> dict:
    """The state dict in ``path`` (an evilm backbone file or a timm checkpoint), without head weights."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(key, f"backbone weights not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (any unreadable file gets the same clear error)
        raise ConfigError(key, f"{path}: not a readable weights file ({type(err).__name__}: {err})") from err
    if isinstance(data, dict) and data.get("format") == FORMAT:
        if expected is not None and data["backbone"] != expected:
            raise ConfigError(key, f"{path} holds a '{data['backbone']}' backbone; the model's is '{expected}'")
        return data["state_dict"]
    for wrapper in ("state_dict", "model", "state_dict_ema"):
        if isinstance(data, dict) and isinstance(data.get(wrapper), dict):
            data = data[wrapper]
            break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ConfigError(key, f"{path}: no state dict of tensors in it")
    return {k.removeprefix("module."): v for k, v in data.items() if not k.startswith(HEAD_PREFIXES)}


def load_backbone(backbone: nn.Module, path: str | Path, expected: str | None = None, key: str = "video_init") -> None:
    """Load ``path`` into ``backbone``; every weight of the backbone must come from the file and every
    weight of the file must find a place (else a ``ConfigError`` naming the keys)."""
    state = read_backbone_state(path, expected, key)
    wanted = {k for k in backbone.state_dict() if not k.startswith(HEAD_PREFIXES)}
    missing, unused = sorted(wanted - set(state)), sorted(set(state) - wanted)
    if missing or unused:
        raise ConfigError(key, f"{path} does not fit the backbone: missing {missing[:5]}{'...' if len(missing) > 5 else ''}"
                               f", unused {unused[:5]}{'...' if len(unused) > 5 else ''}")
    backbone.load_state_dict(state, strict=False)
