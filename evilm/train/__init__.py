"""Video-language pretraining (MLM + VTM + MVM), region masking, checkpoints with exact resume.

``run(config, inputs, out_dir, on_metrics)`` is the pretraining stage; ``pretrain`` the loop
it calls; ``pretrain_config(profile, overrides)`` the ``smoke``/``quick``/``paper`` presets.
"""

from evilm.train.checkpoint import derived_seed, generator_for, load_checkpoint, save_checkpoint
from evilm.train.losses import mlm_loss, mvm_loss, vtm_loss, vtm_pairs
from evilm.train.masking import MaskConfig, apply_region_mask, block_mask, make_mask, random_mask, tube_mask
from evilm.train.optim import OptimConfig, create_optimizer, create_scheduler, lr_factor
from evilm.train.pretrain import (
    PRESETS,
    EViLMForPretraining,
    NonFiniteLossError,
    PretrainConfig,
    Pretrained,
    load_pretrained,
    pretrain,
    pretrain_config,
    run,
    save_pretrained,
)

__all__ = [
    "PRESETS", "EViLMForPretraining", "MaskConfig", "NonFiniteLossError", "OptimConfig", "PretrainConfig",
    "Pretrained", "apply_region_mask", "block_mask", "create_optimizer", "create_scheduler", "derived_seed",
    "generator_for", "load_checkpoint", "load_pretrained", "lr_factor", "make_mask", "mlm_loss", "mvm_loss",
    "pretrain", "pretrain_config", "random_mask", "run", "save_checkpoint", "save_pretrained", "tube_mask",
    "vtm_loss", "vtm_pairs",
]
