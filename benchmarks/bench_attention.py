"""The decoder's attention kernel on this CPU, side by side: PyTorch's fused (flash) kernel vs the plain
math one, under the quick profile's bf16 autocast.

    python benchmarks/bench_attention.py [--model quick] [--reps 6] [--threads 1]

The cross-modal decoder calls ``F.scaled_dot_product_attention`` on short sequences ([CLS] + up to 32 words
+ 36 video tokens on the quick profile); on a CPU PyTorch picks its fused flash kernel, whose backward pass
the profiler shows as a large share of a pre-training step. This times the pre-training step and the
fine-tuning step of ``benchmarks/bench_amp.py`` with the kernels PyTorch picks and with the math kernel
alone (``torch.nn.attention.sdpa_kernel``), alternating, and prints the medians and math / default. The
two kernels sum in different orders, so a switch changes the numbers slightly: adopting it means rerunning
the stages, not reusing them. Run it alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from bench_amp import bench_args, finetune_step, pretrain_step, side_by_side
from torch.nn.attention import SDPBackend, sdpa_kernel

DEFAULT = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]  # PyTorch's choice
MATH = [SDPBackend.MATH]


def main() -> None:
    args = bench_args(__doc__)
    print(f"{args.threads} thread(s); model {args.model}; bf16 autocast")
    print("work | default s | math s | math / default")
    works = [("pre-training step, 32 clips", pretrain_step(args.model)),
             ("fine-tuning step, 16 clips", finetune_step(args.model))]
    side_by_side(works, lambda: kernels(DEFAULT), lambda: kernels(MATH), args.reps)


@contextmanager
def kernels(backends: list[SDPBackend]) -> Iterator[None]:
    with torch.autocast("cpu", dtype=torch.bfloat16), sdpa_kernel(backends):
        yield


if __name__ == "__main__":
    main()
