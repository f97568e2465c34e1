"""E-ViLM and its baselines. ``create_model("quick")`` is the usual entry point.

The names below are imported on first use (``evilm.lazy``): ``evilm.models.config`` reads
without torch or timm.
"""

from evilm.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["ALL_IN_ONE_PRESETS", "AllInOne", "AllInOneConfig", "all_in_one_config"],
                    "evilm.models.all_in_one"),
    **dict.fromkeys(["PRESETS", "DecoderConfig", "EViLMConfig", "TextEncoderConfig", "VideoEncoderConfig",
                     "preset_config"], "evilm.models.config"),
    **dict.fromkeys(["EViLM", "FusedOutput"], "evilm.models.evilm"),
    **dict.fromkeys(["create_baseline", "create_model"], "evilm.models.factory"),
    **dict.fromkeys(["LinearProbe", "MCHead", "MLMHead", "MVMHead", "QAHead", "RetrievalHead", "VTMHead"],
                    "evilm.models.heads"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
