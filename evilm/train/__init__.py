"""The generic training engine every stage's loop shares (nothing here knows a model or a task).

- ``evilm.train.engine``: ``Engine`` (the optimizer step: AMP scaling, clipping, stepping, the
  schedule), ``check_finite``, ``RunningMeans``.
- ``evilm.train.optim`` / ``evilm.train.config``: AdamW and its warm-up + decay schedule, ``OptimConfig``.
- ``evilm.train.runtime``: the device, autocast, the seeded data order, ``NonFiniteLossError``.
- ``evilm.train.distributed``: every ``torch.distributed`` helper (DDP, collectives, sharding).
- ``evilm.train.checkpoint``: checkpoints that resume exactly, derived seeds.
- ``evilm.train.progress``: the progress bar.

Pre-training is ``evilm.pretrain``, fine-tuning ``evilm.tasks``, tokenizer training ``evilm.tokenizers.train``.
The names below are imported on first use (``evilm.lazy``).
"""

from evilm.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["derived_seed", "generator_for", "load_checkpoint", "restore", "save_checkpoint"],
                    "evilm.train.checkpoint"),
    "OptimConfig": "evilm.train.config",
    **dict.fromkeys(["Engine", "RunningMeans", "check_finite"], "evilm.train.engine"),
    **dict.fromkeys(["create_optimizer", "create_scheduler", "lr_factor"], "evilm.train.optim"),
    "ProgressBar": "evilm.train.progress",
    **dict.fromkeys(["EpochBatchSampler", "NonFiniteLossError", "autocast_dtype", "mixed_precision", "resolve_device"],
                    "evilm.train.runtime"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
