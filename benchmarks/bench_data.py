"""Data throughput: generating the world, loading clips (decord vs PyAV), and data wait in training.

    python benchmarks/bench_data.py [--root DIR] [--profile quick] [--clips 384] [--steps 20]
    python benchmarks/bench_data.py --generation-only   # the world's generation time alone (target: <= 3 min)

1. Generation: the world is generated under ``--root`` (default: a fresh temporary
   directory, so the timing is a real generation), then asked for again to time reuse.
2. Loading: clips/s through ``make_loader`` (training sampling and augmentation,
   4 frames at 128², batch 32, 2 workers), decord against PyAV in the same run,
   plus each backend's single-process decode latency.
3. Data wait: a training loop with the ``quick`` E-ViLM (MLM + VTM step: one pass
   on masked text, one on clean pairs and mismatched pairs, backward, AdamW) fed by
   the default loader (2 workers); prints the fraction of each step spent waiting
   for the next batch. The step leaves out MVM's tokenizer forward, so a full
   pretraining step is longer and its wait fraction is at most this one.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from evilm.data.catalog import load_benchmark, text_corpus
from evilm.data.datasets import DataConfig, build_dataset, make_loader
from evilm.data.synthetic import WorldConfig, generate_world
from evilm.data.text import TextTokenizer, mask_tokens
from evilm.data.video import FrameConfig, read_frames


def bench_generation(root: Path, profile: str, workers: int) -> Path:
    config = WorldConfig(profile=profile, workers=workers)
    start = time.perf_counter()
    world, info = generate_world(config, root)
    elapsed = time.perf_counter() - start
    if info["reused"]:
        print(f"generation: {world} already complete ({info['clips']} clips); reused in {elapsed:.3f} s")
        return world
    print(f"generation: {info['clips']} clips ({config.frames} frames, {config.size}x{config.size}, H.264) "
          f"in {info['seconds']:.1f} s with {workers} workers -> {info['clips'] / info['render_seconds']:.1f} clips/s "
          f"(render+encode), {info['clips'] / info['seconds']:.1f} clips/s overall")
    size_mb = sum(p.stat().st_size for p in world.rglob("*") if p.is_file()) / 2**20
    print(f"  on disk: {size_mb:.0f} MiB")
    start = time.perf_counter()
    _, again = generate_world(config, root)
    print(f"  second call: reused={again['reused']} in {time.perf_counter() - start:.3f} s")
    return world


def bench_loading(world: Path, tokenizer: TextTokenizer, clips: int) -> None:
    records = load_benchmark("webvid", world).train[:clips]
    print(f"\nloading: {len(records)} WebVid-style clips, training sampling (4 frames, 128², crop + jitter)")
    for backend in ("decord", "pyav"):
        frames = FrameConfig(num_frames=4, image_size=128, backend=backend)
        start = time.perf_counter()
        for r in records[:64]:
            read_frames(r.video_path, 4, train=True, rng=np.random.default_rng(0), backend=backend)
        latency = (time.perf_counter() - start) / 64 * 1000
        ds = build_dataset("video_text", records, tokenizer, frames, train=True)
        for workers in (0, 2):
            loader = make_loader(ds, DataConfig(frames=frames, batch_size=32, num_workers=workers))
            start = time.perf_counter()
            n = sum(len(b["index"]) for b in loader)
            rate = n / (time.perf_counter() - start)
            print(f"  {backend:<7} workers={workers}: {rate:7.1f} clips/s   (decode alone: {latency:.1f} ms/clip)")


def bench_data_wait(world: Path, tokenizer: TextTokenizer, steps: int, batch_size: int) -> None:
    try:
        from evilm.models import MLMHead, VTMHead, create_model
    except ImportError as err:
        print(f"\ndata wait: skipped, the model package is not importable ({err})")
        return
    torch.manual_seed(0)
    model = create_model("quick", text={"vocab_size": tokenizer.vocab_size})
    cfg = model.config
    mlm, vtm = MLMHead(model.width, tokenizer.vocab_size), VTMHead(model.width)
    params = [*model.parameters(), *mlm.parameters(), *vtm.parameters()]
    optim = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
    frames = FrameConfig(num_frames=cfg.num_frames, image_size=cfg.image_size)
    data = DataConfig(frames=frames, batch_size=batch_size, num_workers=2, max_text_len=cfg.max_text_len)
    records = load_benchmark("webvid", world).train
    loader = make_loader(build_dataset("video_text", records, tokenizer, frames, train=True), data, drop_last=True)
    generator = torch.Generator().manual_seed(0)
    print(f"\ndata wait: quick E-ViLM ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M params, "
          f"{cfg.num_frames}x{cfg.image_size}²), batch {batch_size}, loader with 2 workers, "
          f"torch threads {torch.get_num_threads()}")
    waits, computes = [], []
    it = iter(loader)
    for step in range(steps + 1):
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        t1 = time.perf_counter()
        ids, mask = batch["input_ids"], batch["attention_mask"]
        masked, labels = mask_tokens(ids, mask, tokenizer.vocab_size, generator=generator)
        out = model(batch["frames"], masked, mask)
        loss_mlm = F.cross_entropy(mlm(out.text).flatten(0, 1), labels.flatten(), ignore_index=-100)
        shuffled = torch.roll(torch.arange(len(ids)), 1)
        pos = model(batch["frames"], ids, mask).cls
        neg = model(batch["frames"], ids[shuffled], mask[shuffled]).cls
        logits = vtm(torch.cat([pos, neg]))
        target = torch.cat([torch.ones(len(ids)), torch.zeros(len(ids))]).long()
        loss = loss_mlm + F.cross_entropy(logits, target)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        t2 = time.perf_counter()
        if step > 0:  # step 0 includes the workers' start
            waits.append(t1 - t0)
            computes.append(t2 - t1)
    wait, compute = sum(waits), sum(computes)
    print(f"  {steps} steps: compute {compute / steps:.2f} s/step, waiting for data {wait / steps:.3f} s/step")
    print(f"  fraction of the step spent waiting for data: {wait / (wait + compute):.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="world cache root (default: a fresh temp dir)")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clips", type=int, default=384)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="torch threads in the training process")
    parser.add_argument("--generation-only", action="store_true", help="time generating the world, nothing else")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory() as tmp:
        world = bench_generation(args.root or Path(tmp), args.profile, args.workers)
        if args.generation_only:
            return
        corpus = text_corpus(world, ["webvid", "msrvtt_qa", "tgif_action", "tgif_transition", "tgif_frame"])
        tokenizer = TextTokenizer.build(corpus, keep_fraction=0.5)
        bench_loading(world, tokenizer, args.clips)
        bench_data_wait(world, tokenizer, args.steps, args.batch_size)


if __name__ == "__main__":
    main()
