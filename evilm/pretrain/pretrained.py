"""A pre-trained model as one file (``model.pt``): what pre-training leaves and the tasks start from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from evilm.config import from_dict, to_dict
from evilm.files import atomic_torch_save
from evilm.models.config import EViLMConfig
from evilm.models.evilm import EViLM
from evilm.pretrain.objectives import EViLMForPretraining

FORMAT = "evilm-pretrained/1"


def save_pretrained(path: str | Path, model: EViLMForPretraining, meta: dict[str, Any] | None = None) -> Path:
    """Backbone config + weights + pretraining heads, loadable with ``weights_only=True``."""
    state = {
        "format": FORMAT,
        "model_config": to_dict(model.backbone.config),
        "backbone": model.backbone.state_dict(),
        "heads": {name: head.state_dict() for name, head in model.heads().items()},
        "meta": json.dumps(meta or {}),
    }
    return atomic_torch_save(state, path)


@dataclass
class Pretrained:
    backbone: EViLM
    heads: dict[str, dict[str, torch.Tensor]]  # head name -> state dict
    meta: dict[str, Any]


def load_pretrained(path: str | Path) -> Pretrained:
    """The backbone (weights loaded) and the heads' state dicts of a ``model.pt``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained model not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: not a readable model file ({err})") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not an evilm pretrained model (format {FORMAT})")
    backbone = EViLM(from_dict(EViLMConfig, state["model_config"], path="model_config"))
    backbone.load_state_dict(state["backbone"])
    return Pretrained(backbone=backbone, heads=state["heads"], meta=json.loads(state["meta"]))
