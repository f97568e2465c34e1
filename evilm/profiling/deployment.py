"""Deployment-style latency: every model through every inference path, side by side in one run.

For each batch size, every (model, path) pair is prepared (exported or compiled),
its outputs are checked against the model's fp32 eager outputs, and then all pairs
are timed in interleaved rounds (``latency.interleaved_latency``), so that the
ratios between paths and between models come from the same minutes of the same
machine. A path is *faithful* for a model when its outputs are within the path's
tolerance (``paths.TOLERANCES``); the fastest faithful path is the one a
deployment would pick.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from evilm.profiling.inputs import MODEL_LABELS, build_model, inputs_for
from evilm.profiling.latency import interleaved_latency
from evilm.profiling.paths import PATH_LABELS, PATHS, TOLERANCES, compare_outputs, prepare

BASELINE_KEY = "evilm"  # ratios are "other model / E-ViLM"


@dataclass
class DeploymentConfig:
    evilm_preset: str = "paper"
    models: list[str] = field(
        default_factory=lambda: ["evilm", "all_in_one_t", "all_in_one_s", "all_in_one_b"]
    )
    paths: list[str] = field(default_factory=lambda: list(PATHS))
    batch_sizes: list[int] = field(default_factory=lambda: [1, 8])
    repeats: int = 5  # interleaved rounds per batch size
    max_seconds: float | None = None  # stop a batch size's rounds after this much timing (at least 3 rounds)
    threads: int | None = None  # torch (and ONNX Runtime) threads; None: leave torch's setting
    seed: int = 0

    def __post_init__(self):
        unknown = [p for p in self.paths if p not in PATHS]
        if unknown:
            raise ValueError(f"unknown inference paths {unknown}; known: {', '.join(PATHS)}")
        if "fp32_eager" not in self.paths:
            raise ValueError(
                "the paths must include fp32_eager: every other path is checked and compared against it"
            )


@dataclass
class PathResult:
    model: str  # key, e.g. "evilm"
    batch_size: int
    path: str
    times_ms: list[float]
    setup_s: float
    max_abs: float
    rel_rms: float
    within_tolerance: bool
    error: str | None = None  # the path could not be prepared (export or compilation failed)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms) if self.times_ms else math.nan

    @property
    def items_per_s(self) -> float:
        return 1e3 * self.batch_size / self.median_ms


@dataclass
class Comparison:
    results: list[PathResult]
    threads: int
    # the machine's 1-minute load average when each batch size's timing began and ended:
    # above the number of threads, other processes shared the cores and the figures are noisy
    load: dict[int, tuple[float, float]] = field(default_factory=dict)

    def get(self, model: str, batch_size: int, path: str) -> PathResult | None:
        for r in self.results:
            if (r.model, r.batch_size, r.path) == (model, batch_size, path):
                return r
        return None

    def models(self) -> list[str]:
        return list(dict.fromkeys(r.model for r in self.results))

    def batch_sizes(self) -> list[int]:
        return list(dict.fromkeys(r.batch_size for r in self.results))

    def paths(self) -> list[str]:
        return list(dict.fromkeys(r.path for r in self.results))

    def speedup(self, model: str, batch_size: int, path: str) -> float:
        """fp32 eager median / this path's median, for the same model and batch."""
        return (
            self.get(model, batch_size, "fp32_eager").median_ms / self.get(model, batch_size, path).median_ms
        )

    def fastest_faithful(self, model: str, batch_size: int) -> PathResult:
        candidates = [
            r for r in self.results if (r.model, r.batch_size) == (model, batch_size) and r.within_tolerance
        ]
        return min(candidates, key=lambda r: r.median_ms)

    def ratio(self, other: str, batch_size: int, path: str) -> float | None:
        """Median latency of ``other`` over E-ViLM's on the same path and batch."""
        a, b = self.get(other, batch_size, path), self.get(BASELINE_KEY, batch_size, path)
        return None if a is None or b is None else a.median_ms / b.median_ms


def compare_paths(
    cfg: DeploymentConfig, progress: Callable[[str], None] | None = None, workdir: Path | None = None
) -> Comparison:
    """Prepare, check and time every (model, path) pair at every batch size."""
    previous_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    results, load = [], {}
    try:
        # Several compiled models share TupleOutput.forward: let dynamo keep one entry for each.
        with torch._dynamo.config.patch(recompile_limit=64, accumulated_recompile_limit=1024):
            for batch_size in cfg.batch_sizes:
                batch_results, load[batch_size] = _compare_batch(cfg, batch_size, progress, workdir)
                results += batch_results
    finally:
        torch.set_num_threads(previous_threads)
    return Comparison(results=results, threads=cfg.threads or previous_threads, load=load)


