"""Costs: parameters, FLOPs (fvcore, one multiply-add = one FLOP), latency and memory."""

from evilm.profiling.cost_table import CostConfig, measure_all, measure_model
from evilm.profiling.flops import fvcore_flops, sdpa_flop_handle, torch_flops
from evilm.profiling.latency import measure_latency
from evilm.profiling.memory import peak_memory_mib
from evilm.profiling.params import count_parameters, parameters_by_module

__all__ = [
    "CostConfig",
    "count_parameters",
    "fvcore_flops",
    "measure_all",
    "measure_latency",
    "measure_model",
    "parameters_by_module",
    "peak_memory_mib",
    "sdpa_flop_handle",
    "torch_flops",
]
