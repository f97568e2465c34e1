"""Training and retrieval-evaluation throughput of E-ViLM on this machine.

    python benchmarks/bench_train.py [--root WORLD] [--models quick paper] [--steps 6] [--paper-steps 3]
                                     [--image-sizes 128]

1. Pretraining throughput (clips/s) of one full step (MLM + VTM + MVM: masked pass,
   clean pass on matched and mismatched pairs, backward, clipping, AdamW), through
   ``evilm.pretrain.loop.pretrain`` on the generated world's WebVid clips, and the
   fraction of step time spent waiting for data, in three data settings:
   - ``fixed, cold``: evaluation-mode frames decoded in the training process (the
     ``quick`` preset's first epoch);
   - ``fixed, cached``: the same frames already in memory (``CachedClips``; every later epoch);
   - ``augmented, 2 workers``: training-mode frames (random frame per segment, crop,
     jitter) decoded by 2 worker processes (the ``paper`` preset's way, on 2 cores).
   MVM targets are per-clip codes given with the batch (the "cached" route of the
   tokenizer stage), so the step times the E-ViLM step alone; the first step of
   each run (allocation, warm-up) is left out of the figures. ``--image-sizes``
   times the quick model's cached-frames step again at other frame sizes, as a
   ratio to its own size's step timed in the same run.
2. Retrieval evaluation: test videos and texts encoded per second (unimodal, each
   once, batch 32) and the time of a 1,000 x 1,000 ranking (one matrix product of
   256-d embeddings, then ranks with the pessimistic tie rule and R@1/5/10/MdR).
3. The backbones' memory layout: one forward + backward of each model's timm
   backbone in NCHW and in NHWC (channels-last, what ``evilm.models`` uses).

Wall-clock figures depend on what else runs on the machine; the CPU seconds per
clip of the training process (all its threads, every step) are printed beside them.
Without ``--root`` the ``quick`` world is generated (or reused) under
``~/.cache/evilm/worlds``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import zlib
from pathlib import Path

import torch

from evilm.data import TextTokenizer, WorldConfig, build_dataset, generate_world, load_benchmark, text_corpus
from evilm.data.loading import BatchCollator, CachedClips, frame_config
from evilm.models import create_model
from evilm.pretrain import EViLMForPretraining, PretrainConfig, pretrain
from evilm.tasks.metrics import retrieval_metrics, retrieval_ranks
from evilm.tasks.retrieval import RetrievalModel
from evilm.train.config import OptimConfig

BATCH = {"quick": 16, "paper": 8}


class RandomCodes:
    """Per-clip MVM targets (as ``CachedCodes.lookup``), fixed per video id."""

    def __init__(self, codebook_size: int, grid: tuple[int, int, int]):
        self.codebook_size, self.grid, self.table = codebook_size, grid, {}

    def lookup(self, video_ids):
        for vid in video_ids:
            if vid not in self.table:
                g = torch.Generator().manual_seed(zlib.crc32(vid.encode()))
                self.table[vid] = torch.randint(0, self.codebook_size, self.grid, generator=g)
        return torch.stack([self.table[v] for v in video_ids])


def time_pretraining(size: str, world: Path, tokenizer: TextTokenizer, steps: int, setting: str,
                     image_size: int | None = None) -> dict[str, float]:
    torch.manual_seed(0)
    extra = {} if image_size is None else {"image_size": image_size}
    backbone = create_model(size, text={"vocab_size": tokenizer.vocab_size}, **extra)
    cfg_model = backbone.config
    model = EViLMForPretraining(backbone, ["mlm", "vtm", "mvm"])
    batch = BATCH[size]
    records = load_benchmark("webvid", world).train[: batch * (steps + 1)]
    augment = setting.startswith("augmented")
    dataset = build_dataset("video_text", records, tokenizer, frame_config(cfg_model), train=augment,
                            max_text_len=cfg_model.max_text_len)
    workers = 2 if augment else 0
    if not augment:
        dataset = CachedClips(dataset)
        if setting == "fixed, cached":
            for i in range(len(dataset)):  # decode everything before timing
                dataset[i]
    grid = (cfg_model.num_frames, *backbone.video_grid(cfg_model.image_size, cfg_model.image_size))
    codes = RandomCodes(cfg_model.codebook_size, grid)
    cfg = PretrainConfig(model=size, batch_size=batch, max_steps=steps + 1, log_every=1, progress=False,
                         device="cpu", num_workers=workers, optim=OptimConfig(lr=1e-4))
    seen = []
    cpu = time.process_time()  # this process's CPU time, all threads (not the data workers)
    with tempfile.TemporaryDirectory() as out:
        pretrain(cfg, model, dataset, out, collate_fn=BatchCollator(dataset, codes),
                 on_metrics=lambda m, s: seen.append(m))
    cpu = time.process_time() - cpu
    timed = seen[1:]  # leave out the first step
    seconds = [batch / m["train/clips_per_s"] for m in timed]
    data = [m["train/data_fraction"] * t for m, t in zip(timed, seconds)]
    return {"clips_per_s": batch * len(timed) / sum(seconds), "step_s": sum(seconds) / len(timed),
            "data_fraction": sum(data) / sum(seconds), "cpu_s_per_clip": cpu / (batch * len(seen))}


@torch.no_grad()
def time_retrieval_encoding(size: str, world: Path, tokenizer: TextTokenizer) -> dict[str, float]:
    torch.manual_seed(0)
    model = RetrievalModel(create_model(size, text={"vocab_size": tokenizer.vocab_size}), 256, 0.05).eval()
    cfg = model.backbone.config
    records = load_benchmark("msrvtt_ret", world).test[:32]
    dataset = build_dataset("video_text", records, tokenizer, frame_config(cfg), train=False,
                            max_text_len=cfg.max_text_len)
    batch = dataset.collate([dataset[i] for i in range(len(records))])
    out = {}
    for name, fn in (("videos", lambda: model.embed_videos(batch["frames"])),
                     ("texts", lambda: model.embed_texts(batch["input_ids"], batch["attention_mask"]))):
        fn()  # warm-up
        start = time.perf_counter()
        reps = 3
        for _ in range(reps):
            fn()
        out[f"{name}_per_s"] = reps * len(records) / (time.perf_counter() - start)
    return out


def time_ranking(n: int = 1000, dim: int = 256) -> dict[str, float]:
    g = torch.Generator().manual_seed(0)
    videos = torch.nn.functional.normalize(torch.randn(n, dim, generator=g), dim=-1)
    texts = torch.nn.functional.normalize(videos + 0.5 * torch.randn(n, dim, generator=g), dim=-1)
    start = time.perf_counter()
    similarity = texts @ videos.t()
    product = time.perf_counter() - start
    ranks = retrieval_ranks(similarity, ties="pessimistic")
    metrics = retrieval_metrics(ranks)
    total = time.perf_counter() - start
    return {"product_s": product, "total_s": total, "R@1": metrics["R@1"]}


def time_backbone_layouts(name: str, image_size: int, frames: int = 64, reps: int = 5) -> dict[str, float]:
    """Seconds of one forward + backward of a timm backbone over ``frames`` images, NCHW against NHWC."""
    import timm

    out = {}
    for layout, fmt in (("NCHW", torch.contiguous_format), ("NHWC", torch.channels_last)):
        torch.manual_seed(0)
        net = timm.create_model(name, pretrained=False, num_classes=0).to(memory_format=fmt)
        x = torch.randn(frames, 3, image_size, image_size).contiguous(memory_format=fmt)
        net.forward_features(x).sum().backward()  # warm-up
        start = time.perf_counter()
        for _ in range(reps):
            net.forward_features(x).sum().backward()
        out[layout] = (time.perf_counter() - start) / reps
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=None, help="a generated world (default: the quick world)")
    parser.add_argument("--models", nargs="+", default=["quick", "paper"], choices=list(BATCH))
    parser.add_argument("--steps", type=int, default=6, help="timed steps per quick run (plus one warm-up)")
    parser.add_argument("--paper-steps", type=int, default=3, help="timed steps per paper-size run")
    parser.add_argument("--image-sizes", type=int, nargs="*", default=[128],
                        help="also time the quick model's cached-frames step at these frame sizes")
    args = parser.parse_args()

    world = args.root
    if world is None:
        world, _ = generate_world(WorldConfig(profile="quick", progress=False), Path.home() / ".cache/evilm/worlds")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; world {world}")
    tokenizer = TextTokenizer.build(text_corpus(world), keep_fraction=1.0)

    print("\n1. pretraining step (MLM + VTM + MVM), clips/s and data-wait fraction")
    for size in args.models:
        steps = args.steps if size == "quick" else args.paper_steps
        cfg = create_model(size).config
        print(f"  {size}: {cfg.video.backbone}, {cfg.num_frames} frames of {cfg.image_size}px, "
              f"decoder {cfg.decoder.width}x{cfg.decoder.depth}, batch {BATCH[size]}, {steps} timed steps")
        for setting in ("fixed, cold", "fixed, cached", "augmented, 2 workers"):
            r = time_pretraining(size, world, tokenizer, steps, setting)
            print(f"    {setting:22s} {r['clips_per_s']:7.2f} clips/s  {r['step_s']:6.2f} s/step  "
                  f"data {100 * r['data_fraction']:5.1f}% of step time  "
                  f"({r['cpu_s_per_clip']:.2f} CPU-s per clip in the training process, all steps)")
        if size == "quick":
            base = time_pretraining(size, world, tokenizer, steps, "fixed, cached")["step_s"]
            for image_size in args.image_sizes:
                r = time_pretraining(size, world, tokenizer, steps, "fixed, cached", image_size)
                print(f"    fixed, cached, {image_size}px {r['clips_per_s']:7.2f} clips/s  {r['step_s']:6.2f} s/step  "
                      f"({r['step_s'] / base:.2f}x the {cfg.image_size}px step, timed again in this run)")

    print("\n2. retrieval evaluation")
    for size in args.models:
        r = time_retrieval_encoding(size, world, tokenizer)
        print(f"  {size}: {r['videos_per_s']:.1f} videos/s, {r['texts_per_s']:.1f} texts/s encoded (batch 32)")
    r = time_ranking()
    print(f"  1000 x 1000 ranking: {1000 * r['product_s']:.1f} ms matrix product, {1000 * r['total_s']:.1f} ms "
          f"with ranks and R@k/MdR (noisy-copy embeddings: R@1 {r['R@1']:.1f})")

    print("\n3. backbone memory layout: forward + backward over 64 frames (the backbones run NHWC)")
    for size in args.models:
        cfg = create_model(size).config
        r = time_backbone_layouts(cfg.video.backbone, cfg.image_size, frames=64 if size == "quick" else 8)
        print(f"  {size}: {cfg.video.backbone} at {cfg.image_size}px: NCHW {1000 * r['NCHW']:.0f} ms, "
              f"NHWC {1000 * r['NHWC']:.0f} ms ({r['NHWC'] / r['NCHW']:.2f}x)")


if __name__ == "__main__":
    main()
