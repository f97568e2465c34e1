"""The cost side of Table 1: parameters, GFLOPs, frames and (optionally) CPU latency of E-ViLM and the baselines.

``run`` is the stage (no data, no training); ``python -m evilm.profiling`` prints it.
Latency is batch 1 through every inference path of ``evilm.profiling.paths``, side by
side in one run (``evilm.profiling.deployment``); the table reports each model's
fastest faithful path (outputs within that path's tolerance of fp32 eager), named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from evilm.files import atomic_write_json, atomic_write_text
from evilm.models import MLMHead, MVMHead, VTMHead
from evilm.profiling.deployment import Comparison, DeploymentConfig, compare_paths
from evilm.profiling.flops import fvcore_flops, torch_flops
from evilm.profiling.inputs import MODEL_LABELS, build_with_inputs
from evilm.profiling.memory import peak_memory_mib
from evilm.profiling.params import count_parameters, parameters_by_module
from evilm.profiling.paths import PATH_LABELS, PATHS
from evilm.stage import MetricsCallback, StageResult, report

# Table 1 as published: (#params in M, GFLOPs, #frames). None = not reported.
PUBLISHED = {
    "ClipBERT": (137, 3800, 16),
    "JustAsk": (157, 4400, None),
    "all-in-one-S": (33, 134, 3),
    "all-in-one-B": (110, 235, 3),
    "VIOLET": (198, 4900, 5),
    "all-in-one-T": (12, 18.1, 3),
    "E-ViLM": (16, 12.2, 4),
}


@dataclass
class CostConfig:
    evilm_preset: str = "paper"
    baselines: list[str] = field(default_factory=lambda: ["all_in_one_t", "all_in_one_s", "all_in_one_b"])
    torch_crosscheck: bool = True  # a second FLOP count with torch.utils.flop_counter
    latency: bool = False  # CPU latency (batch 1, every path) and peak memory: minutes (compilation)
    latency_paths: list[str] = field(default_factory=lambda: list(PATHS))
    latency_repeats: int = 5
    latency_threads: int | None = None  # None: torch's setting
    seed: int = 0


def measure_model(key: str, cfg: CostConfig) -> dict:
    """All cost figures of one model, with the inputs they were measured on."""
    model, inputs = build_with_inputs(key, cfg.evilm_preset)
    head_params = 0
    if key == "evilm":
        c = model.config
        heads = [MLMHead(model.width, c.text.vocab_size), VTMHead(model.width), MVMHead(model.width, c.codebook_size)]
        head_params = sum(count_parameters(h) for h in heads)
    frames, _, size = inputs[0].shape[1:4]
    flops = fvcore_flops(model, inputs)
    row = {
        "model": MODEL_LABELS.get(key, key),
        "frames": frames,
        "image_size": size,
        "text_len": inputs[1].shape[1],
        "params_no_heads": count_parameters(model),
        "params_pretrain_heads": head_params,
        "gflops": flops[""] / 1e9,
        "gflops_by_module": {k: v / 1e9 for k, v in flops.items() if k},
        "params_by_module": parameters_by_module(model),
    }
    if cfg.torch_crosscheck:
        row["gflops_torch"] = torch_flops(model, inputs) / 1e9
    return row


def measure_all(cfg: CostConfig, progress=None) -> dict[str, dict]:
    """Every model's row; with ``cfg.latency``, also its batch-1 latency per path and peak memory."""
    torch.manual_seed(cfg.seed)
    rows = {}
    for key in ["evilm", *cfg.baselines]:
        if progress:
            progress(key)
        rows[key] = measure_model(key, cfg)
    if cfg.latency:
        deployment = DeploymentConfig(
            evilm_preset=cfg.evilm_preset,
            models=list(rows),
            paths=cfg.latency_paths,
            batch_sizes=[1],
            repeats=cfg.latency_repeats,
            threads=cfg.latency_threads,
            seed=cfg.seed,
        )
        add_latency(rows, compare_paths(deployment, progress=progress))
        for key, row in rows.items():
            row["peak_mib"] = peak_memory_mib(key, cfg.evilm_preset)
    return rows