def _compare_batch(
    cfg: DeploymentConfig, batch_size: int, progress, workdir
) -> tuple[list[PathResult], tuple[float, float]]:
    torch._dynamo.reset()  # compiled code of the previous batch size is not needed any more
    pairs, calls, checks, setups, failures = [], {}, {}, {}, {}
    for key in cfg.models:
        torch.manual_seed(cfg.seed)
        model = build_model(key, cfg.evilm_preset)
        inputs = inputs_for(model, batch_size, seed=cfg.seed)
        reference = None
        for path in ["fp32_eager", *[p for p in cfg.paths if p != "fp32_eager"]]:
            pairs.append((key, path))
            if progress:
                progress(f"batch {batch_size}: preparing {MODEL_LABELS.get(key, key)} / {PATH_LABELS[path]}")
            if path == "fp32_eager":
                prepared = prepare(path, model, inputs, mask_input=2, workdir=workdir)
            else:
                try:
                    prepared = prepare(path, model, inputs, mask_input=2, workdir=workdir)
                except Exception as e:  # one path failing must not lose the others' minutes of work
                    failures[(key, path)] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200]}"
                    continue
            reference = prepared.outputs if reference is None else reference
            checks[(key, path)] = compare_outputs(prepared.outputs, reference)
            setups[(key, path)] = prepared.setup_s
            calls[(key, path)] = lambda run=prepared.run, inputs=inputs: run(*inputs)
    if progress:
        progress(f"batch {batch_size}: timing {len(calls)} (model, path) pairs in interleaved rounds")
    load_before = os.getloadavg()[0]
    times = interleaved_latency(calls, repeats=cfg.repeats, warmup=1, max_seconds=cfg.max_seconds)
    load = (load_before, os.getloadavg()[0])
    results = []
    for key, path in pairs:
        if (key, path) in failures:
            results.append(
                PathResult(
                    model=key,
                    batch_size=batch_size,
                    path=path,
                    times_ms=[],
                    setup_s=math.nan,
                    max_abs=math.nan,
                    rel_rms=math.nan,
                    within_tolerance=False,
                    error=failures[(key, path)],
                )
            )
            continue
        check = checks[(key, path)]
        results.append(
            PathResult(
                model=key,
                batch_size=batch_size,
                path=path,
                times_ms=times[(key, path)],
                setup_s=setups[(key, path)],
                max_abs=check.max_abs,
                rel_rms=check.rel_rms,
                within_tolerance=check.within(TOLERANCES[path]),
            )
        )
    return results, load


def label(key: str) -> str:
    return MODEL_LABELS.get(key, key)


def _ratio_cell(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.2f}"


def markdown(comparison: Comparison, target_speedup: float = 2.0) -> str:
    """Per batch size: every (model, path) with its check, ratios between models, fastest faithful paths."""
    lines = [
        f"Torch / ONNX Runtime threads: {comparison.threads}. Median of interleaved rounds; "
        "outputs checked against the same model's fp32 eager outputs.",
        "",
    ]
    lines += [
        "Tolerances: " + "; ".join(f"{PATH_LABELS[p]}: {TOLERANCES[p]}" for p in comparison.paths()),
        "",
    ]
    for b in comparison.batch_sizes():
        lines += [f"### Batch {b}", ""]
        if b in comparison.load:
            before, after = comparison.load[b]
            busy = max(before, after) > comparison.threads + 0.5
            lines += [
                f"Load average while timing: {before:.1f} -> {after:.1f} on {os.cpu_count()} CPUs"
                + (" (other processes shared the cores: the figures are noisy)." if busy else "."),
                "",
            ]
        lines += [
            "| model | path | median ms | min ms | items/s | × own fp32 eager | max abs diff | rel. RMS diff | within tol. | setup s |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | :---: | ---: |",
        ]
        for key in comparison.models():
            for path in comparison.paths():
                r = comparison.get(key, b, path)
                if r is None:
                    continue
                if r.error:
                    lines.append(f"| {label(key)} | {PATH_LABELS[path]} | failed: {r.error} |" + " – |" * 7)
                    continue
                lines.append(
                    f"| {label(key)} | {PATH_LABELS[path]} | {r.median_ms:.1f} | {min(r.times_ms):.1f} | "
                    f"{r.items_per_s:.1f} | {comparison.speedup(key, b, path):.2f} | {r.max_abs:.1e} | "
                    f"{r.rel_rms:.1e} | {'yes' if r.within_tolerance else 'NO'} | {r.setup_s:.1f} |"
                )
        others = [k for k in comparison.models() if k != BASELINE_KEY]
        if BASELINE_KEY in comparison.models() and others:
            lines += [
                "",
                "| path | " + " | ".join(f"{label(k)} / E-ViLM" for k in others) + " |",
                "| --- |" + " ---: |" * len(others),
            ]
            for path in comparison.paths():
                cells = [_ratio_cell(comparison.ratio(k, b, path)) for k in others]
                lines.append(f"| {PATH_LABELS[path]} | " + " | ".join(cells) + " |")
            e_best = comparison.fastest_faithful(BASELINE_KEY, b).median_ms
            best = [_ratio_cell(comparison.fastest_faithful(k, b).median_ms / e_best) for k in others]
            lines.append("| each model's fastest faithful path | " + " | ".join(best) + " |")
        lines += ["", "Fastest faithful path per model:", ""]
        for key in comparison.models():
            r = comparison.fastest_faithful(key, b)
            lines.append(
                f"- {label(key)}: {PATH_LABELS[r.path]}, {r.median_ms:.1f} ms "
                f"({comparison.speedup(key, b, r.path):.2f}× its fp32 eager)"
            )
        lines.append("")
    if BASELINE_KEY in comparison.models() and 1 in comparison.batch_sizes():
        r = comparison.fastest_faithful(BASELINE_KEY, 1)
        s = comparison.speedup(BASELINE_KEY, 1, r.path)
        verdict = "met" if s >= target_speedup else "NOT met"
        lines.append(
            f"E-ViLM at batch 1: fastest faithful path {PATH_LABELS[r.path]} is {s:.2f}× its fp32 eager latency "
            f"(target >= {target_speedup:g}×: {verdict}); max abs diff {r.max_abs:.1e}, rel. RMS diff {r.rel_rms:.1e} "
            f"({TOLERANCES[r.path]})."
        )
    return "\n".join(lines) + "\n"
