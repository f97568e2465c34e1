"""``python -m evilm.profiling``: Table 1's cost columns, and with ``--latency`` deployment-style CPU latency."""

from __future__ import annotations

import argparse
import logging
import platform
import time

import torch
from rich.console import Console

from evilm.profiling.cost_table import CostConfig, add_latency, markdown, measure_all
from evilm.profiling.deployment import DeploymentConfig, compare_paths
from evilm.profiling.deployment import markdown as paths_markdown
from evilm.profiling.memory import peak_memory_mib
from evilm.profiling.paths import PATHS

ALL_MODELS = ["evilm", "all_in_one_t", "all_in_one_s", "all_in_one_b"]
QUICK_MODELS = ["evilm", "all_in_one_t", "all_in_one_b"]

DESCRIPTION = """\
Parameters and GFLOPs of E-ViLM and all-in-one-T/S/B (Table 1's cost columns), measured with
fvcore (one multiply-add = one FLOP) beside the paper's figures.

--latency adds CPU latency measured the way a model is deployed: every model through every
inference path (fp32 eager, bf16 autocast, torch.compile fp32 and bf16, ONNX Runtime), each
path's outputs checked against fp32 eager (max abs and relative RMS difference, against a
stated tolerance), batch 1 and 8, all pairs timed in interleaved rounds (medians), ratios
other model / E-ViLM for each path; Table 1's latency column is each model's fastest faithful
path, named. Then retrieval's unimodal path (videos and texts encoded per second; ranking
1k x 1k embeddings) and peak memory. Preparing the compiled paths takes minutes.

--breakdown profiles E-ViLM in fp32 eager: CPU time per part (backbone stages, text encoder,
decoder) and per kind of operator (depthwise convolution, LayerNorm, linear, GELU, ...).
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m evilm.profiling",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--preset", default="paper", help="E-ViLM preset: paper (default), quick or smoke")
    p.add_argument(
        "--latency", action="store_true", help="deployment-style latency through every path (minutes)"
    )
    p.add_argument(
        "--breakdown", action="store_true", help="where E-ViLM's fp32 eager time goes, per part and operator"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="with --latency: batch 1 only, E-ViLM and all-in-one-T/B, 3 rounds, retrieval without torch.compile",
    )
    p.add_argument(
        "--paths", nargs="+", default=list(PATHS), choices=PATHS, help="inference paths (default: all)"
    )
    p.add_argument(
        "--models", nargs="+", default=None, choices=ALL_MODELS, help="models to time (default: all four)"
    )
    p.add_argument("--batch-sizes", nargs="+", type=int, default=None, help="default: 1 8 (1 with --quick)")
    p.add_argument(
        "--repeats", type=int, default=None, help="interleaved timing rounds (default 5, 3 with --quick)"
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=90.0,
        help="stop a batch size's rounds after this much timing (>= 3 rounds)",
    )
    p.add_argument(
        "--threads", type=int, default=None, help="torch and ONNX Runtime threads (default: torch's choice)"
    )
    p.add_argument(
        "--no-retrieval", action="store_true", help="with --latency: skip retrieval's encode/ranking speed"
    )
    p.add_argument(
        "--no-torch-check", action="store_true", help="skip the torch.utils.flop_counter cross-check"
    )
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    # dynamo explains E-ViLM's one graph break (a data-dependent branch in EViLM.fuse) at length
    torch._logging.set_logs(dynamo=logging.ERROR)
    console = Console(stderr=True)
    began = time.perf_counter()
    models = args.models or (QUICK_MODELS if args.quick else ALL_MODELS)
    cfg = CostConfig(evilm_preset=args.preset, torch_crosscheck=not args.no_torch_check)
    if args.latency:
        cfg.baselines = [m for m in models if m != "evilm"]
    with console.status("measuring") as status:
        progress = status.update
        rows = measure_all(cfg, progress=lambda key: progress(f"counting {key}"))
        sections = []
        if args.latency:
            deployment = DeploymentConfig(
                evilm_preset=args.preset,
                models=models,
                paths=args.paths,
                batch_sizes=args.batch_sizes or ([1] if args.quick else [1, 8]),
                repeats=args.repeats or (3 if args.quick else 5),
                max_seconds=args.max_seconds,
            )
            comparison = compare_paths(deployment, progress=progress)
            if 1 in deployment.batch_sizes and set(rows) <= set(deployment.models):
                add_latency(rows, comparison)
                for key, row in rows.items():
                    progress(f"peak memory of {key}")
                    row["peak_mib"] = peak_memory_mib(key, args.preset)
            sections.append("## Inference paths\n\n" + paths_markdown(comparison))
            if not args.no_retrieval and "evilm" in models:
                fastest = comparison.fastest_faithful("evilm", comparison.batch_sizes()[0]).path
                sections.append(_retrieval_section(args, fastest, progress))
        if args.breakdown:
            sections.append(_breakdown_section(args.preset, progress))
    print(
        f"CPU: {platform.processor() or platform.machine()}, torch {torch.__version__}, threads: {torch.get_num_threads()}\n"
    )
    print(markdown(rows, cfg))
    for section in sections:
        print(section)
    print(f"Wall time: {time.perf_counter() - began:.0f} s")
    return 0


def _retrieval_section(args, fastest: str, progress) -> str:
    # The ranking is the retrieval task's own (its tie rule included); imported here, at the
    # command line, because the library's profiling package sits below evilm.tasks.
    from evilm.profiling.inputs import build_model
    from evilm.profiling.retrieval_speed import encode_throughput, ranking_seconds
    from evilm.profiling.retrieval_speed import markdown as retrieval_markdown
    from evilm.tasks.metrics import retrieval_ranks

    paths = (
        ["fp32_eager", "bf16_autocast"]
        if args.quick
        else list(dict.fromkeys(["fp32_eager", "bf16_autocast", fastest]))
    )
    progress(f"retrieval encoders through {', '.join(paths)}")
    results = encode_throughput(build_model("evilm", args.preset), paths, repeats=3 if args.quick else 5)
    progress("ranking 1k x 1k")
    ranking = ranking_seconds(lambda s: retrieval_ranks(s, ties="pessimistic"))
    return f"## Retrieval, unimodal encoding ({args.preset} preset, random weights)\n\n" + retrieval_markdown(
        results, ranking, tie_rule="pessimistic: a tie counts against the correct video"
    )


def _breakdown_section(preset: str, progress) -> str:
    from evilm.profiling.breakdown import profile_breakdown
    from evilm.profiling.inputs import build_with_inputs

    progress("profiling E-ViLM per part and operator")
    model, inputs = build_with_inputs("evilm", preset)
    b = profile_breakdown(model, inputs)
    return (
        f"## Where E-ViLM's time goes (fp32 eager, batch 1, {torch.get_num_threads()} threads, CPU ms per forward)\n\n"
        + b.markdown()
        + "\n"
    )


if __name__ == "__main__":
    raise SystemExit(main())
