"""What about this machine can make a stage give other numbers elsewhere: the facts a rerun is judged by.

Same seed, same machine, same command: the same numbers. Across machines, three things change floats:

- **The CPU's instruction set.** torch picks its vectorised kernels by the CPU's capability
  (``torch.backends.cpu.get_cpu_capability()``: DEFAULT, AVX2, AVX512, ...), and oneDNN/MKL pick theirs
  by the extensions (AVX512-BF16, VNNI, AMX); other kernels sum in another order.
- **The thread count.** A reduction split over more threads adds in another order (part of a stage's
  identity, see ``experiments/plan.py``).
- **Library versions.** torch, its MKL and oneDNN, numpy, and the decoder (PyAV) for video frames.

``facts()`` collects them in the process that ran a stage (where torch is loaded); the runner tags each
stage run with them and the report header prints ``describe(facts)``.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

# CPU flags that change which kernels oneDNN/MKL choose (names as /proc/cpuinfo writes them)
KERNEL_FLAGS = {
    "avx512_bf16": "AVX512-BF16",
    "avx512_vnni": "AVX512-VNNI",
    "avx512_fp16": "AVX512-FP16",
    "avx_vnni": "AVX-VNNI",
    "amx_bf16": "AMX-BF16",
    "amx_int8": "AMX-INT8",
}
# libraries whose version can change a stage's numbers (distribution name -> label)
LIBRARIES = {"torch": "torch", "numpy": "numpy", "timm": "timm", "transformers": "transformers", "av": "PyAV"}


def cpu_info() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    info: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


def cpu_model(info: dict[str, str] | None = None) -> str:
    """``AMD EPYC (family 25, model 17)``: the model name, with family/model numbers that tell two CPUs
    of one marketing name apart (virtual machines often show only "AMD EPYC")."""
    info = cpu_info() if info is None else info
    name = info.get("model name") or platform.processor() or platform.machine() or "unknown CPU"
    name = re.sub(r"\s+", " ", name)
    if "cpu family" in info and "model" in info:
        name += f" (family {info['cpu family']}, model {info['model']})"
    return name


def kernel_flags(info: dict[str, str] | None = None) -> list[str]:
    info = cpu_info() if info is None else info
    flags = set(info.get("flags", "").split())
    return [label for flag, label in KERNEL_FLAGS.items() if flag in flags]


def facts(threads: int | None = None) -> dict[str, Any]:
    """This process's facts: CPU, core count, torch's kernel level and the kernel-relevant extensions
    (when the stage loaded torch), torch's thread count (``threads`` when it did not), and the versions
    of the numeric libraries installed (read from their metadata: nothing is imported here)."""
    info = cpu_info()
    out: dict[str, Any] = {
        "cpu": cpu_model(info),
        "cores": os.cpu_count() or 0,
        "cpu_flags": kernel_flags(info),
        "python": platform.python_version(),
        "versions": {},
    }
    torch = sys.modules.get("torch")
    if threads is not None:
        out["threads"] = threads
    if torch is not None:
        out["isa"] = torch.backends.cpu.get_cpu_capability()
        out["threads"] = torch.get_num_threads()
        out["versions"]["torch"] = torch.__version__
        out["versions"].update(_torch_backends(torch))
        if torch.cuda.is_available():
            out["gpu"] = torch.cuda.get_device_name(0)
    for dist, label in LIBRARIES.items():
        if label not in out["versions"]:
            try:
                out["versions"][label] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                pass
    return out


def _torch_backends(torch) -> dict[str, str]:
    """The MKL and oneDNN versions torch was built with (they choose kernels by the CPU too)."""
    try:
        text = torch.__config__.parallel_info()
    except Exception:  # an old or unusual build: the torch version stands for them
        return {}
    found = {}
    mkl = re.search(r"Math Kernel Library Version ([\d.]+)", text)
    dnn = re.search(r"MKL-DNN v([\d.]+)", text)
    if mkl:
        found["MKL"] = mkl.group(1)
    if dnn:
        found["oneDNN"] = dnn.group(1)
    return found


def describe(f: dict[str, Any]) -> str:
    """One line for a report header: ``AMD EPYC (family 25, model 17) x2; kernels AVX512 (+AVX512-BF16,
    AVX512-VNNI); 1 torch thread; torch 2.5.1, MKL 2024.2, oneDNN 3.5.3, numpy 2.1.3``."""
    parts = [f"{f.get('cpu', 'unknown CPU')} x{f.get('cores', '?')}"]
    if f.get("gpu"):
        parts[0] += f", {f['gpu']}"
    flags = f.get("cpu_flags") or []
    if f.get("isa"):
        parts.append(f"kernels {f['isa']}" + (f" (+{', '.join(flags)})" if flags else ""))
    elif flags:
        parts.append(f"CPU extensions {', '.join(flags)}")
    if f.get("threads") is not None:
        n = int(f["threads"])
        parts.append(f"{n} torch thread{'s' if n != 1 else ''}")
    versions = f.get("versions") or {}
    if versions:
        parts.append(", ".join(f"{k} {v}" for k, v in versions.items()))
    return "; ".join(parts)


def tags(f: dict[str, Any], prefix: str) -> dict[str, str]:
    """The facts as MLflow tags (``<prefix>cpu``, ``<prefix>isa``, ...), for filtering runs by machine."""
    out = {
        f"{prefix}hardware": describe(f),
        f"{prefix}cpu": str(f.get("cpu", "")),
        f"{prefix}cpu_flags": ",".join(f.get("cpu_flags") or []),
        f"{prefix}python": str(f.get("python", "")),
    }
    if f.get("isa"):
        out[f"{prefix}isa"] = str(f["isa"])
    if f.get("threads") is not None:
        out[f"{prefix}threads"] = str(f["threads"])
    for name, version in (f.get("versions") or {}).items():
        out[f"{prefix}version.{name}"] = str(version)
    return out
