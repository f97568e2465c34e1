"""Does the DALL-E-style dVAE reconstruct on the quick budget? (why Table 6's DALL-E row trains 10 epochs at 1e-3)

    python benchmarks/bench_dvae_budget.py --root WORLD                     # the settings below, ~20 minutes
    python benchmarks/bench_dvae_budget.py --root WORLD --only e10_lr1e-3   # one setting
    python benchmarks/bench_dvae_budget.py --profile smoke                  # seconds, for a check

Each setting trains the pixel dVAE through the tokenizer stage (``evilm.tokenizers.train.run``,
the profile's preset plus the setting's overrides), so what is measured is what Table 6 runs.
Printed per setting: the held-out reconstruction PSNR of its evaluation-mode codes (the
report's PSNR column), codebook usage and perplexity of the training clips' codes, the
codes->colour probe beside chance, and the wall time. Then the references on the same held-out
clips, at the dVAE's input size: one constant image (their mean), each image's own mean colour,
and the same conv encoder and decoder with no discrete bottleneck, trained for
``--autoencoder-steps`` steps of 128 images (0: skip). A dVAE under the constant image has not
learned to reconstruct; one under the mean colour does not yet say where an image's colours are.
``--root``: a generated world (default: generate the profile's world into --out).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from evilm.config import deep_update
from evilm.data import DataConfig, FrameConfig, TextTokenizer, WorldConfig, generate_world, load_benchmark
from evilm.data.frame_cache import frame_cache_dir
from evilm.tokenizers import preset_config
from evilm.tokenizers.base import Normalize
from evilm.tokenizers.clips import load_clip_bank
from evilm.tokenizers.conv import ConvDecoder, ConvEncoder
from evilm.tokenizers.pixel import DVAETokenizer
from evilm.tokenizers.train import run, split_records

# setting name -> overrides of the profile's tokenizer config (name: pixel_dvae)
SETTINGS = {
    "e1_lr2e-4": {},
    "e10_lr2e-4": {"train": {"epochs": 10}},
    "e3_lr1e-3": {"train": {"epochs": 3, "optim": {"lr": 1e-3}}},
    "e3_lr1e-3_kl0.01": {"train": {"epochs": 3, "optim": {"lr": 1e-3}}, "pixel": {"kl_weight": 0.01}},
    "e3_lr1e-3_kl0": {"train": {"epochs": 3, "optim": {"lr": 1e-3}}, "pixel": {"kl_weight": 0.0}},
    "e3_lr1e-3_64codes": {"train": {"epochs": 3, "optim": {"lr": 1e-3}}, "pixel": {"codebook_size": 64}},
    "e10_lr1e-3": {"train": {"epochs": 10, "optim": {"lr": 1e-3}}},
}


def psnr(mse: float) -> float:
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def heldout_images(profile: str, world: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(training, held-out) images as the dVAE sees them: the stage's split, evaluation frames, its input size."""
    cfg = preset_config(profile, {"name": "pixel_dvae"})
    tokenizer = DVAETokenizer(cfg)
    bench = load_benchmark(cfg.data.benchmark, world)
    words = TextTokenizer.build([r.caption for r in bench.train], 1.0, 2)
    frames = FrameConfig(num_frames=cfg.num_frames, image_size=cfg.image_size,
                         cache_dir=frame_cache_dir(cfg.data.frame_cache, world))
    data = DataConfig(frames=frames, batch_size=cfg.train.batch_size, num_workers=0, seed=cfg.train.seed)
    parts = []
    for records in split_records(bench, cfg.train):
        bank = load_clip_bank(records, words, frames, data, progress=False)
        parts.append(torch.cat([tokenizer.images(tokenizer.fit_to_grid(bank[i]["frames"][None]))
                                for i in range(len(bank))]))
    return parts[0], parts[1]


def autoencoder_psnr(profile: str, train: torch.Tensor, val: torch.Tensor, steps: int, seed: int = 0) -> float:
    """The dVAE's conv encoder and decoder with a continuous 64-channel code instead of the discrete one."""
    pix = preset_config(profile, {"name": "pixel_dvae"}).pixel
    torch.manual_seed(seed)
    normalize = Normalize()
    encoder = ConvEncoder(pix.input_stride, pix.hidden, pix.max_hidden, out_dim=pix.code_embed_dim)
    decoder = ConvDecoder(pix.input_stride, pix.hidden, pix.max_hidden, in_dim=pix.code_embed_dim)
    optimizer = torch.optim.AdamW([*encoder.parameters(), *decoder.parameters()], lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        images = train[torch.randint(0, len(train), (128,), generator=generator)]
        loss = F.mse_loss(decoder(encoder(normalize(images))), images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return psnr(float(F.mse_loss(decoder(encoder(normalize(val))), val)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", choices=["smoke", "quick"])
    parser.add_argument("--root", type=Path, help="a generated world (default: generate one into --out)")
    parser.add_argument("--out", type=Path, default=Path("bench_out/dvae_budget"))
    parser.add_argument("--only", nargs="+", choices=sorted(SETTINGS), help="run only these settings")
    parser.add_argument("--autoencoder-steps", type=int, default=600)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    world = args.root
    if world is None:
        world, _ = generate_world(WorldConfig(profile=args.profile), args.out / "world")

    print(f"{'setting':<20} {'PSNR dB':>8} {'usage %':>8} {'perplexity':>10} {'colour %':>9} {'chance':>7} {'time':>6}")
    for name in args.only or SETTINGS:
        cfg = preset_config(args.profile, deep_update({"name": "pixel_dvae"}, SETTINGS[name]))
        start = time.perf_counter()
        m = run(cfg, {"data": world}, args.out / name, progress=False).metrics
        print(f"{name:<20} {m['val_psnr']:>8.2f} {100 * m['train_eval_usage_rate']:>8.1f} "
              f"{m['train_eval_perplexity']:>10.1f} {100 * m.get('probe_colour_acc', math.nan):>9.1f} "
              f"{100 * m.get('probe_colour_chance', math.nan):>7.1f} {time.perf_counter() - start:>5.0f}s", flush=True)

    train, val = heldout_images(args.profile, world)
    print(f"\nreferences on the same {len(val)} held-out images ({tuple(val.shape[-2:])} px):")
    print(f"  one constant image (their mean)      {psnr(float((val - val.mean(0, keepdim=True)).pow(2).mean())):.2f} dB")
    print(f"  each image's own mean colour         {psnr(float((val - val.mean((2, 3), keepdim=True)).pow(2).mean())):.2f} dB")
    if args.autoencoder_steps:
        print(f"  no bottleneck, {args.autoencoder_steps} steps of 128 images  "
              f"{autoencoder_psnr(args.profile, train, val, args.autoencoder_steps):.2f} dB")


if __name__ == "__main__":
    main()
