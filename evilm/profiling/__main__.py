"""``python -m evilm.profiling``: print Table 1's cost columns, paper beside measured."""

from __future__ import annotations

import argparse

from rich.console import Console

from evilm.profiling.cost_table import CostConfig, markdown, measure_all


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evilm.profiling",
        description="Parameters and GFLOPs of E-ViLM and all-in-one-T/S/B (Table 1's cost columns), "
        "measured with fvcore (one multiply-add = one FLOP) beside the paper's figures.",
    )
    parser.add_argument("--preset", default="paper", help="E-ViLM preset: paper (default), quick or smoke")
    parser.add_argument("--latency", action="store_true", help="also measure CPU latency (batch 1) and peak memory")
    parser.add_argument("--no-torch-check", action="store_true", help="skip the torch.utils.flop_counter cross-check")
    args = parser.parse_args(argv)
    cfg = CostConfig(evilm_preset=args.preset, latency=args.latency, torch_crosscheck=not args.no_torch_check)
    console = Console()
    with console.status("measuring") as status:
        rows = measure_all(cfg, progress=lambda key: status.update(f"measuring {key}"))
    print(markdown(rows, cfg))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
