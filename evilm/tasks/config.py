"""The downstream tasks' typed configs and the profiles' fine-tuning presets (no torch here).

``task_config(task, profile, overrides)`` is the config a task's stage runs with: the task's own
keys (``benchmark``, ``mode``, ...) and ``train`` (``FinetuneSettings``, from the profile's
preset), then a spec's overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from evilm.config import ConfigError, from_preset, pick
from evilm.data.frame_cache import FRAME_CACHE
from evilm.models.config import SmallVideoConfig
from evilm.train.config import OptimConfig

QA_BENCHMARKS = ("msrvtt_qa", "msvd_qa", "tgif_frame")
MC_BENCHMARKS = ("msrvtt_mc", "tgif_action", "tgif_transition")
RETRIEVAL_BENCHMARKS = ("msrvtt_ret", "didemo_ret")
PROBE_BENCHMARKS = ("hmdb51", "k400")

# Retrieval's rank of a tied correct video (evilm.tasks.metrics): after every tie, before, or between.
# how retrieval ranks a tie: a random tie-break's expected credit (an indifferent model scores at chance),
# or against / for the right video
TieRule = Literal["random", "pessimistic", "optimistic"]


@dataclass
class FinetuneSettings:
    """Training settings every downstream task shares."""

    model: str = "quick"  # evilm.models preset when there is no pretrained model
    # merged into that preset, as pretrain.model_overrides is into pre-training's (set both to change the model
    # of every row of a table: the pre-trained rows take theirs from the pre-trained model file)
    model_overrides: dict[str, Any] = field(default_factory=dict)
    # "blind": the task model reads the text alone (the calibration report's video-blind floor: what the
    # questions and options give away); QA and multiple choice only
    video: Literal["frames", "blind"] = "frames"
    epochs: int = 5
    batch_size: int = 16  # items per step, over all ranks (each of W ranks takes batch_size / W)
    eval_batch_size: int = 32  # per rank (results do not depend on it)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4, weight_decay=0.01, warmup_ratio=0.1))
    augment: bool = False  # training-mode frames (random frame per segment, crop, jitter)
    cache_clips: bool = True  # without augmentation: decode each clip once and keep it in memory
    # evaluation clips decoded once for all stages into this folder (relative: under the data root); None: off
    frame_cache: str | None = None
    vocab_keep_fraction: float = 0.3  # text vocabulary without a pretrained model (as pretraining builds it)
    vocab_text: Literal["captions", "training_text"] = "captions"  # what it is built from (as pretraining)
    train_items: int = 0  # > 0: fine-tune on a seeded random subset of this many training items
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"
    device: str = "auto"
    num_workers: int = 0
    seed: int = 0
    log_every: int = 10
    progress: bool = True

    def __post_init__(self):
        if self.train_items < 0:
            raise ConfigError("train_items", f"must be >= 0, got {self.train_items}")
        for key in ("epochs", "batch_size", "eval_batch_size", "log_every"):
            if getattr(self, key) < 1:
                raise ConfigError(key, f"must be >= 1, got {getattr(self, key)}")
        if self.cache_clips and not self.augment and self.num_workers > 0:
            raise ConfigError("num_workers", "cache_clips keeps clips in this process: use num_workers=0")


@dataclass
class QAConfig:
    benchmark: str = "msrvtt_qa"
    top_k: int | None = None  # answer vocabulary size; None: the field's (1,500 / 1,000 / 1,540)
    train: FinetuneSettings = field(default_factory=FinetuneSettings)

    def __post_init__(self):
        if self.benchmark not in QA_BENCHMARKS:
            raise ConfigError("benchmark", f"'{self.benchmark}' is not an open-ended QA benchmark: {', '.join(QA_BENCHMARKS)}")


@dataclass
class MCConfig:
    benchmark: str = "msrvtt_mc"
    mode: Literal["finetune", "zero_shot"] = "finetune"
    num_options: int = 5  # options per training item made from captions (MSRVTT-MC)
    train: FinetuneSettings = field(default_factory=FinetuneSettings)

    def __post_init__(self):
        if self.benchmark not in MC_BENCHMARKS:
            raise ConfigError("benchmark", f"'{self.benchmark}' is not a multiple-choice benchmark: {', '.join(MC_BENCHMARKS)}")
        if self.num_options < 2:
            raise ConfigError("num_options", f"must be >= 2, got {self.num_options}")


@dataclass
class RetrievalConfig:
    benchmark: str = "msrvtt_ret"
    mode: Literal["finetune", "zero_shot"] = "finetune"
    embed_dim: int = 256
    temperature: float = 0.05  # initial softmax temperature of the contrastive loss (learned)
    rerank_k: int = 0  # > 0: re-order each text's top k videos with the pretrained VTM head
    ties: TieRule = "random"
    # also answer this multiple-choice benchmark with the retrieval model (the field's way for
    # MSRVTT-MC): each option's text embedding against the video's (VTM scores in zero-shot mode)
    mc_benchmark: str | None = None
    train: FinetuneSettings = field(default_factory=FinetuneSettings)

    def __post_init__(self):
        if self.benchmark not in RETRIEVAL_BENCHMARKS:
            raise ConfigError("benchmark", f"'{self.benchmark}' is not a retrieval benchmark: {', '.join(RETRIEVAL_BENCHMARKS)}")
        if self.temperature <= 0:
            raise ConfigError("temperature", f"must be > 0, got {self.temperature}")
        if self.rerank_k < 0:
            raise ConfigError("rerank_k", f"must be >= 0, got {self.rerank_k}")
        if self.mc_benchmark is not None and self.mc_benchmark not in MC_BENCHMARKS:
            raise ConfigError("mc_benchmark", f"'{self.mc_benchmark}' is not one of {', '.join(MC_BENCHMARKS)}")


@dataclass
class LinearProbeConfig:
    benchmark: str = "hmdb51"
    # "linear": the model frozen, a linear layer trained on its features (the paper's protocol);
    # "finetune": the model and the layer trained end to end on the clips' labels with ``train``'s settings
    mode: Literal["linear", "finetune"] = "linear"
    # The clip's feature from the fused video tokens: "frames", each frame's tokens averaged and the
    # frames concatenated in time order; "mean", all tokens averaged; "cls", the video-only CLS. An
    # order-free pool cannot tell an action from its time reversal (move left/right, grow/shrink,
    # enter/leave), so "frames" is the default.
    pool: Literal["frames", "mean", "cls"] = "frames"
    probe_epochs: int = 100  # passes over the stored features
    probe_batch_size: int = 64
    # no clipping: the probe is one linear layer on standardised features
    probe_optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(lr=1e-2, weight_decay=1e-4, warmup_ratio=0.0, grad_clip=0.0))
    train: FinetuneSettings = field(default_factory=FinetuneSettings)  # model, frames, device, seed, eval batch

    def __post_init__(self):
        if self.benchmark not in PROBE_BENCHMARKS:
            raise ConfigError("benchmark", f"'{self.benchmark}' is not a linear-probe benchmark: {', '.join(PROBE_BENCHMARKS)}")
        if self.probe_epochs < 1 or self.probe_batch_size < 1:
            raise ConfigError("probe_epochs", "probe_epochs and probe_batch_size must be >= 1")


@dataclass
class SupervisedConfig:
    """The supervised ceiling (``evilm.tasks.supervised``): a small video model, not E-ViLM, trained from
    scratch on ``benchmark``'s training labels alone; ``train.model`` is unused."""

    benchmark: str = "msrvtt_qa"
    model: SmallVideoConfig = field(default_factory=SmallVideoConfig)
    num_options: int = 5  # MSRVTT-MC's training items, made from retrieval captions (as MCConfig)
    train: FinetuneSettings = field(default_factory=FinetuneSettings)

    def __post_init__(self):
        known = QA_BENCHMARKS + MC_BENCHMARKS + RETRIEVAL_BENCHMARKS + PROBE_BENCHMARKS
        if self.benchmark not in known:
            raise ConfigError("benchmark", f"'{self.benchmark}' is not a downstream benchmark: {', '.join(known)}")
        if self.num_options < 2:
            raise ConfigError("num_options", f"must be >= 2, got {self.num_options}")


