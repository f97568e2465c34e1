"""Full precision vs bf16 autocast on this CPU, side by side: what the quick profile's ``amp: bf16`` buys.

    python benchmarks/bench_amp.py [--model quick] [--reps 6] [--threads 1]

Three pieces of work at the model preset's shapes, on random inputs (no world needed):

1. one pre-training step (``evilm.pretrain``: MLM + VTM + MVM forward, backward, AdamW) on 32 clips;
2. one fine-tuning step of the fused model (forward and backward of the decoder's CLS) on 16 clips;
3. zero-shot VTM scoring of 64 (text, video) pairs from stored encoder outputs (inference only), what
   zero-shot retrieval repeats for every pair of its test set (``evilm.tasks.retrieval.vtm_scores``).

Each is timed ``--reps`` times in full precision and under bf16 autocast, the two alternating so that both
see the same machine in the same seconds; printed: the median seconds of each and bf16 / fp32. Run it
alone. bf16 is fast only where the CPU computes it natively (AVX512-BF16 or AMX); elsewhere it is emulated
and slower, and the quick profile's ``amp`` should be set to ``off``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import torch

from evilm.models import create_model
from evilm.models.heads import VTMHead
from evilm.pretrain import EViLMForPretraining
from evilm.pretrain.config import pretrain_config
from evilm.pretrain.objectives import prepare_batch

CODEBOOK = 8192  # the order of the semantic tokenizer's codebook (its size follows the world's words)


def pretrain_step(model_name: str) -> Callable[[], None]:
    backbone = create_model(model_name, text={"vocab_size": 1000}, codebook_size=CODEBOOK)
    model = EViLMForPretraining(backbone, ["mlm", "vtm", "mvm"], vtm_align=True)
    cfg = pretrain_config("quick")
    c = backbone.config
    gh, gw = backbone.video_grid(c.image_size, c.image_size)
    data = {
        "frames": torch.randn(cfg.batch_size, c.num_frames, 3, c.image_size, c.image_size),
        "input_ids": torch.randint(5, 1000, (cfg.batch_size, 20)),
        "attention_mask": torch.ones(cfg.batch_size, 20, dtype=torch.long),
        "codes": torch.randint(0, CODEBOOK, (cfg.batch_size, c.num_frames, gh, gw)),
    }
    batch = prepare_batch(data, cfg, model, torch.Generator().manual_seed(0), None, torch.device("cpu"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        loss = sum(v for k, v in model(batch).items() if not k.endswith("_acc"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def finetune_step(model_name: str) -> Callable[[], None]:
    backbone = create_model(model_name, text={"vocab_size": 1000})
    c = backbone.config
    frames = torch.randn(16, c.num_frames, 3, c.image_size, c.image_size)
    ids, mask = torch.randint(5, 1000, (16, 20)), torch.ones(16, 20, dtype=torch.long)
    optimizer = torch.optim.AdamW(backbone.parameters(), lr=1e-4)

    def step():
        video, text = backbone.encode_video(frames), backbone.encode_text(ids, mask)
        loss = backbone.fuse(video=video, text=text, text_mask=mask).cls.float().pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def vtm_scoring(model_name: str) -> Callable[[], None]:
    backbone = create_model(model_name, text={"vocab_size": 1000}).eval()
    head = VTMHead(backbone.width).eval()
    c = backbone.config
    tokens = c.num_frames * backbone.video_grid(c.image_size, c.image_size)[0] ** 2
    video, text = torch.randn(64, tokens, backbone.width), torch.randn(64, 20, backbone.width)
    mask = torch.ones(64, 20, dtype=torch.long)

    @torch.no_grad()
    def score():
        head.match_score(backbone.fuse(video=video, text=text, text_mask=mask).cls)

    return score


def timed(fn: Callable[[], None], context: Callable[[], AbstractContextManager]) -> float:
    with context():
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0


def side_by_side(works: list[tuple[str, Callable[[], None]]], a: Callable[[], AbstractContextManager],
                 b: Callable[[], AbstractContextManager], reps: int) -> None:
    """Time each work under ``a`` and ``b`` alternately (one warm-up each first); print the medians and b / a."""
    for name, fn in works:
        timed(fn, a), timed(fn, b)  # warm-up: allocations, oneDNN kernels
        times_a, times_b = [], []
        for _ in range(reps):
            times_a.append(timed(fn, a))
            times_b.append(timed(fn, b))
        ma, mb = statistics.median(times_a), statistics.median(times_b)
        print(f"{name} | {ma:.3f} | {mb:.3f} | {mb / ma:.2f}", flush=True)


def bench_args(doc: str) -> argparse.Namespace:
    """The side-by-side benchmarks' options (--model, --reps, --threads), applied to torch."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--model", default="quick", help="evilm.models preset")
    parser.add_argument("--reps", type=int, default=6, help="timed repetitions of each (after one warm-up each)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the runner's lanes use 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    return args


def main() -> None:
    args = bench_args(__doc__)
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}; {args.threads} thread(s); model {args.model}")
    print("work | fp32 s | bf16 s | bf16 / fp32")
    works = [("pre-training step, 32 clips", pretrain_step(args.model)),
             ("fine-tuning step, 16 clips", finetune_step(args.model)),
             ("zero-shot VTM scoring, 64 pairs", vtm_scoring(args.model))]
    side_by_side(works, lambda: torch.autocast("cpu", enabled=False),
                 lambda: torch.autocast("cpu", dtype=torch.bfloat16), args.reps)


if __name__ == "__main__":
    main()
