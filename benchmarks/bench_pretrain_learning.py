"""Learning curves of quick pre-training candidates, side by side: which settings learn the world in minutes?

    python benchmarks/bench_pretrain_learning.py [--world DIR] [--prior FILE] [--steps 300]
        [--candidate NAME '{"vtm_align": 0.0}' ...] [--probe] [--threads 1]

Each candidate is the quick pre-training preset (``evilm.pretrain.config``, MLM + VTM, the quick model
started from the image prior) with the candidate's overrides, run by the pre-training stage itself for
``--steps`` steps. Printed for each, in one table at the end: seconds per step, the VTM loss and matching
accuracy and the MLM accuracy over the last 50 steps (MLM beside its unigram baseline: always guessing the
most frequent caption word), and with ``--probe`` the HMDB51-analogue linear probe of the pre-trained model
beside the probe of the image prior alone (no video-language pre-training). The candidates run one after
another in this process, so their seconds per step come from the same machine in the same minutes; run it
alone (other jobs on the machine slow every candidate, unevenly).

``--world``: a generated quick world (default: generated under ``--cache``, or reused from there);
``--prior``: an image-prior backbone file (default: trained under ``--cache`` on that world, or reused).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

import torch

from evilm.data import load_benchmark
from evilm.data.synthetic import WorldConfig, generate_world
from evilm.data.text import TextTokenizer
from evilm.models.config import NUM_SPECIAL_TOKENS
from evilm.pretrain.config import pretrain_config
from evilm.pretrain.stage import run as run_pretrain

DEFAULT_CANDIDATES = [
    ("paper VTM (no alignment)", {"vtm_align": 0.0}),
    ("VTM + alignment (quick)", {}),
    ("VTM + alignment, lr 2e-3", {"optim": {"lr": 2e-3}}),
    ("VTM + 3x alignment, lr 2e-3", {"vtm_align": 3.0, "optim": {"lr": 2e-3}}),
]


def world_and_prior(cache: Path, world: Path | None, prior: Path | None) -> tuple[Path, Path]:
    if world is None:
        world, _ = generate_world(WorldConfig(profile="quick"), cache / "world")
    if prior is None:
        prior = cache / "image_prior" / "backbone.pt"
        if not prior.exists():
            from evilm.priors.config import image_prior_config
            from evilm.priors.image import run as run_prior

            print("training the image prior (once, under --cache) ...", flush=True)
            prior = run_prior(image_prior_config("quick"), {"data": world}, prior.parent).artifacts["weights"]
    return world, prior


def unigram_accuracy(world: Path) -> float:
    """MLM's floor: the share of caption words that are the most frequent word."""
    captions = [r.caption for r in load_benchmark("webvid", world).train]
    tokenizer = TextTokenizer.build(captions, keep_fraction=1.0)
    ids = tokenizer.encode_batch(captions, max_len=64)["input_ids"]
    counts = Counter(t for t in ids.flatten().tolist() if t >= NUM_SPECIAL_TOKENS)
    return max(counts.values()) / sum(counts.values())


def probe(world: Path, model: Path | None, prior: Path, out: Path) -> float:
    from evilm.tasks.config import task_config
    from evilm.tasks.linear_probe import run as run_probe

    inputs = {"data": world, "video_init": prior} | ({"pretrained": model} if model else {})
    cfg = task_config("linear_probe", "quick", {"benchmark": "hmdb51", "train": {"progress": False}})
    return run_probe(cfg, inputs, out).metrics["hmdb51_probe/top1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", type=Path)
    parser.add_argument("--prior", type=Path)
    parser.add_argument("--cache", type=Path, default=Path(".bench_cache"), help="where a generated world/prior live")
    parser.add_argument("--out", type=Path, default=Path(".bench_cache/pretrain_learning"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--candidate", nargs=2, action="append", metavar=("NAME", "JSON"),
                        help="a candidate: its name and its pre-training overrides (repeatable; default: four)")
    parser.add_argument("--probe", action="store_true", help="also the HMDB51-analogue probe of each model")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    candidates = [(n, json.loads(j)) for n, j in args.candidate] if args.candidate else DEFAULT_CANDIDATES
    world, prior = world_and_prior(args.cache, args.world, args.prior)
    print(f"world {world}; prior {prior}; {args.steps} steps; {args.threads} thread(s); "
          f"load average {os.getloadavg()[0]:.1f} at start", flush=True)
    rows = []
    for i, (name, overrides) in enumerate(candidates):
        cfg = pretrain_config("quick", {"losses": ["mlm", "vtm"], "max_steps": args.steps, "log_every": 25,
                                        "progress": False, **overrides})
        seen: dict[int, dict[str, float]] = {}
        start = time.perf_counter()

        def show(metrics, step, seen=seen, name=name):
            seen[step] = metrics
            if step % 50 == 0:
                print(f"  {name} step {step}: VTM {metrics.get('train/vtm', float('nan')):.3f} "
                      f"acc {metrics.get('train/vtm_acc', float('nan')):.2f}, MLM acc "
                      f"{metrics.get('train/mlm_acc', float('nan')):.2f}", flush=True)

        result = run_pretrain(cfg, {"data": world, "video_init": prior}, args.out / str(i), on_metrics=show)
        seconds = time.perf_counter() - start
        last = [m for s, m in sorted(seen.items()) if s > args.steps - 50 and "train/vtm" in m]
        mean = {k: sum(m[f"train/{k}"] for m in last) / len(last) for k in ("vtm", "vtm_acc", "mlm_acc")}
        row = {"candidate": name, "s/step": seconds / args.steps, **mean}
        if args.probe:
            row["HMDB51 probe"] = probe(world, result.artifacts["model"], prior, args.out / f"{i}_probe")
        rows.append(row)
    print(f"\nlast 50 of {args.steps} steps (MLM's unigram baseline: {unigram_accuracy(world):.1%}; VTM chance: "
          f"loss ln 2 = 0.693, accuracy 50%)")
    if args.probe:
        print(f"HMDB51-analogue probe of the image prior alone: {probe(world, None, prior, args.out / 'prior_probe'):.1f}%")
    header = list(rows[0])
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()))


if __name__ == "__main__":
    main()
