"""Table 5 on the ``quick`` profile: which pretraining losses help downstream, over several seeds.

    python benchmarks/table5_quick.py [--out DIR] [--seeds 0 1 2] [--pretrain-steps 40] [--ft-items 400] [--ft-epochs 2]

Rows (as the paper's Table 5): no pretraining; VTM; VTM + MLM; VTM + MLM + MVM.
Each row (per seed) pretrains the ``quick`` E-ViLM on the generated world's WebVid
clips, then fine-tunes and evaluates
- text-to-video retrieval on MSRVTT (1k-A-style test split of the world, 100 videos):
  unimodal encoding, contrastive fine-tuning; R@1/5/10, median rank (pessimistic ties);
- multiple choice on MSRVTT-MC with the retrieval-fine-tuned model (the field's way);
- open-ended QA on MSRVTT-QA: a classifier over the answers; accuracy.
MVM targets come from a semantic VQ tokenizer (focal loss, the ``quick`` preset,
by default with dead-code re-seeding) trained once (seed 0) by the tokenizer stage;
its per-clip codes are read from its cache (the pretraining frames are the fixed
evaluation-mode frames it labelled).

Budgets are far below the paper's (20 epochs on 2.5M clips): the defaults are
chosen so that one row of one seed takes minutes on a 2-core CPU. Every stage's
output is kept under ``--out``; a finished stage (its ``result.json``) is reused
when the script is run again, so an interrupted run continues where it stopped.
The table printed at the end is mean +- sample std over the seeds, then each seed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from pathlib import Path

from evilm.config import to_dict
from evilm.data import WorldConfig, generate_world

ROWS = {
    "none": [],
    "vtm": ["vtm"],
    "vtm+mlm": ["vtm", "mlm"],
    "vtm+mlm+mvm": ["vtm", "mlm", "mvm"],
}
COLUMNS = [
    ("msrvtt_ret/R@1", "R@1"), ("msrvtt_ret/R@5", "R@5"), ("msrvtt_ret/R@10", "R@10"), ("msrvtt_ret/MdR", "MdR"),
    ("msrvtt_qa/acc", "QA"), ("msrvtt_ret/msrvtt_mc_acc", "MC"),
]


def stage(out: Path, name: str, fn, *args) -> dict:
    """Run ``fn(*args, out_dir)`` once; its metrics, artifacts and seconds are kept in ``result.json``."""
    done = out / name / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    start = time.perf_counter()
    result = fn(*args, out / name)
    record = {"metrics": result.metrics, "artifacts": {k: str(v) for k, v in result.artifacts.items()},
              "seconds": time.perf_counter() - start}
    tmp = done.with_name("result.json.tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(done)
    print(f"  {name}: {record['seconds']:.0f} s", flush=True)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/table5_quick"))
    parser.add_argument("--world-root", type=Path, default=Path.home() / ".cache/evilm/worlds")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--pretrain-steps", type=int, default=40, help="optimizer steps of 16 clips")
    parser.add_argument("--ft-items", type=int, default=400, help="training items per downstream task")
    parser.add_argument("--ft-epochs", type=int, default=2)
    parser.add_argument("--tokenizer-set", default='{"quantizer": {"reseed_dead": true}}',
                        help="JSON overrides of the tokenizer's quick preset (default: dead-code re-seeding, "
                             "because the plain preset's codebook collapsed to a handful of codes here)")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()

    from evilm.pretrain.config import pretrain_config
    from evilm.pretrain.stage import run as run_pretrain
    from evilm.tasks import task_config
    from evilm.tasks.qa import run as run_qa
    from evilm.tasks.retrieval import run as run_retrieval
    from evilm.tokenizers import preset_config as tokenizer_preset
    from evilm.tokenizers.train import run as run_tokenizer

    args.out.mkdir(parents=True, exist_ok=True)
    world, _ = generate_world(WorldConfig(profile="quick", progress=args.progress), args.world_root)
    print(f"world: {world}", flush=True)
    tokenizer_cfg = tokenizer_preset("quick", json.loads(args.tokenizer_set))
    key = hashlib.sha256(json.dumps(to_dict(tokenizer_cfg), sort_keys=True).encode()).hexdigest()[:10]
    tok = stage(args.out, f"tokenizer-{key}", lambda out: run_tokenizer(tokenizer_cfg, {"data": world}, out,
                                                                          progress=args.progress))
    usage = {k: tok["metrics"][k] for k in ("train_eval_codes_used", "train_eval_perplexity") if k in tok["metrics"]}
    print(f"tokenizer: {usage}", flush=True)
    # runs of other budgets live apart, so a reused stage always had these settings
    budget = args.out / f"steps{args.pretrain_steps}-items{args.ft_items}-epochs{args.ft_epochs}-tok{key}"
    settings = {"train": {"epochs": args.ft_epochs, "train_items": args.ft_items, "progress": args.progress}}
    results: dict[str, dict[int, dict]] = {row: {} for row in args.rows}
    seconds: dict[str, list[float]] = {row: [] for row in args.rows}
    for seed in args.seeds:
        for row in args.rows:
            losses = ROWS[row]
            name = f"seed{seed}/{row}"
            print(f"{name}", flush=True)
            spent = 0.0
            inputs = {"data": world}
            if losses:
                cfg = pretrain_config("quick", {"losses": losses, "seed": seed, "max_steps": args.pretrain_steps,
                                                "progress": args.progress, "mvm_targets": "cached"})
                pre = stage(budget, f"{name}/pretrain",
                            lambda out, cfg=cfg: run_pretrain(cfg, {"data": world, "codes": tok["artifacts"]["codes"]}, out))
                inputs["pretrained"] = pre["artifacts"]["model"]
                spent += pre["seconds"]
            metrics = {}
            for task, fn, extra in (("retrieval", run_retrieval, {"mc_benchmark": "msrvtt_mc"}), ("qa", run_qa, {})):
                cfg = task_config(task, "quick", {**extra, **settings, "train": {**settings["train"], "seed": seed}})
                done = stage(budget, f"{name}/{task}", lambda out, cfg=cfg, fn=fn, inputs=inputs: fn(cfg, inputs, out))
                metrics.update(done["metrics"])
                spent += done["seconds"]
            results[row][seed] = metrics
            seconds[row].append(spent)
    (budget / "table5.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                      "tokenizer_config": to_dict(tokenizer_cfg),
                                                      "tokenizer_metrics": tok["metrics"],
                                                      "results": results, "seconds": seconds}, indent=1))
    print_table(results, seconds, args)


def print_table(results: dict, seconds: dict, args) -> None:
    header = f"{'row':14s}" + "".join(f"{label:>14s}" for _, label in COLUMNS) + f"{'min/seed':>10s}"
    print(f"\nTable 5 (quick): mean +- std over seeds {args.seeds}; pretraining {args.pretrain_steps} steps x 16 "
          f"clips; fine-tuning {args.ft_epochs} epochs x {args.ft_items} items")
    print(header)
    for row, by_seed in results.items():
        cells = []
        for key, _ in COLUMNS:
            values = [m[key] for m in by_seed.values() if key in m]
            if not values:
                cells.append(f"{'-':>14s}")
                continue
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):8.1f} +-{sd:4.1f}")
        minutes = statistics.mean(seconds[row]) / 60 if seconds[row] else float("nan")
        print(f"{row:14s}" + "".join(cells) + f"{minutes:10.1f}")
    print("\nper seed:")
    for row, by_seed in results.items():
        for seed, m in by_seed.items():
            print(f"  {row:14s} seed {seed}: " + ", ".join(f"{label} {m[key]:.1f}" for key, label in COLUMNS if key in m))


if __name__ == "__main__":
    main()
