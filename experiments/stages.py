"""The stage kinds the runner knows: what to call, with which config, fed by what.

This is the one place where ``experiments`` is wired to ``evilm``. A stage kind
names its ``run`` function and config dataclass by import path (imported only
when used, so a table that needs no training never imports the trainers), the
inputs it consumes (each an upstream kind and which of its artifacts to pass)
and a code version. Bump ``version`` when a change in the stage's code changes
its results: every stage identity downstream changes with it, so nothing stale
is reused.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Input:
    """One input of a stage: which upstream kinds may feed it and what is passed.

    ``artifact`` names an entry of the upstream ``StageResult.artifacts``; the
    stage receives that path. ``None`` passes the upstream's whole output folder.
    """

    kinds: tuple[str, ...]
    artifact: str | None = None
    required: bool = True


@dataclass(frozen=True)
class StageKind:
    name: str
    run: str | Callable  # "module:function", or the function itself (tests)
    config: str | type  # "module:Class", or the dataclass itself
    inputs: dict[str, Input] = field(default_factory=dict)
    version: str = "1"
    seed_key: str = "seed"  # dotted config key that receives the experiment seed
    # "module:function" (profile -> config dataclass): the profile's defaults, before the spec's keys
    preset: str | Callable | None = None
    # dotted config keys that do not change results (workers, progress bars): left out of the identity
    ignore: tuple[str, ...] = ()
    # log the artifacts to MLflow; False for big outputs the identity regenerates exactly (the world)
    log_artifacts: bool = True

    def load_run(self) -> Callable:
        return _load(self.run)

    def load_config(self) -> type:
        return _load(self.config)

    def defaults(self, profile: str) -> dict[str, Any]:
        """The config the profile starts from: the preset's, or the dataclass defaults."""
        if self.preset is None:
            return {}
        from evilm.config import to_dict

        return to_dict(_load(self.preset)(profile))

    def available(self) -> str | None:
        """``None`` when the stage's code imports, else why not."""
        try:
            self.load_run()
            self.load_config()
        except (ImportError, AttributeError) as err:
            return f"{type(err).__name__}: {err}"
        return None


def _load(target: Any) -> Any:
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass
class DataRootConfig:
    """A real data root laid out for ``evilm.data.load_benchmark`` (the paper profile's data)."""

    root: str = "data/real"
    benchmarks: list[str] = field(default_factory=lambda: ["webvid"])  # each must load


def data_root(config: DataRootConfig, inputs, out_dir, on_metrics=None):
    """Stage: check that the benchmarks under ``config.root`` load; artifact ``world`` is the root.

    The root is read in place (nothing is copied or logged): its path is part of the identity.
    """
    from pathlib import Path

    from evilm.data import load_benchmark
    from evilm.stage import StageResult, report

    root = Path(config.root).expanduser().resolve()
    metrics = {}
    for name in config.benchmarks:
        bench = load_benchmark(name, root)
        for split in ("train", "val", "test"):
            metrics[f"{name}.{split}"] = float(len(bench.split(split)))
    report(on_metrics, metrics, 0)
    return StageResult(metrics=metrics, artifacts={"world": root})


@dataclass
class WeightsFileConfig:
    """Released weights as a local file: ImageNet EdgeNeXt-small, OpenCLIP ViT-B/32, ..."""

    path: str = ""
    what: str = "weights"  # named in the error when the file is missing


def weights_file(config: WeightsFileConfig, inputs, out_dir, on_metrics=None):
    """Stage: check that ``config.path`` exists; artifact ``weights`` is the file, read in place."""
    from pathlib import Path

    from evilm.config import ConfigError
    from evilm.stage import StageResult

    path = Path(config.path).expanduser().resolve()
    if not path.is_file():
        raise ConfigError("path", f"{config.what} not found: {path} (nothing is downloaded; put the file there "
                                  "or point --set <stage>.path=... at it)")
    return StageResult(metrics={"bytes": float(path.stat().st_size)}, artifacts={"weights": path})


def _task_preset(task: str) -> Callable:
    """The profile's fine-tuning settings for a downstream task (``evilm.tasks.config.task_config``)."""

    def preset(profile: str):
        from evilm.tasks.config import task_config

        return task_config(task, profile)

    return preset


# The per-frame backbone E-ViLM's video encoder starts from: the image prior (the ImageNet analogue)
# or, on the paper profile, a local ImageNet checkpoint; absent, random initialisation.
_VIDEO_INIT = Input(("image_prior", "weights_file"), artifact="weights", required=False)
_TASK_INPUTS = {
    "data": Input(("data", "data_root"), artifact="world"),
    # absent: the task starts from the video_init backbone and otherwise random weights (Table 5's first row)
    "pretrained": Input(("pretrain",), artifact="model", required=False),
    "video_init": _VIDEO_INIT,
}
_TASK_IGNORE = ("train.progress", "train.num_workers", "train.log_every", "train.eval_batch_size", "train.frame_cache")
_DATA_KINDS = ("data", "data_root")

