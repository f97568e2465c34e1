"""Which video backbones learn from scratch on a CPU budget? (why the quick preset uses MobileNetV3)

    python benchmarks/bench_backbone_learning.py [--root WORLD] [--backbones edgenext_xx_small mobilenetv3_small_050]
                                                [--field colour] [--steps 100] [--image-size 128] [--threads 2]

Each backbone is built as E-ViLM's video encoder (``evilm.models.video_encoder``, the quick
preset with that backbone, random initialisation) and trained with a linear head on the
mean of its region features to predict one ground-truth attribute of each clip's main
object (``--field``: colour, shape, size, texture, action, num_objects) from the quick
world's WebVid clips (800 training clips, 4 evaluation-mode frames, batch 32, AdamW).
Printed every 25 steps: held-out accuracy on the WebVid validation clips beside the
majority-class rate, and the seconds spent. A backbone that stays at that rate cannot
give the pre-training losses anything to work with in a quick-profile budget.
Wall-clock figures depend on what else runs on the machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn

from evilm.data import (
    DataConfig,
    FrameConfig,
    TextTokenizer,
    WorldConfig,
    generate_world,
    load_benchmark,
    text_corpus,
)
from evilm.models.config import preset_config
from evilm.models.video_encoder import VideoEncoder
from evilm.tokenizers.clips import load_clip_bank, world_scene_labels


def train_probe(backbone: str, train, val, field: str, steps: int, lr: float, image_size: int, seed: int) -> None:
    torch.manual_seed(seed)
    frames = train.frames.shape[1]
    encoder = VideoEncoder(preset_config("quick", {"image_size": image_size, "num_frames": frames,
                                                   "video": {"backbone": backbone}}))
    labels, val_labels = train.scene[field], val.scene[field]
    head = nn.Linear(encoder.proj.out_features, int(max(labels.max(), val_labels.max())) + 1)
    optimizer = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=lr)
    majority = torch.bincount(val_labels).max().item() / len(val_labels)
    generator = torch.Generator().manual_seed(seed)

    def logits(clips: torch.Tensor) -> torch.Tensor:
        return head(encoder(clips.float() / 255).flatten(1, -2).mean(1))

    start = time.perf_counter()
    for step in range(1, steps + 1):
        index = torch.randint(0, len(labels), (32,), generator=generator)
        loss = nn.functional.cross_entropy(logits(train.frames[index]), labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 25 == 0 or step == steps:
            encoder.eval()
            with torch.no_grad():
                accuracy = (logits(val.frames).argmax(-1) == val_labels).float().mean().item()
            encoder.train()
            print(f"  {backbone:24s} step {step:4d}  loss {loss.item():.3f}  held-out {field} acc {accuracy:.3f} "
                  f"(majority {majority:.3f})  {time.perf_counter() - start:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=None, help="a generated world (default: the quick world)")
    parser.add_argument("--backbones", nargs="+", default=["edgenext_xx_small", "mobilenetv3_small_050"])
    parser.add_argument("--field", default="colour", choices=["colour", "shape", "size", "texture", "action",
                                                                "num_objects"])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    world = args.root
    if world is None:
        world, _ = generate_world(WorldConfig(profile="quick", progress=False), Path.home() / ".cache/evilm/worlds")
    bench = load_benchmark("webvid", world)
    words = TextTokenizer.build(text_corpus(world), keep_fraction=1.0)
    scenes = world_scene_labels(world)
    frames = FrameConfig(num_frames=args.frames, image_size=args.image_size)
    data = DataConfig(frames=frames, batch_size=32, num_workers=2)
    train = load_clip_bank(bench.train[:800], words, frames, data, scenes, progress=False)
    val = load_clip_bank(bench.val or bench.test, words, frames, data, scenes, progress=False)
    print(f"world {world}: {len(train.video_ids)} training / {len(val.video_ids)} held-out clips, "
          f"{args.frames} frames of {args.image_size}px, {args.threads} threads")
    for backbone in args.backbones:
        train_probe(backbone, train, val, args.field, args.steps, args.lr, args.image_size, args.seed)


if __name__ == "__main__":
    main()
