"""Peak memory of one inference pass, measured in a fresh process.

CPU tensors are not tracked by an allocator we can query, and a long-lived process
keeps freed memory resident, so each model is measured in its own interpreter:
the growth of the peak resident set (``VmHWM`` in ``/proc/self/status``; unlike
``ru_maxrss`` it is not inherited from the parent across fork/exec) across one
forward pass, on top of the loaded model and its inputs. Linux only.

    python -m evilm.profiling.memory MODEL [PRESET]   # prints JSON
"""

from __future__ import annotations

import json
import subprocess
import sys


def peak_memory_mib(model_key: str, preset: str = "paper") -> float:
    """Extra peak resident memory (MiB) of one batch-1 forward pass of ``model_key``."""
    out = subprocess.run(
        [sys.executable, "-m", "evilm.profiling.memory", model_key, preset],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]


def _high_water_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise OSError("VmHWM not found in /proc/self/status")


def _measure_here(model_key: str, preset: str) -> float:
    import torch

    from evilm.profiling.inputs import build_with_inputs

    torch.set_num_threads(1)
    model, inputs = build_with_inputs(model_key, preset)
    before = _high_water_kib()
    with torch.inference_mode():
        model.eval()(*inputs)
    after = _high_water_kib()
    return (after - before) / 1024


if __name__ == "__main__":
    key, preset = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "paper")
    print(json.dumps({"model": key, "peak_mib": _measure_here(key, preset)}))