def add_latency(rows: dict[str, dict], comparison: Comparison, batch_size: int = 1) -> None:
    """Copy each model's latency at ``batch_size`` from a path comparison into its row.

    ``median_ms``/``min_ms``/``max_ms`` are those of the fastest faithful path, named in
    ``latency_path``; ``latency_ms_by_path`` holds the median of every path that could be prepared.
    """
    for key, row in rows.items():
        best = comparison.fastest_faithful(key, batch_size)
        row["latency_path"] = best.path
        row["median_ms"], row["min_ms"], row["max_ms"] = best.median_ms, min(best.times_ms), max(best.times_ms)
        measured = [comparison.get(key, batch_size, path) for path in comparison.paths()]
        row["latency_ms_by_path"] = {r.path: r.median_ms for r in measured if r is not None and not r.error}
        row["latency_threads"] = comparison.threads


def ratios(rows: dict[str, dict]) -> dict[str, float]:
    """The abstract's two claims against all-in-one-B, measured and published."""
    out = {}
    if "all_in_one_b" in rows:
        e, b = rows["evilm"], rows["all_in_one_b"]
        out["params_fraction_of_aio_b"] = e["params_no_heads"] / b["params_no_heads"]
        out["gflops_reduction_vs_aio_b"] = 1 - e["gflops"] / b["gflops"]
        if "median_ms" in e and "median_ms" in b:
            out["latency_ratio_aio_b_over_evilm"] = b["median_ms"] / e["median_ms"]
            eager_e, eager_b = e["latency_ms_by_path"]["fp32_eager"], b["latency_ms_by_path"]["fp32_eager"]
            out["latency_ratio_aio_b_over_evilm_fp32_eager"] = eager_b / eager_e
    p_e, p_b = PUBLISHED["E-ViLM"], PUBLISHED["all-in-one-B"]
    out["published_params_fraction"] = p_e[0] / p_b[0]
    out["published_gflops_reduction"] = 1 - p_e[1] / p_b[1]
    return out


