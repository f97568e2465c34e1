"""Data-parallel stages under ``torchrun``: pre-training, or a downstream task, on N processes.

torchrun starts one process per GPU (or per CPU worker) and sets RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT; this entry point reads them (the ``evilm`` library never reads the
environment), joins the process group, and every rank runs the stage (``evilm.pretrain.stage.run``,
or ``evilm.tasks.<task>.run`` for the task chosen by ``--stage``) with the same config and inputs.
See ``--help``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

USAGE = """\
Pre-train E-ViLM, or fine-tune and evaluate it on a downstream task, with data parallelism:
one process per GPU, on one or many nodes.

  # one node, 8 GPUs (NCCL):
  torchrun --nproc-per-node 8 -m experiments.torchrun_pretrain --profile paper \\
      --data /data/evilm-root --tokenizer runs/<tokenizer stage id>/tokenizer.pt --out /shared/pretrain-a

  # M nodes x N GPUs: the same command on every node (one rendezvous endpoint, one job id):
  torchrun --nnodes M --nproc-per-node N --rdzv-backend c10d --rdzv-endpoint node0:29500 \\
      --rdzv-id pretrain-a -m experiments.torchrun_pretrain --profile paper --data ... --out ...

  # then a downstream task from the pretrained model (--stage qa | multiple_choice | retrieval |
  # linear_probe; the task's keys with --set, e.g. benchmark, mode, train.epochs):
  torchrun --nproc-per-node 8 -m experiments.torchrun_pretrain --stage retrieval --profile paper \\
      --set benchmark=didemo_ret --data /data/evilm-root --pretrained /shared/pretrain-a/model.pt \\
      --out /shared/didemo-ret-a

  # two CPU processes (gloo), e.g. to try it out on the smoke world:
  torchrun --standalone --nproc-per-node 2 -m experiments.torchrun_pretrain --profile smoke \\
      --data runs/<data stage id>/<world> --tokenizer runs/<tokenizer stage id>/tokenizer.pt --out /tmp/ddp
  torchrun --standalone --nproc-per-node 2 -m experiments.torchrun_pretrain --stage qa --profile smoke \\
      --set benchmark=tgif_frame --data runs/<data stage id>/<world> --pretrained /tmp/ddp/model.pt --out /tmp/qa

  # without torchrun: one process, the same code path
  python -m experiments.torchrun_pretrain --profile smoke --data ... --tokenizer ... --out /tmp/one