# A task's name is also its module's: evilm.tasks.<task>.run is its stage.
TASKS: dict[str, type] = {
    "qa": QAConfig,
    "multiple_choice": MCConfig,
    "retrieval": RetrievalConfig,
    "linear_probe": LinearProbeConfig,
}

PRESETS: dict[str, dict[str, Any]] = {
    # task-specific learning rates/epochs in the paper are not given; these follow the field's
    # usual fine-tuning (AdamW 1e-4 / 5e-5, a few epochs) with augmented frames.
    "paper": {"model": "paper", "epochs": 5, "batch_size": 32, "eval_batch_size": 64, "augment": True,
              "cache_clips": False, "num_workers": 8, "vocab_keep_fraction": 0.3, "log_every": 50},
    # a 2-core CPU: 2 epochs over every training item (300 items learned only the answer prior), fixed
    # frames decoded once, a learning rate 3x the paper-style 1e-4 for the short run; the full test splits.
    # bf16 autocast in training, as pre-training (evilm.pretrain.config); evaluation stays in full precision
    # but for the zero-shot VTM scoring of every (text, video) pair (evilm.tasks.retrieval.vtm_scores)
    "quick": {"model": "quick", "epochs": 2, "batch_size": 16, "eval_batch_size": 32, "vocab_keep_fraction": 1.0,
              "vocab_text": "training_text", "amp": "bf16",
              "frame_cache": FRAME_CACHE, "optim": {"lr": 3e-4, "weight_decay": 0.01, "warmup_ratio": 0.1}},
    "smoke": {"model": "smoke", "epochs": 1, "batch_size": 4, "eval_batch_size": 8, "vocab_keep_fraction": 1.0,
              "vocab_text": "training_text",
              "frame_cache": FRAME_CACHE,
              "log_every": 1, "optim": {"lr": 1e-3, "weight_decay": 0.01, "warmup_ratio": 0.1}},
}


