"""Where inference time goes: CPU time per model part and per kind of operator.

One ``torch.profiler`` pass over a few forward passes. Each operator called
directly by the model (an aten op whose caller is no other aten op, so that
``linear`` counts the ``addmm`` and bias ``copy_`` inside it) is charged, with
everything it calls, to

- the deepest of the named ``parts`` it runs in (a forward hook opens a
  profiler range per part), and
- a kind: depthwise convolution (``groups`` = channels), other convolution,
  LayerNorm, linear / matrix product, attention (SDPA, softmax), GELU,
  element-wise arithmetic (add, mul, div, sub: residuals, layer scale,
  normalisation), copies and layout changes (``contiguous`` into channels-last,
  concatenations) and the rest (embeddings, views).

Profiling adds a fixed cost per operator, so the shares matter more than the sum.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

KINDS = (
    "depthwise conv",
    "conv",
    "layer norm",
    "linear / matmul",
    "attention",
    "GELU",
    "element-wise",
    "copy / layout",
    "other",
)

_LINEAR = {"aten::linear", "aten::addmm", "aten::mm", "aten::matmul", "aten::bmm", "aten::baddbmm"}
_ATTENTION = {"aten::scaled_dot_product_attention", "aten::softmax", "aten::_softmax"}
_ELEMENTWISE = {
    "aten::add",
    "aten::add_",
    "aten::mul",
    "aten::mul_",
    "aten::div",
    "aten::div_",
    "aten::sub",
    "aten::rsub",
}
_COPY = {
    "aten::contiguous",
    "aten::clone",
    "aten::copy_",
    "aten::to",
    "aten::_to_copy",
    "aten::cat",
    "aten::permute",
}
_CONV = {"aten::conv2d", "aten::convolution", "aten::_convolution", "aten::mkldnn_convolution"}

# The parts of E-ViLM a reader asks about; names absent from a model are skipped.
EVILM_PARTS = (
    "video_encoder.backbone.stem",
    "video_encoder.backbone.stages.0",
    "video_encoder.backbone.stages.1",
    "video_encoder.backbone.stages.2",
    "video_encoder.backbone.stages.3",
    "video_encoder",
    "text_encoder",
    "decoder",
)


@dataclass
class Breakdown:
    """CPU milliseconds per forward pass by (part, kind); ``total_ms`` includes time outside every part."""

    ms: dict[tuple[str, str], float]
    total_ms: float

    def by_part(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for (part, _), ms in self.ms.items():
            out[part] += ms
        return dict(out)

    def by_kind(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for (_, kind), ms in self.ms.items():
            out[kind] += ms
        return dict(out)

    def markdown(self) -> str:
        parts = list(self.by_part())
        lines = [
            "| part | " + " | ".join(KINDS) + " | total ms | share |",
            "| --- |" + " ---: |" * (len(KINDS) + 2),
        ]
        for part in parts:
            cells = [f"{self.ms.get((part, k), 0.0):.1f}" for k in KINDS]
            total = self.by_part()[part]
            lines.append(
                f"| {part} | " + " | ".join(cells) + f" | {total:.1f} | {100 * total / self.total_ms:.0f}% |"
            )
        kinds = self.by_kind()
        lines.append(
            "| **all** | "
            + " | ".join(f"**{kinds.get(k, 0.0):.1f}**" for k in KINDS)
            + f" | **{self.total_ms:.1f}** | 100% |"
        )
        lines.append(
            "| share | "
            + " | ".join(f"{100 * kinds.get(k, 0.0) / self.total_ms:.0f}%" for k in KINDS)
            + " | | |"
        )
        return "\n".join(lines)


def operator_kind(name: str, shapes: Sequence) -> str:
    """The kind of one top-level aten operator, from its name and (for convolutions) its weight's shape."""
    if name in _CONV:
        weight = shapes[1] if len(shapes) > 1 else []
        return "depthwise conv" if len(weight) == 4 and weight[1] == 1 and weight[0] > 1 else "conv"
    if name in ("aten::layer_norm", "aten::native_layer_norm"):
        return "layer norm"
    if name in _LINEAR:
        return "linear / matmul"
    if name in _ATTENTION:
        return "attention"
    if name == "aten::gelu":
        return "GELU"
    if name in _ELEMENTWISE:
        return "element-wise"
    if name in _COPY:
        return "copy / layout"
    return "other"


def _range_hooks(model: nn.Module, parts: Sequence[str]) -> list:
    """Forward hooks that open a profiler range named ``part:<name>`` around each named part."""
    modules = dict(model.named_modules())
    handles = []
    for name in parts:
        if name not in modules:
            continue
        stack: list = []

        def enter(_module, _args, name=name, stack=stack):
            ctx = torch.profiler.record_function(f"part:{name}")
            ctx.__enter__()
            stack.append(ctx)

        def leave(_module, _args, _out, stack=stack):
            stack.pop().__exit__(None, None, None)

        handles.append(modules[name].register_forward_pre_hook(enter))
        handles.append(modules[name].register_forward_hook(leave))
    return handles


def _part_of(event) -> str:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("part:"):
            return parent.name[len("part:") :]
        parent = parent.cpu_parent
    return "(outside the parts)"


def _is_top_level(event) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("aten::"):
            return False
        parent = parent.cpu_parent
    return event.name.startswith("aten::")


def profile_breakdown(
    model: nn.Module, inputs: Sequence[torch.Tensor], parts: Sequence[str] = EVILM_PARTS, repeats: int = 3
) -> Breakdown:
    """Profile ``repeats`` forward passes (after one warm-up) and split their CPU time by part and kind."""
    from torch.profiler import ProfilerActivity, profile

    model.eval()
    handles = _range_hooks(model, parts)
    try:
        with torch.inference_mode():
            model(*inputs)
            with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
                for _ in range(repeats):
                    with torch.profiler.record_function("forward"):
                        model(*inputs)
    finally:
        for h in handles:
            h.remove()
    events = prof.events()
    total = sum(e.cpu_time_total for e in events if e.name == "forward") / 1e3 / repeats
    ms: dict[tuple[str, str], float] = defaultdict(float)
    for e in events:
        if _is_top_level(e):
            ms[(_part_of(e), operator_kind(e.name, e.input_shapes or []))] += e.cpu_time_total / 1e3 / repeats
    return Breakdown(ms=dict(ms), total_ms=total)
