"""Costs: parameters, FLOPs (fvcore, one multiply-add = one FLOP), latency through each inference path, memory.

- ``inputs``: the models Table 1 compares, by key, and the dummy inputs their costs are quoted for;
- ``params``, ``flops``: counts; ``memory``: peak memory of one pass, in a fresh process;
- ``latency``: wall-time helpers (one model; several callables in interleaved rounds);
- ``paths``: the CPU inference paths (fp32 / bf16 eager, torch.compile, ONNX Runtime), each
  checked against fp32 eager within a stated tolerance;
- ``deployment``: every model through every path at several batch sizes, in one run;
- ``retrieval_speed``: retrieval's unimodal encoders (videos/s, texts/s) and the ranking time;
- ``breakdown``: where the time goes, per model part and kind of operator;
- ``cost_table``: the ``cost`` stage (Table 1's cost columns); ``python -m evilm.profiling`` prints it.
"""

from evilm.profiling.breakdown import profile_breakdown
from evilm.profiling.cost_table import CostConfig, measure_all, measure_model
from evilm.profiling.deployment import Comparison, DeploymentConfig, compare_paths
from evilm.profiling.flops import fvcore_flops, sdpa_flop_handle, torch_flops
from evilm.profiling.inputs import build_model, build_with_inputs, dummy_inputs, inputs_for
from evilm.profiling.latency import interleaved_latency, measure_latency
from evilm.profiling.memory import peak_memory_mib
from evilm.profiling.params import count_parameters, parameters_by_module
from evilm.profiling.paths import PATHS, TOLERANCES, compare_outputs, prepare
from evilm.profiling.retrieval_speed import encode_throughput, ranking_seconds

__all__ = [
    "PATHS",
    "TOLERANCES",
    "Comparison",
    "CostConfig",
    "DeploymentConfig",
    "build_model",
    "build_with_inputs",
    "compare_outputs",
    "compare_paths",
    "count_parameters",
    "dummy_inputs",
    "encode_throughput",
    "fvcore_flops",
    "inputs_for",
    "interleaved_latency",
    "measure_all",
    "measure_latency",
    "measure_model",
    "parameters_by_module",
    "peak_memory_mib",
    "prepare",
    "profile_breakdown",
    "ranking_seconds",
    "sdpa_flop_handle",
    "torch_flops",
]
