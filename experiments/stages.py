"""The stage kinds the runner knows: what to call, with which config, fed by what.

This is the one place where ``experiments`` is wired to ``evilm``. A stage kind
names its ``run`` function and config dataclass by import path (imported only
when used, so a table that needs no training never imports the trainers), the
inputs it consumes (each an upstream kind and which of its artifacts to pass)
and a code version. Bump ``version`` when a change in the stage's code changes
its results: every stage identity downstream changes with it, so nothing stale
is reused.

How the runner runs a kind: each stage in a worker process with a fixed number of
torch threads, which is part of the identity of a ``threaded`` kind (torch's CPU
kernels sum in another order with another thread count). An ``exclusive`` kind
parallelises itself (its own process pool): it runs alone, with every core. A
kind that reads files the runner does not make (a real data root) names a
``fingerprint`` of them, part of its identity, and a ``check`` that ``--dry-run``
prints; the generated world's fingerprint is its content key (generator version, pool sizes).
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
    # its numbers can depend on torch's thread count: the count is part of its identity
    threaded: bool = True
    # it parallelises itself (a process pool): it runs alone, with every core
    exclusive: bool = False
    # "module:function" (config -> str): a hash of the files outside the runs folder that it reads
    fingerprint: str | Callable | None = None
    # "module:function" (config -> list of DataCheck): what ``--dry-run`` checks before anything runs
    check: str | Callable | None = None

    def load_run(self) -> Callable:
        return load_target(self.run)

    def load_config(self) -> type:
        return load_target(self.config)

    def defaults(self, profile: str) -> dict[str, Any]:
        """The config the profile starts from: the preset's, or the dataclass defaults."""
        if self.preset is None:
            return {}
        from evilm.config import to_dict

        return to_dict(load_target(self.preset)(profile))

    def content_fingerprint(self, config: Any) -> str | None:
        return None if self.fingerprint is None else str(load_target(self.fingerprint)(config))

    def run_checks(self, config: Any) -> list[DataCheck]:
        return [] if self.check is None else list(load_target(self.check)(config))

    def available(self) -> str | None:
        """``None`` when the stage's code imports, else why not."""
        try:
            self.load_run()
            self.load_config()
        except (ImportError, AttributeError) as err:
            return f"{type(err).__name__}: {err}"
        return None


def load_target(target: Any) -> Any:
    """``"module:attr"`` imported, or ``target`` itself when it is not a string."""
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class DataCheck:
    """One benchmark (or other input) checked by ``--dry-run``: usable or not, and a readable summary."""

    name: str
    ok: bool
    summary: str
    counts: dict[str, int] = field(default_factory=dict)  # records per split, when it loaded


@dataclass
class DataRootConfig:
    """A real data root laid out for ``evilm.data.load_benchmark`` (the paper profile's data)."""

    root: str = "data/real"
    benchmarks: list[str] = field(default_factory=lambda: ["webvid"])  # each must load
    sample: int = 20  # videos per split that --dry-run and the stage look for


def _data_root_path(config: DataRootConfig):
    from pathlib import Path

    return Path(config.root).expanduser().resolve()


def data_root_fingerprint(config: DataRootConfig) -> str:
    """A hash of the root's annotation files (paths, sizes, contents): files changed under the root
    give the stage, and everything downstream of it, another identity."""
    from evilm.data.catalog import annotation_fingerprint

    return annotation_fingerprint(config.benchmarks, _data_root_path(config))


def check_data_root(config: DataRootConfig) -> list[DataCheck]:
    """Each benchmark under the root: its annotations parse and a seeded sample of its videos exists."""
    from evilm.data.catalog import check_benchmark

    root = _data_root_path(config)
    if not root.is_dir():
        return [DataCheck(name, False, f"{name}: the data root {root} does not exist") for name in config.benchmarks]
    checks = []
    for name in config.benchmarks:
        found = check_benchmark(name, root, sample=config.sample)
        checks.append(DataCheck(name, found.ok, found.summary(), dict(found.counts)))
    return checks


def data_root(config: DataRootConfig, inputs, out_dir, on_metrics=None):
    """Stage: check that the benchmarks under ``config.root`` load (as ``--dry-run`` does); artifact
    ``world`` is the root. The root is read in place (nothing is copied or logged): its annotation
    files' fingerprint is part of the identity."""
    from evilm.stage import StageResult, report

    checks = check_data_root(config)
    bad = [c for c in checks if not c.ok]
    if bad:
        raise RuntimeError("the data root does not load:\n" + "\n".join(c.summary for c in bad))
    metrics = {f"{c.name}.{split}": float(n) for c in checks for split, n in c.counts.items()}
    report(on_metrics, metrics, 0)
    return StageResult(metrics=metrics, artifacts={"world": _data_root_path(config)})


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
            # version 2: ``{model}.latency_ms`` is the fastest faithful inference path (``latency_path``)
            version="2",
        ),
        # The generated video world: every benchmark's annotations and clips in their own formats.
        StageKind(
            "data",
            run="evilm.data.synthetic:run",
            config="evilm.data.synthetic:WorldConfig",
            version="1",
            ignore=("workers", "progress", "cache_root"),
            # the generator's version and the profile's pool sizes decide the world too, and no config
            # field holds them: a new generator is a new world, and everything downstream reruns
            fingerprint="evilm.data.synthetic:world_key",
            log_artifacts=False,
            threaded=False,  # deterministic whatever the threads (evilm/data/world_video.py)
            exclusive=True,  # renders clips in its own process pool
        ),
        # A real data root, read in place (the paper profile).
        StageKind(
            "data_root",
            run=data_root,
            config=DataRootConfig,
            version="2",
            seed_key="",
            ignore=("sample",),
            threaded=False,
            fingerprint=data_root_fingerprint,
            check=check_data_root,
        ),
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
                  log_artifacts=False, threaded=False),
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
        # The calibration report's supervised ceiling: a small video model trained on one benchmark's
        # labels alone (metrics named as the task stages name them).
        StageKind(
            "supervised",
            run="evilm.tasks.supervised:run",
            config="evilm.tasks.config:SupervisedConfig",
            inputs={"data": Input(_DATA_KINDS, artifact="world"), "video_init": _VIDEO_INIT},
            version="2",  # 2: multiple choice also matches each option, read alone, against the clip
            seed_key="train.seed",
            preset="evilm.tasks.config:supervised_config",
            ignore=_TASK_IGNORE,
        ),
    ]
}
