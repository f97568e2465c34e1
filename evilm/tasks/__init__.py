"""Downstream tasks: open-ended QA, multiple choice, text-to-video retrieval, linear probes.

Each module has a typed config and a stage ``run(config, inputs, out_dir, on_metrics)``;
``inputs['pretrained']`` is a pretraining stage's ``model.pt`` (absent: from random
initialisation, Table 5's "no pretraining"). ``STAGES`` maps a task name to its config
class and stage; ``task_config(task, profile, overrides)`` gives the profile presets.
"""

from evilm.tasks.common import FinetuneSettings, finetune_settings
from evilm.tasks.linear_probe import LinearProbeConfig
from evilm.tasks.linear_probe import run as run_linear_probe
from evilm.tasks.metrics import (
    accuracy,
    accuracy_by_type,
    median_rank,
    recall_at_k,
    retrieval_metrics,
    retrieval_ranks,
)
from evilm.tasks.multiple_choice import MCConfig
from evilm.tasks.multiple_choice import run as run_multiple_choice
from evilm.tasks.qa import QAConfig
from evilm.tasks.qa import run as run_qa
from evilm.tasks.retrieval import RetrievalConfig
from evilm.tasks.retrieval import run as run_retrieval

STAGES = {
    "qa": (QAConfig, run_qa),
    "multiple_choice": (MCConfig, run_multiple_choice),
    "retrieval": (RetrievalConfig, run_retrieval),
    "linear_probe": (LinearProbeConfig, run_linear_probe),
}


def task_config(task: str, profile: str, overrides: dict | None = None):
    """The config of ``task`` with the ``profile``'s fine-tuning settings, then ``overrides``."""
    from evilm.config import ConfigError, close_match, deep_update, from_dict, to_dict

    if task not in STAGES:
        raise ConfigError("task", f"unknown task '{task}'{close_match(task, STAGES)}; known: {', '.join(STAGES)}")
    cls = STAGES[task][0]
    base = {"train": to_dict(finetune_settings(profile))}
    return from_dict(cls, deep_update(base, overrides or {}))


__all__ = [
    "STAGES", "FinetuneSettings", "LinearProbeConfig", "MCConfig", "QAConfig", "RetrievalConfig", "accuracy",
    "accuracy_by_type", "finetune_settings", "median_rank", "recall_at_k", "retrieval_metrics", "retrieval_ranks",
    "run_linear_probe", "run_multiple_choice", "run_qa", "run_retrieval", "task_config",
]
