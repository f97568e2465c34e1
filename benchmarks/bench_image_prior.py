"""What does the image prior (the ImageNet analogue) learn, from which frames and with which loss?

    python benchmarks/bench_image_prior.py --root WORLD                    # the three settings, ~35 minutes
    python benchmarks/bench_image_prior.py --root WORLD --only rendered    # the quick preset alone
    python benchmarks/bench_image_prior.py --profile smoke --steps 40      # seconds, for a check

Settings, each the profile's ``ImagePriorConfig`` (backbone, steps, batch, learning rate) trained
through ``evilm.priors.image.train``:

- ``clips, averaged``: the decoded frames of the pre-training corpus's training clips, the presence
  terms averaged over the 24 attribute values (the loss before this benchmark);
- ``clips, summed``: the same frames, each value's presence term summed (``FrameClassifier.loss``);
- ``rendered, summed``: the frames of ``rendered_scenes`` freshly drawn scenes (the quick preset).

Printed at each quarter of the run: per attribute, how often the top-scoring value is one the frame
shows, on the corpus's validation clips (decoded; never trained on) and on 800 of the setting's own
training frames (how much it memorises), beside the majority rule on the validation frames; and
the seconds so far. A setting whose training accuracy runs far ahead of its validation accuracy
memorises its frames instead of learning the attribute.
``--root``: a generated world (default: generate the profile's world into --out).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from evilm.data import WorldConfig, generate_world, load_benchmark
from evilm.data.synthetic import load_scenes
from evilm.priors import image
from evilm.priors.config import image_prior_config
from evilm.train.checkpoint import derived_seed, generator_for
from evilm.train.engine import Engine


class AveragedLoss(image.FrameClassifier):
    """The presence terms averaged over the attribute values (the count's term then weighs 24 times one value's)."""

    def loss(self, images, presence, count):
        logits = self(images)
        return (F.binary_cross_entropy_with_logits(logits[:, : self.num_presence], presence)
                + F.cross_entropy(logits[:, self.num_presence :], count))


SETTINGS = {"clips_averaged": ("clips", AveragedLoss), "clips_summed": ("clips", image.FrameClassifier),
            "rendered": ("rendered", image.FrameClassifier)}


def majority(presence: torch.Tensor) -> dict[str, float]:
    """Per attribute, the accuracy of always naming its most frequent value."""
    out, start = {}, 0
    for name, values in image.ATTRIBUTES.items():
        out[name] = 100.0 * presence[:, start : start + len(values)].mean(0).max().item()
        start += len(values)
    return out


def fmt(accuracy: dict[str, float]) -> str:
    return " ".join(f"{k} {v:5.1f}" for k, v in accuracy.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", choices=["smoke", "quick"])
    parser.add_argument("--root", type=Path, help="a generated world (default: generate the profile's)")
    parser.add_argument("--out", type=Path, default=Path.home() / ".cache/evilm/worlds")
    parser.add_argument("--only", nargs="+", choices=list(SETTINGS), help="these settings (default: all)")
    parser.add_argument("--steps", type=int, help="optimizer steps (default: the preset's)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = args.root or generate_world(WorldConfig(profile=args.profile), args.out)[0]
    overrides = {"progress": False, **({"steps": args.steps} if args.steps else {})}
    config = image_prior_config(args.profile, overrides)
    bench, scenes = load_benchmark(config.data.benchmark, root), load_scenes(root)
    val = image.labelled_frames(bench.val, config, root, scenes, "")
    print(f"world {root}; {config.backbone}, {config.steps} steps of {config.batch_size} frames, lr {config.optim.lr}; "
          f"validation: {len(val[0])} frames of {len(bench.val)} clips")
    print(f"{'majority rule':>30} | val {fmt(majority(val[1]))}  count {100 * val[2].bincount().max() / len(val[2]):.1f}")
    data: dict[str, tuple] = {}
    for name in args.only or list(SETTINGS):
        source, model_class = SETTINGS[name]
        if source not in data:
            start = time.perf_counter()
            data[source] = (image.rendered_frames(config, root) if source == "rendered" else
                            image.labelled_frames(bench.train, config, root, scenes, ""))
            print(f"{name}: {len(data[source][0])} training frames ({source}) in {time.perf_counter() - start:.0f} s")
        images, presence, count = data[source]
        torch.manual_seed(derived_seed(config.seed, "image prior init"))
        model = model_class(config.backbone)
        engine = Engine(model, config.optim, config.steps)
        generator = generator_for(config.seed, "image prior batches")
        start = time.perf_counter()
        for step in range(1, config.steps + 1):
            engine.zero_grad()
            rows = torch.randint(len(images), (config.batch_size,), generator=generator)
            engine.backward(model.loss(images[rows], presence[rows], count[rows]))
            engine.step()
            if step % max(1, config.steps // 4) == 0 or step == config.steps:
                seen = image.attribute_accuracy(model, images[:800], presence[:800], count[:800])
                print(f"{name:>16} step {step:5d} {time.perf_counter() - start:5.0f} s | "
                      f"val {fmt(image.attribute_accuracy(model, *val))} | train {fmt(seen)}", flush=True)


if __name__ == "__main__":
    main()
