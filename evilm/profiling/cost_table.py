"""The cost side of Table 1: parameters, GFLOPs and frames of E-ViLM and the baselines.

``run`` is the stage (no data, no training); ``python -m evilm.profiling`` prints it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from evilm.models import MLMHead, MVMHead, VTMHead, create_baseline, create_model
from evilm.profiling.flops import fvcore_flops, torch_flops
from evilm.profiling.latency import measure_latency
from evilm.profiling.memory import peak_memory_mib
from evilm.profiling.params import count_parameters, parameters_by_module
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

MODEL_LABELS = {
    "evilm": "E-ViLM",
    "all_in_one_t": "all-in-one-T",
    "all_in_one_s": "all-in-one-S",
    "all_in_one_b": "all-in-one-B",
}


@dataclass
class CostConfig:
    evilm_preset: str = "paper"
    baselines: list[str] = field(default_factory=lambda: ["all_in_one_t", "all_in_one_s", "all_in_one_b"])
    torch_crosscheck: bool = True  # a second FLOP count with torch.utils.flop_counter
    latency: bool = False  # CPU latency and peak memory (slow for all-in-one-B)
    latency_repeats: int = 3
    seed: int = 0


def dummy_inputs(num_frames: int, image_size: int, text_len: int, vocab_size: int) -> tuple[torch.Tensor, ...]:
    """One clip and one caption of full length: the inputs the paper's FLOPs are quoted for."""
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(1, num_frames, 3, image_size, image_size, generator=g)
    ids = torch.randint(5, vocab_size, (1, text_len), generator=g)
    return frames, ids, torch.ones_like(ids)


def build_with_inputs(key: str, evilm_preset: str = "paper") -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    """A model by key (``evilm`` or an all-in-one name) and the inputs its costs are quoted for."""
    if key == "evilm":
        model = create_model(evilm_preset)
        c = model.config
        inputs = dummy_inputs(c.num_frames, c.image_size, c.max_text_len, c.text.vocab_size)
    else:
        model = create_baseline(key)
        c = model.config
        inputs = dummy_inputs(c.num_frames, c.image_size, c.max_text_len, c.vocab_size)
    return model.eval(), inputs


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
    if cfg.latency:
        row.update(measure_latency(model, inputs, warmup=1, repeats=cfg.latency_repeats))
        row["peak_mib"] = peak_memory_mib(key, cfg.evilm_preset)
    return row


def measure_all(cfg: CostConfig, progress=None) -> dict[str, dict]:
    torch.manual_seed(cfg.seed)
    rows = {}
    for key in ["evilm", *cfg.baselines]:
        if progress:
            progress(key)
        rows[key] = measure_model(key, cfg)
    return rows


def ratios(rows: dict[str, dict]) -> dict[str, float]:
    """The abstract's two claims against all-in-one-B, measured and published."""
    out = {}
    if "all_in_one_b" in rows:
        e, b = rows["evilm"], rows["all_in_one_b"]
        out["params_fraction_of_aio_b"] = e["params_no_heads"] / b["params_no_heads"]
        out["gflops_reduction_vs_aio_b"] = 1 - e["gflops"] / b["gflops"]
        if "median_ms" in e and "median_ms" in b:
            out["latency_ratio_aio_b_over_evilm"] = b["median_ms"] / e["median_ms"]
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
            lines.append(f"- CPU latency, batch 1: all-in-one-B takes {r['latency_ratio_aio_b_over_evilm']:.1f}× E-ViLM's")
    if any("median_ms" in row for row in rows.values()):
        lines += ["", "| Model | latency median (ms) | min | max | peak extra memory, 1 thread (MiB) |", "| --- | ---: | ---: | ---: | ---: |"]
        for row in rows.values():
            lines.append(
                f"| {row['model']} | {row['median_ms']:.0f} | {row['min_ms']:.0f} | {row['max_ms']:.0f} | {row['peak_mib']:.0f} |"
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
            metrics[f"{key}.latency_ms"] = row["median_ms"]
            metrics[f"{key}.peak_mib"] = row["peak_mib"]
    metrics.update({f"ratio.{k}": v for k, v in ratios(rows).items()})
    report(on_metrics, metrics, 0)
    artifacts = {}
    for name, text in (("cost_table.md", markdown(rows, config)), ("cost_table.json", json.dumps(rows, indent=2))):
        tmp = out_dir / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out_dir / name)
        artifacts[name.replace(".", "_")] = out_dir / name
    return StageResult(metrics=metrics, artifacts=artifacts)