The config is the profile's preset (pretraining: evilm.pretrain.config.PRESETS; a task: its
config with the profile's fine-tuning settings, evilm.tasks.config.task_config), then --config (a JSON
or YAML file of overrides, nested or dotted keys, e.g. {"mask.ratio": 0.5}), then --set.
batch_size (a task's train.batch_size) is the GLOBAL batch: each of W ranks takes batch_size / W
items (an error if it does not divide), so W ranks train on exactly what one process with
batch_size would, and the learning rate needs no rescaling when W changes. A task's evaluation
is shared out over the ranks and scored over the whole test set (retrieval ranks every text
against every test video).

Outputs (written by rank 0 only; --out must be on storage every node sees):
  pretraining:
  OUT/checkpoints/last.pt   every checkpoint_every steps and when stopped early (resumes on any W;
                            deleted once model.pt is written)
  OUT/model.pt              the pretrained backbone + heads, once the run is complete
  OUT/metrics.json          the final metrics (averaged over ranks)
  OUT/text_tokenizer.json   the text vocabulary
  a task:
  OUT/metrics.json          the test metrics (accuracy, R@k, ...) and the last epoch's training means
  OUT/per_item.json         each test item's result, once each, in the test set's order
                            (retrieval with mc_benchmark: also OUT/per_item_mc.json)
  both:
  OUT/train_log.jsonl       one line per logged step: {"step": S, "train/loss": ...} (a resumed
                            run appends: for a step logged twice, the later line counts)
  OUT/_config.json          the resolved config

Preemption: rerun the same command (or give torchrun --max-restarts K): pretraining continues
from OUT/checkpoints/last.pt, also on another number of ranks, and a checkpoint saved under other
settings is refused; --fresh ignores an existing checkpoint. A task keeps no checkpoint: it
starts over (fine-tuning is short next to pretraining).
"""

STAGES = ("pretrain", "qa", "multiple_choice", "retrieval", "linear_probe")


def dist_config_from_env(env: dict[str, str], backend: str):
    """torchrun's variables as a ``DistConfig``; no WORLD_SIZE means one process."""
    from evilm.train.distributed import DistConfig

    def number(name: str, default: int) -> int:
        value = env.get(name, "")
        if value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise SystemExit(f"error: environment variable {name}={value!r} is not an integer") from None

    world = number("WORLD_SIZE", 1)
    if world > 1:
        missing = [name for name in ("RANK", "MASTER_ADDR", "MASTER_PORT") if not env.get(name)]
        if missing:
            raise SystemExit(f"error: WORLD_SIZE={world} but {', '.join(missing)} not set: start with torchrun")
    if backend == "auto":
        import torch

        backend = "nccl" if torch.cuda.is_available() else "gloo"
    return DistConfig(
        rank=number("RANK", 0),
        world_size=world,
        backend=backend,
        init_method="env://",
        local_rank=number("LOCAL_RANK", 0),
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="torchrun ... -m experiments.torchrun_pretrain",
        description=USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--stage", choices=STAGES, default="pretrain",
                   help="pretraining (default) or a downstream task of evilm.tasks")
    p.add_argument("--profile", choices=("smoke", "quick", "paper"), default="quick",
                   help="the preset to start from (default: quick)")
    p.add_argument("--config", type=Path, metavar="FILE", help="JSON/YAML overrides of the preset")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override one key, e.g. --set max_steps=1000 (repeatable; values parse as YAML)")
    p.add_argument("--data", type=Path, required=True,
                   help="the data root: a real one, or a data stage's generated world (runs/<stage id>/<profile>-<key>)")
    p.add_argument("--tokenizer", type=Path, help="pretraining: the video tokenizer file (MVM with online targets)")
    p.add_argument("--codes", type=Path, help="pretraining: the tokenizer stage's per-clip codes (mvm_targets=cached)")
    p.add_argument("--pretrained", type=Path,
                   help="a task: the pretraining's model.pt (absent: from random initialisation)")
    p.add_argument("--text-tokenizer", type=Path, help="a text tokenizer file (default: built from the captions)")
    p.add_argument("--out", type=Path, required=True, help="the output folder, shared by every rank")
    p.add_argument("--backend", choices=("auto", "nccl", "gloo"), default="auto",
                   help="process-group backend (default: nccl with GPUs, else gloo)")
    p.add_argument("--fresh", action="store_true",
                   help="pretraining: start over even if OUT/checkpoints/last.pt exists")
    return p


def load_overrides(args: argparse.Namespace) -> dict[str, Any]:
    import yaml

    from experiments.specs import parse_sets

    overrides: dict[str, Any] = {}
    if args.config is not None:
        if not args.config.is_file():
            raise SystemExit(f"error: --config {args.config}: no such file")
        text = args.config.read_text()
        # JSON by its own parser: PyYAML reads a JSON number such as 1e-06 as a string
        loaded = json.loads(text) if args.config.suffix == ".json" else yaml.safe_load(text) or {}
        if not isinstance(loaded, dict):
            raise SystemExit(f"error: --config {args.config}: expected a mapping of config keys")
        overrides.update(loaded)
    overrides.update(parse_sets(args.sets))
    if args.stage == "pretrain":
        overrides["resume"] = not args.fresh  # a relaunched job continues where the last checkpoint left it
    return overrides


STAGE_INPUTS = {"pretrain": ("tokenizer", "codes", "text_tokenizer"), "task": ("pretrained", "text_tokenizer")}


def main(argv: list[str] | None = None, env: dict[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    dist_cfg = dist_config_from_env(dict(os.environ if env is None else env), args.backend)

    from evilm.config import ConfigError, to_dict
    from evilm.files import atomic_write_json
    from evilm.train import distributed as D

    pretraining = args.stage == "pretrain"
    names = STAGE_INPUTS["pretrain" if pretraining else "task"]
    wrong = [f"--{n.replace('_', '-')}" for n in ("tokenizer", "codes", "pretrained") if n not in names
             and getattr(args, n) is not None] + (["--fresh"] if args.fresh and not pretraining else [])
    if wrong:
        print(f"error: {', '.join(wrong)} does not apply to --stage {args.stage}", file=sys.stderr)
        return 2
    overrides = load_overrides(args)
    try:
        if pretraining:
            from evilm.pretrain.config import pretrain_config

            cfg = pretrain_config(args.profile, overrides)
            settings = cfg
            module = "evilm.pretrain.stage"
        else:
            from evilm.tasks.config import task_config

            cfg = task_config(args.stage, args.profile, overrides)
            settings = cfg.train
            module = f"evilm.tasks.{args.stage}"  # (a task's module is named after it)
        run = importlib.import_module(module).run
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if settings.device == "auto" and dist_cfg.backend == "nccl":
        settings.device = f"cuda:{dist_cfg.local_rank}"  # this process's GPU on its node
    inputs: dict[str, Any] = {"data": args.data}
    for name in names:
        if getattr(args, name) is not None:
            inputs[name] = getattr(args, name)

    D.init_distributed(dist_cfg)
    try:
        log = args.out / "train_log.jsonl"
        if D.on_main():
            args.out.mkdir(parents=True, exist_ok=True)
            resolved = {"stage": args.stage, "profile": args.profile, "world_size": dist_cfg.world_size,
                        "config": to_dict(cfg)}
            atomic_write_json(args.out / "_config.json", resolved, indent=2)

        def on_metrics(metrics: dict[str, float], step: int) -> None:  # called on rank 0 only
            with log.open("a") as f:
                f.write(json.dumps({"step": step, **metrics}) + "\n")

        result = run(cfg, inputs, args.out, on_metrics)
        if D.on_main():
            print(summary(args.stage, result.metrics, dist_cfg.world_size, args.out))
    except ConfigError as err:
        print(f"error (rank {dist_cfg.rank}): {err}", file=sys.stderr)
        return 2
    finally:
        D.shutdown()
    return 0


def summary(stage: str, metrics: dict[str, float], world: int, out: Path) -> str:
    """One line for the end of a run: pretraining's progress, or a task's test metrics."""
    if stage == "pretrain":
        done = "complete" if metrics.get("pretrain/complete") else "stopped (resumable)"
        return (f"pretraining {done} on {world} rank(s): step {int(metrics['pretrain/steps'])}/"
                f"{int(metrics['pretrain/total_steps'])}, loss {metrics.get('pretrain/loss', float('nan')):.4f}; "
                f"outputs in {out}")
    shown = {k: v for k, v in metrics.items()
             if "/train_" not in k and not k.endswith(("per_s", "seconds", "/pretrained"))}
    return f"{stage} on {world} rank(s): " + ", ".join(f"{k}={v:.4g}" for k, v in shown.items()) + f"; outputs in {out}"


if __name__ == "__main__":
    sys.exit(main())