def finetune_settings(profile: str, overrides: dict[str, Any] | None = None) -> FinetuneSettings:
    """The fine-tuning settings of a profile (``smoke``/``quick``/``paper``) with validated overrides."""
    return from_preset(FinetuneSettings, PRESETS, profile, overrides)


def task_config(task: str, profile: str, overrides: dict[str, Any] | None = None) -> Any:
    """The config of ``task`` with the ``profile``'s fine-tuning settings as ``train``, then ``overrides``."""
    config_class = pick(TASKS, task, "task")
    return from_preset(config_class, {name: {"train": settings} for name, settings in PRESETS.items()}, profile,
                       overrides)


# The small model trains from scratch, so each profile's budget is its own: a higher learning rate and
# more passes than fine-tuning a pre-trained E-ViLM (the stage's epochs are set per benchmark in
# ablations/base/supervised.yaml, by training-set size).
SUPERVISED_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"model": {"image_size": 224, "input_size": 112, "channels": [32, 64, 128, 256],
                        "appearance": "edgenext_small"},
              "train": {**PRESETS["paper"], "epochs": 20, "optim": {"lr": 1e-3, "weight_decay": 0.01}}},
    # full precision (amp auto is off on a CPU): the ceiling is a reference line, not E-ViLM
    "quick": {"model": {"appearance": "world_cnn_s32"}, "train": {**PRESETS["quick"], "amp": "auto", "epochs": 20, "batch_size": 32,
                                     "optim": {"lr": 2e-3, "weight_decay": 0.01, "warmup_ratio": 0.05}}},
    "smoke": {"model": {"num_frames": 2, "image_size": 64, "input_size": 32, "channels": [8, 16], "width": 32,
                        "max_text_len": 24, "appearance": "edgenext_xx_small"},
              "train": {**PRESETS["smoke"], "epochs": 2}},
}


def supervised_config(profile: str, overrides: dict[str, Any] | None = None) -> SupervisedConfig:
    """The supervised ceiling's config on ``profile``, then ``overrides``."""
    return from_preset(SupervisedConfig, SUPERVISED_PRESETS, profile, overrides)
