"""Downstream tasks: open-ended QA, multiple choice, text-to-video retrieval, linear probes.

Each task ``<task>`` (a key of ``TASKS``) has a typed config in ``evilm.tasks.config`` and a stage
``evilm.tasks.<task>.run(config, inputs, out_dir, on_metrics)``; ``inputs['pretrained']`` is a
pretraining stage's ``model.pt`` (absent: from random initialisation, Table 5's "no
pretraining"). ``task_config(task, profile, overrides)`` gives the profile presets;
``evilm.tasks.finetune`` holds what the tasks share (the start model, the fine-tuning loop).

The names below are imported on first use (``evilm.lazy``): the configs read without torch.
"""

from evilm.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["PRESETS", "TASKS", "FinetuneSettings", "LinearProbeConfig", "MCConfig", "QAConfig",
                     "RetrievalConfig", "finetune_settings", "task_config"], "evilm.tasks.config"),
    **dict.fromkeys(["accuracy", "accuracy_by_type", "median_rank", "recall_at_k", "retrieval_metrics",
                     "retrieval_ranks"], "evilm.tasks.metrics"),
    "run_linear_probe": "evilm.tasks.linear_probe:run",
    "run_multiple_choice": "evilm.tasks.multiple_choice:run",
    "run_qa": "evilm.tasks.qa:run",
    "run_retrieval": "evilm.tasks.retrieval:run",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
