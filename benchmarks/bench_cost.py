"""Latency and peak memory of E-ViLM against all-in-one-T/S/B, measured in one process.

    python benchmarks/bench_cost.py [--repeats 5] [--threads N]

Batch 1, inference mode, median of repeats after one warm-up, on this machine's CPU.
Each model sees the inputs its FLOPs are quoted for (E-ViLM: 4x256², all-in-one: 3x224²,
40 text tokens). Ratios are against E-ViLM measured in the same run.
"""

from __future__ import annotations

import argparse
import platform

import torch

from evilm.profiling.cost_table import CostConfig, measure_all, ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--preset", default="paper")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = CostConfig(evilm_preset=args.preset, latency=True, latency_repeats=args.repeats, torch_crosscheck=False)
    rows = measure_all(cfg, progress=lambda key: print(f"measuring {key} ...", flush=True))
    print(f"\nCPU: {platform.processor() or platform.machine()}, torch threads: {torch.get_num_threads()}")
    print(f"{'model':<14}{'GFLOPs':>9}{'median ms':>11}{'min ms':>9}{'peak MiB':>10}{'× E-ViLM':>10}")
    base = rows["evilm"]["median_ms"]
    for row in rows.values():
        print(
            f"{row['model']:<14}{row['gflops']:>9.2f}{row['median_ms']:>11.1f}{row['min_ms']:>9.1f}"
            f"{row['peak_mib']:>10.0f}{row['median_ms'] / base:>10.2f}"
        )
    r = ratios(rows)
    print(f"\nall-in-one-B / E-ViLM latency: {r['latency_ratio_aio_b_over_evilm']:.2f}×")


if __name__ == "__main__":
    main()
