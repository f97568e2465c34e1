"""The inference paths a user would try on a CPU, each checked against fp32 eager.

A path turns a model (``nn.Module`` whose outputs are tensors or a ``FusedOutput``)
and example inputs into a callable that returns a tuple of float32 tensors:

- ``fp32_eager``: ``model(*inputs)`` under ``torch.inference_mode`` (the reference);
- ``bf16_autocast``: the same under ``torch.autocast("cpu", torch.bfloat16)``:
  matrix products and convolutions in bfloat16 (AVX512-BF16 / AMX kernels through
  oneDNN), norms and softmax kept in float32 by autocast's rules;
- ``compile_fp32``: ``torch.compile`` (inductor, with ``freezing``: weights become
  constants, so oneDNN can pre-pack them and fold bias and activation into the
  matrix product); element-wise chains (LayerNorm, GELU, layer scale, residual)
  become fused C++ loops;
- ``compile_bf16``: the compiled model under bfloat16 autocast;
- ``onnxruntime``: exported with ``torch.onnx`` and run by ONNX Runtime's CPU
  provider with every graph optimisation (LayerNorm/GELU/MatMul+Add fusions).

Nothing changes the architecture or the weights. The ONNX export uses the
TorchScript exporter on an example whose last text token is padding, so that the
traced graph keeps the decoder's general key-padding branch
(``EViLM.fuse`` chooses it with a data-dependent ``bool(...)``, which
``torch.export``, and so the dynamo exporter, cannot capture); for full-length
captions that branch computes the same numbers as the unpadded one.
"""

from __future__ import annotations

import math
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from evilm.profiling.inputs import TupleOutput

PATHS = ("fp32_eager", "bf16_autocast", "compile_fp32", "compile_bf16", "onnxruntime")
PATH_LABELS = {
    "fp32_eager": "fp32 eager",
    "bf16_autocast": "bf16 autocast",
    "compile_fp32": "torch.compile fp32",
    "compile_bf16": "torch.compile bf16",
    "onnxruntime": "ONNX Runtime fp32",
}


@dataclass(frozen=True)
class Tolerance:
    """Outputs match fp32 eager when ``max |a - b| <= max_abs`` and ``||a - b|| / ||b|| <= rel_rms``."""

    max_abs: float
    rel_rms: float

    def __str__(self) -> str:
        return f"max abs <= {self.max_abs:g}, rel. RMS <= {self.rel_rms:g}"


# fp32 paths only reorder float32 sums; bf16 keeps 8 bits of mantissa (relative rounding 2^-9)
# in every matrix product. Outputs are LayerNorm-ed (unit scale), so the absolute bounds are
# relative to 1.
FP32_TOLERANCE = Tolerance(max_abs=1e-4, rel_rms=1e-5)
BF16_TOLERANCE = Tolerance(max_abs=1e-1, rel_rms=2e-2)
TOLERANCES = {
    "fp32_eager": FP32_TOLERANCE,
    "bf16_autocast": BF16_TOLERANCE,
    "compile_fp32": FP32_TOLERANCE,
    "compile_bf16": BF16_TOLERANCE,
    "onnxruntime": FP32_TOLERANCE,
}


@dataclass
class PreparedPath:
    """One path ready to run: ``run(*inputs)`` -> tuple of float32 tensors."""

    name: str
    run: Callable[..., tuple[torch.Tensor, ...]]
    setup_s: float  # export + session creation, or compilation (paid at the first call)
    outputs: tuple[torch.Tensor, ...]  # of that first call, on the inputs given to ``prepare``


@dataclass
class Agreement:
    max_abs: float
    rel_rms: float

    def within(self, tol: Tolerance) -> bool:
        return self.max_abs <= tol.max_abs and self.rel_rms <= tol.rel_rms


