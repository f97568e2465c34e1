"""Video-language pre-training (MLM + VTM + MVM, paper Section 3.4) and the pre-trained model file.

- ``evilm.pretrain.config``: ``PretrainConfig`` (with ``MaskConfig``), the presets, ``pretrain_config``.
- ``evilm.pretrain.masking`` / ``evilm.pretrain.losses``: region masks and the three losses.
- ``evilm.pretrain.objectives``: the model with its heads, each step's random draws (``prepare_batch``).
- ``evilm.pretrain.loop``: the loop (``pretrain``), on ``evilm.train``'s engine.
- ``evilm.pretrain.stage``: the stage ``run(config, inputs, out_dir, on_metrics)``.
- ``evilm.pretrain.pretrained``: ``model.pt`` (``save_pretrained``, ``load_pretrained``).

The names below are imported on first use (``evilm.lazy``): the config reads without torch.
"""

from evilm.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["LOSSES", "PRESETS", "MaskConfig", "PretrainConfig", "pretrain_config"], "evilm.pretrain.config"),
    **dict.fromkeys(["IGNORE", "mlm_loss", "mvm_loss", "vtm_loss", "vtm_pairs"], "evilm.pretrain.losses"),
    **dict.fromkeys(["apply_region_mask", "block_mask", "make_mask", "random_mask", "tube_mask"],
                    "evilm.pretrain.masking"),
    **dict.fromkeys(["EViLMForPretraining", "prepare_batch"], "evilm.pretrain.objectives"),
    "pretrain": "evilm.pretrain.loop",
    "run": "evilm.pretrain.stage",
    **dict.fromkeys(["Pretrained", "load_pretrained", "save_pretrained"], "evilm.pretrain.pretrained"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