STAGE_KINDS: dict[str, StageKind] = {
    kind.name: kind
    for kind in [
        # Parameters / FLOPs / latency of every model in Table 1: no data, no training.
        StageKind(
            "cost",
            run="evilm.profiling.cost_table:run",
            config="evilm.profiling.cost_table:CostConfig",
            version="1",
        ),
        # The generated video world: every benchmark's annotations and clips in their own formats.
        StageKind(
            "data",
            run="evilm.data.synthetic:run",
            config="evilm.data.synthetic:WorldConfig",
            version="1",
            ignore=("workers", "progress", "cache_root"),
            log_artifacts=False,
        ),
        # A real data root, read in place (the paper profile).
        StageKind("data_root", run=data_root, config=DataRootConfig, version="1", seed_key="", ignore=()),
        # What the paper's models start from, trained on the generated world (quick, smoke): the ImageNet
        # analogue (a frame classifier of the world's objects) and the CLIP analogue (frames matched to
        # captions). Each saves a per-frame backbone (artifact "weights").
        StageKind(
            "image_prior",
            run="evilm.priors.image:run",
            config="evilm.priors.config:ImagePriorConfig",
            inputs={"data": Input(_DATA_KINDS, artifact="world")},
            version="1",
            preset="evilm.priors.config:image_prior_config",
            ignore=("progress", "data.frame_cache"),
        ),
        StageKind(
            "clip_prior",
            run="evilm.priors.clip:run",
            config="evilm.priors.config:ClipPriorConfig",
            inputs={"data": Input(_DATA_KINDS, artifact="world")},
            version="1",
            preset="evilm.priors.config:clip_prior_config",
            ignore=("progress", "data.frame_cache"),
        ),
        # ... and on the paper profile, the released weights as local files (never downloaded).
        StageKind("weights_file", run=weights_file, config=WeightsFileConfig, version="1", seed_key="",
                  log_artifacts=False),
        # A video tokenizer (semantic VQ with focal/BCE loss, pixel dVAE, perceptual VQ), and the
        # codes of every clip for cached MVM targets. Its pretrained parts come from weights files
        # (evilm.tokenizers.pretrained), each used when the tokenizer's config asks for it:
        # encoder_init starts the semantic encoder (the CLIP analogue; a CLIP file on paper),
        # perceptual_features is the perceptual loss network (the image analogue; VGG-16 on paper).
        # version 4: pretrained parts from inputs, strictly loaded; the dVAE's 8,192 codes and
        # annealing; reconstruction PSNR; the CLIP-layout ViT
        StageKind(
            "tokenizer",
            run="evilm.tokenizers.train:run",
            config="evilm.tokenizers.config:TokenizerConfig",
            inputs={
                "data": Input(_DATA_KINDS, artifact="world"),
                "encoder_init": Input(("image_prior", "clip_prior", "weights_file"), artifact="weights", required=False),
                "perceptual_features": Input(("image_prior", "clip_prior", "weights_file"), artifact="weights",
                                             required=False),
            },
            version="4",
            seed_key="train.seed",
            preset="evilm.tokenizers.config:preset_config",
            ignore=("data.num_workers", "data.frame_cache"),
        ),
        # VL pre-training (MLM + VTM + MVM); MVM needs the tokenizer (online) or its codes (cached).
        StageKind(
            "pretrain",
            run="evilm.pretrain.stage:run",
            config="evilm.pretrain.config:PretrainConfig",
            inputs={
                "data": Input(_DATA_KINDS, artifact="world"),
                "tokenizer": Input(("tokenizer",), artifact="tokenizer", required=False),
                "codes": Input(("tokenizer",), artifact="codes", required=False),
                "video_init": _VIDEO_INIT,
            },
            version="3",
            preset="evilm.pretrain.config:pretrain_config",
            # resume/checkpoint_every: how, not what (a resumed run continues in the same out_dir)
            ignore=("progress", "num_workers", "log_every", "resume", "checkpoint_every", "frame_cache"),
        ),
        # Downstream tasks: metrics "<benchmark>[_zs]/acc", "<benchmark>[_zs]/R@k", "<benchmark>_probe/top1".
        *[
            StageKind(
                task,
                run=f"evilm.tasks.{module}:run",
                config=f"evilm.tasks.config:{config}",
                inputs=_TASK_INPUTS,
                version="3",
                seed_key="train.seed",
                preset=_task_preset(task),
                ignore=_TASK_IGNORE,
            )
            for task, module, config in [
                ("qa", "qa", "QAConfig"),
                ("multiple_choice", "multiple_choice", "MCConfig"),
                ("retrieval", "retrieval", "RetrievalConfig"),
                ("linear_probe", "linear_probe", "LinearProbeConfig"),
            ]
        ],
    ]
}