def _fmt(value, digits=1) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(rows: dict[str, dict], cfg: CostConfig) -> str:
    """Paper figures beside measured ones, per-module breakdowns, the two ratios."""
    lines = [
        "| Model | #P paper (M) | #P measured (M) | GFLOPs paper | GFLOPs measured (fvcore) | GFLOPs (torch) | #F | input |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows.values():
        pub = PUBLISHED.get(row["model"], (None, None, None))
        lines.append(
            f"| {row['model']} | {_fmt(pub[0], 0) if pub[0] else '–'} | {row['params_no_heads'] / 1e6:.2f} | "
            f"{_fmt(pub[1])} | {row['gflops']:.2f} | {_fmt(row.get('gflops_torch'), 2)} | {row['frames']} | "
            f"{row['frames']}×{row['image_size']}², {row['text_len']} text tokens |"
        )
    for name in ("ClipBERT", "JustAsk", "VIOLET"):
        p = PUBLISHED[name]
        lines.append(f"| {name} (published only) | {p[0]} | – | {p[1]} | – | – | {_fmt(p[2])} | – |")
    r = ratios(rows)
    lines += ["", "Ratios against all-in-one-B (the abstract's claims):", ""]
    if "params_fraction_of_aio_b" in r:
        lines.append(
            f"- parameters: E-ViLM has {100 * r['params_fraction_of_aio_b']:.1f}% of all-in-one-B's "
            f"(paper: {100 * r['published_params_fraction']:.1f}%, quoted as 15%)"
        )
        lines.append(
            f"- GFLOPs: E-ViLM needs {100 * r['gflops_reduction_vs_aio_b']:.1f}% fewer "
            f"(paper: {100 * r['published_gflops_reduction']:.1f}%)"
        )
        if "latency_ratio_aio_b_over_evilm" in r:
            lines.append(
                f"- CPU latency, batch 1, each model's fastest faithful path: all-in-one-B takes "
                f"{r['latency_ratio_aio_b_over_evilm']:.2f}× E-ViLM's "
                f"({r['latency_ratio_aio_b_over_evilm_fp32_eager']:.2f}× in fp32 eager)"
            )
    if any("median_ms" in row for row in rows.values()):
        threads = next(row["latency_threads"] for row in rows.values())
        lines += [
            "",
            f"CPU latency, batch 1, {threads} threads (median of interleaved rounds); the fastest path whose outputs "
            "match fp32 eager within its tolerance (`python -m evilm.profiling --latency` prints every path):",
            "",
            "| Model | latency (ms) | path | min | max | fp32 eager (ms) | speed-up | peak extra memory, fp32 eager, 1 thread (MiB) |",
            "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in rows.values():
            eager = row["latency_ms_by_path"]["fp32_eager"]
            lines.append(
                f"| {row['model']} | {row['median_ms']:.1f} | {PATH_LABELS[row['latency_path']]} | {row['min_ms']:.1f} | "
                f"{row['max_ms']:.1f} | {eager:.1f} | {eager / row['median_ms']:.2f}× | {row['peak_mib']:.0f} |"
            )
    lines += ["", "Per module (measured):", "", "| Model | module | #P (M) | GFLOPs |", "| --- | --- | ---: | ---: |"]
    for row in rows.values():
        for name, params in row["params_by_module"].items():
            g = row["gflops_by_module"].get(name)
            lines.append(f"| {row['model']} | {name} | {params / 1e6:.3f} | {_fmt(g, 3)} |")
    e = rows["evilm"]
    lines += [
        "",
        f"E-ViLM's pre-training heads (MLM + VTM + MVM over {e['params_pretrain_heads'] / 1e6:.2f}M parameters) are not "
        "counted in #P, as in the paper (\"without a task specific head\").",
        "FLOPs: one multiply-add = one FLOP (fvcore's convention, in which EdgeNeXt-small is 1.26 G per 256×256 frame); "
        "attention's two matrix products are counted through a handler for `scaled_dot_product_attention`; "
        "layer/batch norms count as fvcore counts them; other element-wise ops (softmax, GELU, additions) are not. The torch column is "
        "`torch.utils.flop_counter` (2 per multiply-add, halved) as a cross-check.",
    ]
    return "\n".join(lines) + "\n"


def run(config: CostConfig, inputs: dict, out_dir: Path, on_metrics: MetricsCallback | None = None) -> StageResult:
    """Stage: measure every model, write ``cost_table.md`` and ``cost_table.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = measure_all(config)
    metrics = {}
    for key, row in rows.items():
        metrics[f"{key}.params_m"] = row["params_no_heads"] / 1e6
        metrics[f"{key}.gflops"] = row["gflops"]
        metrics[f"{key}.frames"] = float(row["frames"])
        if "gflops_torch" in row:
            metrics[f"{key}.gflops_torch"] = row["gflops_torch"]
        if "median_ms" in row:
            metrics[f"{key}.latency_ms"] = row["median_ms"]  # the fastest faithful path, row["latency_path"]
            for path, ms in row["latency_ms_by_path"].items():
                metrics[f"{key}.latency_ms.{path}"] = ms
            metrics[f"{key}.latency_speedup"] = row["latency_ms_by_path"]["fp32_eager"] / row["median_ms"]
            metrics[f"{key}.peak_mib"] = row["peak_mib"]
    metrics.update({f"ratio.{k}": v for k, v in ratios(rows).items()})
    report(on_metrics, metrics, 0)
    artifacts = {
        "cost_table_md": atomic_write_text(out_dir / "cost_table.md", markdown(rows, config)),
        "cost_table_json": atomic_write_json(out_dir / "cost_table.json", rows, indent=2),
    }
    return StageResult(metrics=metrics, artifacts=artifacts)
