"""E-ViLM and its baselines. ``create_model("quick")`` is the usual entry point."""

from __future__ import annotations

from typing import Any

from evilm.models.all_in_one import ALL_IN_ONE_PRESETS, AllInOne, AllInOneConfig, all_in_one_config
from evilm.models.config import (
    PRESETS,
    DecoderConfig,
    EViLMConfig,
    TextEncoderConfig,
    VideoEncoderConfig,
    preset_config,
)
from evilm.models.evilm import EViLM, FusedOutput
from evilm.models.heads import LinearProbe, MCHead, MLMHead, MVMHead, QAHead, RetrievalHead, VTMHead


def create_model(preset: str | EViLMConfig = "quick", **overrides: Any) -> EViLM:
    """An E-ViLM backbone (no heads) from a preset name or a config, with validated overrides."""
    if isinstance(preset, EViLMConfig):
        from evilm.config import merge

        return EViLM(merge(preset, overrides))
    return EViLM(preset_config(preset, overrides))


def create_baseline(name: str) -> AllInOne:
    """``all_in_one_t`` / ``all_in_one_s`` / ``all_in_one_b``."""
    return AllInOne(all_in_one_config(name))


__all__ = [
    "ALL_IN_ONE_PRESETS",
    "PRESETS",
    "AllInOne",
    "AllInOneConfig",
    "DecoderConfig",
    "EViLM",
    "EViLMConfig",
    "FusedOutput",
    "LinearProbe",
    "MCHead",
    "MLMHead",
    "MVMHead",
    "QAHead",
    "RetrievalHead",
    "TextEncoderConfig",
    "VTMHead",
    "VideoEncoderConfig",
    "create_baseline",
    "create_model",
    "preset_config",
]
