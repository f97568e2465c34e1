"""E-ViLM and the all-in-one baselines by preset name."""

from __future__ import annotations

from typing import Any

from evilm.config import merge
from evilm.models.all_in_one import AllInOne, all_in_one_config
from evilm.models.config import EViLMConfig, preset_config
from evilm.models.evilm import EViLM


def create_model(preset: str | EViLMConfig = "quick", **overrides: Any) -> EViLM:
    """An E-ViLM backbone (no heads) from a preset name or a config, with validated overrides."""
    if isinstance(preset, EViLMConfig):
        return EViLM(merge(preset, overrides))
    return EViLM(preset_config(preset, overrides))


def create_baseline(name: str) -> AllInOne:
    """``all_in_one_t`` / ``all_in_one_s`` / ``all_in_one_b``."""
    return AllInOne(all_in_one_config(name))
