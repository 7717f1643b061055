"""What machine a benchmark ran on: CPU, GPU, driver, library versions and, on a Jetson, its power state.

Read only: nothing here changes a setting. The Jetson part (power mode, clocks, the advice to pin
them) is :mod:`jamsdk.runtime.jetson`; ``tegrastats`` beside a benchmark is
:mod:`jamsdk.runtime.tegrastats`.

Torch-free and cheap: library versions come from package metadata (nothing heavy is imported), the
GPU from the runtime's cuda-python probe, the driver from ``/proc/driver/nvidia/version`` (else
``nvidia-smi``). Every function returns partial information instead of raising.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import sys
from typing import Any


from jamsdk.backend_registry import ROWS
from jamsdk.runtime._query import Runner, read_text, run_command
from jamsdk.runtime.jetson import describe_jetson, is_jetson, jetson_info

# Distribution names to ask package metadata, per import name (Jetson and GPU builds rename them);
# the backends' from their rows.
_DISTRIBUTIONS = {
    **{row.package: row.distributions for row in ROWS if row.distributions},
    "cuda.bindings": ("cuda-bindings", "cuda-python"),
}
#: the backends' packages whose versions a report shows, by name
_BACKEND_PACKAGES = tuple(sorted(row.package for row in ROWS))


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model name (``/proc/cpuinfo``; ARM kernels name it differently), else ``platform``'s."""
    text = read_text("/proc/cpuinfo") if cpuinfo is None else cpuinfo
    if text:
        for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
            match = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
            if match and match.group(1).strip():
                return match.group(1).strip()
    return platform.processor() or platform.machine() or "unknown"


#: CPU features that decide which kernels (and INT8/BF16 speed-ups) a CPU runtime can use
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "asimddp")


def cpu_flags(cpuinfo: str | None = None) -> list[str]:
    """Which of :data:`CPU_FLAGS` the CPU has (``/proc/cpuinfo``'s flags/Features line; [] elsewhere)."""
    text = read_text("/proc/cpuinfo") if cpuinfo is None else cpuinfo
    match = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", text or "", re.MULTILINE)
    have = set(match.group(1).split()) if match else set()
    return [flag for flag in CPU_FLAGS if flag in have]


def package_version(module: str) -> str | None:
    """Version of an installed package without importing it (the module's own when already imported)."""
    loaded = sys.modules.get(module)
    if loaded is not None and getattr(loaded, "__version__", None):
        return str(loaded.__version__)
    for dist in _DISTRIBUTIONS.get(module, (module,)):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def parse_driver_version(text: str) -> str | None:
    """NVIDIA driver version from ``/proc/driver/nvidia/version`` text (``NVRM version: … 550.54.15 …``)."""
    match = re.search(r"Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)", text)
    return match.group(1) if match else None


def nvidia_driver(run: Runner = run_command) -> str | None:
    text = read_text("/proc/driver/nvidia/version")
    version = parse_driver_version(text) if text else None
    if version is None:
        out = run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
        if out is not None and out[0] == 0 and out[1].strip():
            version = out[1].strip().splitlines()[0].strip()
    return version


def gpu() -> dict[str, Any]:
    """``{"name", "compute_capability"}`` of the visible GPU, or ``{"name": None, "why": …}``."""
    from jamsdk.runtime import _cuda  # numpy-only module; probing imports cuda-python when installed

    info = _cuda.gpu_info()
    if info is None:
        return {"name": None, "why": _cuda.gpu_problem()}
    return {"name": info.name, "compute_capability": info.compute_capability, "device": info.device}


def machine_info(run: Runner = run_command, probe_gpu: bool = True) -> dict[str, Any]:
    """CPU, GPU, driver, Python and library versions, and :func:`jetson_info` (None off a Jetson)."""
    import cv2

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": package_version("numpy"),  # read, not imported: doctor reports a broken numpy
        "opencv": cv2.__version__,
        "cpu_flags": cpu_flags(),
        **{package: package_version(package) for package in _BACKEND_PACKAGES},
        "cuda_python": package_version("cuda.bindings"),
        "gpu": gpu() if probe_gpu else None,
        "nvidia_driver": None,
    }
    if probe_gpu and (info["gpu"] or {}).get("name"):
        info["nvidia_driver"] = nvidia_driver(run)
    info["jetson"] = jetson_info(run=run) if is_jetson() else None
    return info


def describe_machine(info: dict[str, Any]) -> list[str]:
    """A few human lines about :func:`machine_info`'s result."""
    gpu_info = info.get("gpu") or {}
    lines = [f"CPU: {info['cpu']} ({info['logical_cpus']} logical); {info['platform']}; Python {info['python']}"]
    if info.get("cpu_flags") is not None:
        lines.append("CPU flags: " + (" ".join(info["cpu_flags"]) or "none of " + ", ".join(CPU_FLAGS)))
    if gpu_info.get("name"):
        lines.append(f"GPU: {gpu_info['name']} (compute capability {gpu_info['compute_capability']}), "
                     f"driver {info.get('nvidia_driver') or 'unknown'}")
    else:
        why = str(gpu_info.get("why") or "not probed")
        lines.append(f"GPU: none ({why if len(why) <= 80 else why[:77] + '...'})")
    lines.append("".join(f"{package} {info.get(package) or '-'}, " for package in _BACKEND_PACKAGES)
                 + f"cuda-python {info.get('cuda_python') or '-'}, numpy {info['numpy']}, opencv {info['opencv']}")
    jet = info.get("jetson")
    if jet:
        lines.append(describe_jetson(jet))
    return lines


__all__ = ["CPU_FLAGS", "cpu_flags", "cpu_model", "describe_machine", "gpu", "machine_info", "nvidia_driver",
           "package_version", "parse_driver_version"]