def compare_outputs(outputs: Sequence[torch.Tensor], reference: Sequence[torch.Tensor]) -> Agreement:
    """Largest absolute difference and relative RMS difference over all output tensors."""
    if len(outputs) != len(reference):
        raise ValueError(f"{len(outputs)} outputs against {len(reference)} reference tensors")
    max_abs, diff_sq, ref_sq = 0.0, 0.0, 0.0
    for out, ref in zip(outputs, reference):
        if out.shape != ref.shape:
            raise ValueError(
                f"output shape {tuple(out.shape)} differs from the reference's {tuple(ref.shape)}"
            )
        d = out.float() - ref.float()
        max_abs = max(max_abs, d.abs().max().item())
        diff_sq += d.double().square().sum().item()
        ref_sq += ref.double().square().sum().item()
    return Agreement(max_abs=max_abs, rel_rms=math.sqrt(diff_sq / ref_sq) if ref_sq else math.sqrt(diff_sq))


def _as_float32(outputs) -> tuple[torch.Tensor, ...]:
    if isinstance(outputs, torch.Tensor):
        outputs = (outputs,)
    return tuple(o.float() for o in outputs)


def _torch_path(
    module: nn.Module, bf16: bool, freeze: bool = False
) -> Callable[..., tuple[torch.Tensor, ...]]:
    def run(*inputs):
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
        # inductor reads ``freezing`` from its global config when it compiles (torch.compile's
        # ``options`` does not reach it); patched here, around the calls that may compile
        freezing = torch._inductor.config.patch(freezing=True) if freeze else nullcontext()
        with torch.inference_mode(), autocast, freezing:
            return _as_float32(module(*inputs))

    return run


def export_onnx(
    module: nn.Module, inputs: Sequence[torch.Tensor], path: Path, mask_input: int | None = None
) -> Path:
    """Export ``module`` (tuple outputs) for these input shapes with the TorchScript-based exporter.

    ``mask_input``: the position of an attention mask among the inputs; its last token is
    padded in the traced example, so that the graph keeps the general masking branch.
    """
    example = list(inputs)
    if mask_input is not None:
        example[mask_input] = example[mask_input].clone()
        example[mask_input][:, -1] = 0
    names = [f"input{i}" for i in range(len(example))]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, tuple(example), str(path), dynamo=False, opset_version=17, input_names=names
        )
    return path


def onnxruntime_session(path: Path, threads: int):
    """A CPU session with every graph optimisation, ``threads`` intra-op threads, sequential execution."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _onnx_path(
    module: nn.Module, inputs: Sequence[torch.Tensor], mask_input: int | None, workdir: Path | None
):
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        session = onnxruntime_session(
            export_onnx(module, inputs, Path(tmp) / "model.onnx", mask_input), threads
        )
    # the exporter drops inputs the graph does not use (all-in-one ignores the attention mask)
    used = {i.name for i in session.get_inputs()}

    def run(*args):
        feed = {f"input{i}": a.numpy() for i, a in enumerate(args) if f"input{i}" in used}
        return tuple(torch.from_numpy(o) for o in session.run(None, feed))

    return run


def prepare(
    name: str,
    model: nn.Module,
    inputs: Sequence[torch.Tensor],
    mask_input: int | None = None,
    workdir: Path | None = None,
) -> PreparedPath:
    """Make path ``name`` ready for ``inputs``' shapes (exported or compiled, and run once).

    ``mask_input``: which input is an attention mask (see ``export_onnx``); ``workdir``:
    where the ONNX file is written for the moment it takes to load it.
    """
    if name not in PATHS:
        raise ValueError(f"unknown inference path '{name}'; known: {', '.join(PATHS)}")
    module = TupleOutput(model).eval()
    start = time.perf_counter()
    if name in ("fp32_eager", "bf16_autocast"):
        run = _torch_path(module, bf16=name == "bf16_autocast")
    elif name in ("compile_fp32", "compile_bf16"):
        compiled = torch.compile(module, dynamic=False)
        run = _torch_path(compiled, bf16=name == "compile_bf16", freeze=True)
    else:
        run = _onnx_path(module, inputs, mask_input, workdir)
    outputs = run(*inputs)  # compiles, or builds oneDNN primitives / the session's buffers
    return PreparedPath(name=name, run=run, setup_s=time.perf_counter() - start, outputs=outputs)
