"""E-ViLM against all-in-one-T/S/B on this CPU, measured the way the models would be deployed.

    python benchmarks/bench_cost.py [--quick] [--threads 2] [--repeats N]

One run prints, side by side: every model through every inference path (fp32 eager, bf16
autocast, torch.compile fp32 / bf16, ONNX Runtime) at batch 1 and 8, each path's outputs
checked against fp32 eager; the ratios all-in-one-T/S/B / E-ViLM for each path; whether
E-ViLM's fastest faithful path is at least 2x its fp32 eager latency at batch 1; Table 1's
costs with the fastest faithful path's latency; retrieval's unimodal encoding speed and the
1k x 1k ranking time; and where E-ViLM's fp32 eager time goes. All timings are medians of
interleaved rounds, so ratios come from the same minutes of the same machine; each batch
size's table states the load average while it was timed (a busy machine gives noisy figures).
Most of a run's time is preparing the compiled paths (the "setup s" column).
``--quick``: batch 1 only, E-ViLM and all-in-one-T/B, 3 rounds, retrieval without torch.compile.
"""

from __future__ import annotations

import argparse

from evilm.profiling.__main__ import main as profiling_main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="batch 1 only, E-ViLM and all-in-one-T/B, 3 rounds")
    parser.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime threads (default 2)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 5; 3 with --quick)")
    parser.add_argument("--preset", default="paper")
    args = parser.parse_args()
    argv = ["--latency", "--breakdown", "--no-torch-check", "--threads", str(args.threads), "--preset", args.preset]
    if args.quick:
        argv.append("--quick")
    if args.repeats:
        argv += ["--repeats", str(args.repeats)]
    profiling_main(argv)


if __name__ == "__main__":
    main()
