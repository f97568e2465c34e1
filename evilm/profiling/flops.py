"""FLOP counting with fvcore, and a cross-check with PyTorch's own counter.

Convention: one multiply-add is one FLOP (fvcore counts MACs). That is how timm
and EdgeNeXt report 1.26 G for one 256x256 frame, and how the paper's table reads.

fvcore silently skips ops it has no handler for. The one that matters is
``aten::scaled_dot_product_attention``: we count its two matrix products,
``Lq*Lk*d`` (scores) + ``Lq*Lk*d_v`` (weighted values) per batch x head. Norms
count as fvcore counts them (5 per element for layer norm); softmax, GELU and
additions are not counted (element-wise, skipped by fvcore).

The cross-check uses ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per
multiply-add, halved here). Its CPU attention kernels may lack a formula, so the
cross-check runs attention through the math path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from evilm.profiling.inputs import TupleOutput


def _shape(value) -> list[int]:
    return value.type().sizes()


def sdpa_flop_handle(inputs: list[Any], outputs: list[Any]) -> int:
    """fvcore handle: MACs of softmax(q k^T) v for q (.., Lq, d), k (.., Lk, d), v (.., Lk, dv)."""
    q, k, v = (_shape(x) for x in inputs[:3])
    batch_heads = 1
    for s in q[:-2]:
        batch_heads *= s
    lq, d = q[-2], q[-1]
    lk, dv = k[-2], v[-1]
    return batch_heads * (lq * lk * d + lq * lk * dv)


def fvcore_flops(model: nn.Module, inputs: Sequence[torch.Tensor], depth: int = 1) -> dict[str, int]:
    """MACs in total ("") and per sub-module ``depth`` levels down, counted by fvcore."""
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(TupleOutput(model).eval(), tuple(inputs))
    analysis.set_op_handle("aten::scaled_dot_product_attention", sdpa_flop_handle)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    with torch.no_grad():
        by_module = analysis.by_module()
    out = {"": int(analysis.total())}
    for name, value in by_module.items():
        if name.startswith("model.") and name.count(".") == depth:
            out[name[len("model.") :]] = int(value)
    return out


def torch_flops(model: nn.Module, inputs: Sequence[torch.Tensor]) -> int:
    """MACs counted by PyTorch's FlopCounterMode (its 2-per-MAC count, halved)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        model.eval()(*inputs)
    return counter.get_total_flops() // 2
