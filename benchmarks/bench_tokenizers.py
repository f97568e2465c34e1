"""Train the four video tokenizers of Table 6 on the generated world and compare them.

    python benchmarks/bench_tokenizers.py                       # quick world, the four tokenizers
    python benchmarks/bench_tokenizers.py --ablation reseed     # + each VQ tokenizer with dead-code re-seeding
    python benchmarks/bench_tokenizers.py --profile smoke       # seconds, for a check

Each tokenizer goes through the tokenizer stage (``evilm.tokenizers.train.run``)
with the profile's preset, so what is measured is what the suite runs. Printed per
tokenizer: codebook usage (the paper's VOC. RATE) and perplexity of the
evaluation-mode codes, over the training clips and over the held-out clips; the
semantic probes (naive Bayes on each clip's bag of codes -> the main object's
attributes and action, and the caption words; held-out accuracy / mAP beside
chance); and wall time. An ``untrained`` row gives the same measures for a
randomly initialised semantic tokenizer, as a floor.

Held-out clips: the stage measures on WebVid's val split (100 clips on
``quick``); the table measures on that split plus every MSRVTT video of the
world (500 clips on ``quick``), which no tokenizer trains on, so that the
probes are less noisy and held-out usage is not capped by the number of regions
(100 clips x 4 x 4 x 4 regions = 6,400 < 9,420 codes). The probes learn from the
tokenizer's cached codes of its training clips.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from evilm.config import deep_update
from evilm.data.synthetic import WorldConfig, generate_world
from evilm.tokenizers import preset_config
from evilm.tokenizers.train import run

PROBE_FIELDS = ("colour", "shape", "size", "texture", "action", "num_objects")
ABLATIONS = {"reseed": {"quantizer": {"reseed_dead": True}}, "ema": {"quantizer": {"ema": True}}}
# Table 6's tokenizers: a row name -> the tokenizer config keys that make it
ROWS = {
    "semantic_focal": {"name": "semantic", "semantic": {"word_loss": "focal"}},
    "semantic_bce": {"name": "semantic", "semantic": {"word_loss": "bce"}},
    "pixel_dvae": {"name": "pixel_dvae"},
    "perceptual_vq": {"name": "perceptual_vq"},
}
VQ_NAMES = ("semantic_focal", "semantic_bce", "perceptual_vq")  # the dVAE has no codebook to re-seed


def untrained_row(profile: str, world: Path, out_dir: Path, overrides: dict) -> dict[str, float]:
    """The stage's measures for a randomly initialised semantic tokenizer (no training step)."""
    cfg = preset_config(profile, deep_update({"name": "semantic", "train": {"optim": {"lr": 1e-30}}}, overrides))
    # lr = 1e-30 for one epoch: the stage's own code path, with weights that do not move in float32.
    return run(cfg, {"data": world}, out_dir, progress=False).metrics


def heldout_clips(world: Path, words_path: Path, profile: str) -> tuple[dict, list[str]]:
    """Clips of the world that no tokenizer trains on (WebVid val + every MSRVTT video), decoded once.

    The stage's own held-out set is WebVid's val split (100 clips on ``quick``); these
    extra clips make usage and the probes less noisy. Returns the bank and its captions.
    """
    from evilm.data import DataConfig, FrameConfig, TextTokenizer, load_benchmark
    from evilm.tokenizers.clips import load_clip_bank, world_scene_labels

    cfg = preset_config(profile)
    records = list(load_benchmark("webvid", world).val)
    seen = set()
    msrvtt = load_benchmark("msrvtt_ret", world)
    for record in msrvtt.train + msrvtt.test:  # one caption per video
        if record.video_id not in seen:
            seen.add(record.video_id)
            records.append(record)
    words = TextTokenizer.load(words_path)
    frames = FrameConfig(num_frames=cfg.num_frames, image_size=cfg.image_size)
    bank = load_clip_bank(records, words, frames, DataConfig(frames=frames, batch_size=32), world_scene_labels(world),
                          description="decoding held-out clips")
    return bank, [r.caption for r in records]


def heldout_metrics(row_dir: Path, world: Path, bank) -> dict[str, float]:
    """Usage and probes of a trained tokenizer on ``bank``; the probes learn from its cached training codes."""
    from evilm.data import TextTokenizer, load_benchmark
    from evilm.tokenizers import CachedCodes, codebook_usage, load_tokenizer
    from evilm.tokenizers.clips import world_scene_labels
    from evilm.tokenizers.probe import semantic_probe

    tokenizer = load_tokenizer(row_dir / "tokenizer.pt")
    cached = CachedCodes(row_dir / "codes.pt")
    words = TextTokenizer.load(row_dir / "words.json")
    train = [r for r in load_benchmark("webvid", world).train if r.video_id in cached]
    scenes = world_scene_labels(world)
    with torch.no_grad():
        test_codes = torch.cat([tokenizer.encode(bank.frames[i : i + 64].float() / 255)
                                for i in range(0, len(bank), 64)])
    train_codes = cached.lookup([r.video_id for r in train])
    fields = list(bank.scene)
    probes = semantic_probe(
        train_codes, test_codes, tokenizer.codebook_size,
        {f: [str(scenes[r.video_id][f]) for r in train] for f in fields},
        {f: [str(int(x)) for x in bank.scene[f]] for f in fields},
        words.word_targets([r.caption for r in train]), bank.word_targets,
    )
    usage = codebook_usage(test_codes, tokenizer.codebook_size)
    return {"heldout_clips": float(len(bank)), **{f"heldout_{k}": v for k, v in usage.items()},
            **{f"heldout_{k}": v for k, v in probes.items()}}


def format_table(rows: dict[str, dict[str, float]]) -> str:
    def get(m: dict, key: str) -> float:
        return m.get(f"heldout_{key}", m.get(key, float("nan")))

    head = (
        f"{'tokenizer':<24}{'VOC.RATE train':>15}{'VOC.RATE held':>14}{'ppl train':>10}{'ppl held':>9}"
        + "".join(f"{f[:8]:>9}" for f in PROBE_FIELDS)
        + f"{'words':>9}{'train s':>9}{'total s':>9}"
    )
    lines = [head, "-" * len(head)]
    chance = next(iter(rows.values()))
    lines.append(
        f"{'(chance)':<24}{'':>15}{'':>14}{'':>10}{'':>9}"
        + "".join(f"{get(chance, f'probe_{f}_chance'):>9.3f}" for f in PROBE_FIELDS)
        + f"{get(chance, 'probe_words_chance'):>9.3f}"
    )
    for name, m in rows.items():
        lines.append(
            f"{name:<24}{m['train_eval_usage_rate']:>15.1%}{get(m, 'usage_rate'):>14.1%}"
            f"{m['train_eval_perplexity']:>10.1f}{get(m, 'perplexity'):>9.1f}"
            + "".join(f"{get(m, f'probe_{f}_acc'):>9.3f}" for f in PROBE_FIELDS)
            + f"{get(m, 'probe_words_map'):>9.3f}"
            + f"{m.get('train_seconds', float('nan')):>9.0f}{m['total_seconds']:>9.0f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", choices=["smoke", "quick"])
    parser.add_argument("--world-root", default="/tmp/evilm_worlds", help="where generated worlds are kept/reused")
    parser.add_argument("--out", default="/tmp/bench_tokenizers")
    parser.add_argument("--names", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--ablation", nargs="*", default=[], choices=list(ABLATIONS))
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-untrained", action="store_true", help="skip the untrained reference row")
    parser.add_argument("--fresh", action="store_true", help="retrain rows saved by an earlier run")
    parser.add_argument("--ablations-only", action="store_true", help="train only the --ablation rows")
    parser.add_argument("--no-heldout", action="store_true", help="skip the larger held-out evaluation")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    world, info = generate_world(WorldConfig(profile=args.profile, progress=True), args.world_root)
    print(f"world: {world} ({info['clips']} clips, {'reused' if info['reused'] else 'generated'})")
    overrides: dict = {"train": {"epochs": args.epochs}} if args.epochs else {}
    out = Path(args.out) / args.profile

    plan = [] if args.ablations_only else [(name, name, overrides) for name in args.names]
    for ablation in args.ablation:
        plan += [(f"{name}+{ablation}", name, deep_update(overrides, ABLATIONS[ablation]))
                 for name in args.names if name in VQ_NAMES]
    # Each finished row is saved at once; a rerun with the same settings skips it (--fresh: redo all).
    results = out / "results.json"
    settings = {"profile": args.profile, "world": str(world), "overrides": overrides}
    saved = json.loads(results.read_text()) if results.is_file() and not args.fresh else {}
    if saved.get("settings") != settings:
        saved = {"settings": settings, "rows": {}}
    rows: dict[str, dict[str, float]] = saved["rows"]

    def keep(label: str, metrics: dict[str, float]) -> None:
        rows[label] = metrics
        out.mkdir(parents=True, exist_ok=True)
        tmp = results.with_name(results.name + ".tmp")
        tmp.write_text(json.dumps(saved, indent=1))
        tmp.replace(results)

    for label, name, extra in plan:
        if label in rows:
            print(f"=== {label}: done before, in {results}")
            continue
        cfg = preset_config(args.profile, deep_update(ROWS[name], extra))
        print(f"\n=== {label}: {cfg.quantizer.codebook_size} codes, {cfg.train.epochs} epochs, "
              f"{cfg.image_size}px x {cfg.num_frames} frames, stride {cfg.stride}")
        start = time.perf_counter()
        result = run(cfg, {"data": world}, out / label.replace("+", "_"), progress=True)
        keep(label, {**result.metrics, "total_seconds": time.perf_counter() - start})
    if not args.no_untrained and "untrained (random init)" not in rows:
        start = time.perf_counter()
        metrics = untrained_row(args.profile, world, out / "untrained", deep_update(overrides, {"train": {"epochs": 1}}))
        keep("untrained (random init)", {**metrics, "train_seconds": float("nan"),
                                         "total_seconds": time.perf_counter() - start})
    labels = [label for label, _, _ in plan] + ["untrained (random init)"]
    if args.ablations_only:
        labels = [label for label in rows if label not in labels] + labels
    rows = {label: rows[label] for label in labels if label in rows}
    if not args.no_heldout:
        dirs = {label: out / ("untrained" if label.startswith("untrained") else label.replace("+", "_"))
                for label in rows}
        bank = None
        for label, row in rows.items():
            if "heldout_usage_rate" in row:
                continue
            if bank is None:
                bank, _ = heldout_clips(world, dirs[label] / "words.json", args.profile)
            row.update(heldout_metrics(dirs[label], world, bank))
            keep(label, row)
    held = next(iter(rows.values())).get("heldout_clips")
    where = f"{int(held)} held-out clips (WebVid val + MSRVTT videos)" if held else "the stage's validation clips"
    print(f"\nTokenizers on the {args.profile} world ({results}). VOC.RATE = codes used at least once "
          f"(evaluation mode) over the training clips / over {where}; "
          f"probes on {where}: accuracy (words: mAP) of naive Bayes on each clip's bag of codes")
    print(format_table(rows))


if __name__ == "__main__":
    main()
