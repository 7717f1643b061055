"""Which CUDA the driver supports, which the cuda-python binding was built for, and whether they fit.

cuda-python's major.minor is the CUDA version it was built for. Its runtime calls need a driver
of the same CUDA major or newer: cuda-python 13.x on a CUDA 12 driver (< 580, e.g. JetPack 6)
returns ``cudaErrorInsufficientDriver`` (35) from every call, the same code it returns where there
is no driver at all. A 12.x binding runs on any CUDA 12 driver (>= 525) through CUDA's minor
version compatibility on desktop and data-centre GPUs; NVIDIA documents that compatibility for
those drivers, not for Jetson's L4T driver, so on a Jetson the binding should match JetPack's CUDA
(12.6 on JetPack 6). :func:`binding_verdict` turns that into a verdict and the exact command to run.

The driver's version is read from ``libcuda`` with ``ctypes`` (``cuDriverGetVersion`` needs no
``cuInit`` and no binding), so a binding that is too new cannot hide it. Nothing here touches
TensorRT, and nothing raises: problems come back as text.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.metadata
import platform
import sys
from dataclasses import dataclass
from typing import Any, Callable

OK, FAIL, WARN, SKIP = "ok", "fail", "warn", "skip"

#: cuda-python version range per machine, as in pyproject.toml's ``tensorrt`` extra (a test keeps
#: them equal): aarch64 is JetPack 6 in practice (CUDA 12.6); elsewhere any 12.x from 12.6 on.
PINS = {"default": ">=12.6,<13", "aarch64": ">=12.6,<12.7"}
INSUFFICIENT_DRIVER = 35  # cudaErrorInsufficientDriver
NO_DEVICE = 100  # cudaErrorNoDevice


def pin_for(machine: str | None = None) -> str:
    machine = (machine or platform.machine()).lower()
    return PINS["aarch64"] if machine in ("aarch64", "arm64") else PINS["default"]


def fix_command(machine: str | None = None) -> str:
    """The pip command that installs the cuda-python this machine should have."""
    return f'pip install "cuda-python{pin_for(machine)}"'


def cuda_version_text(version: int | None) -> str:
    """``12060`` → ``"12.6"`` (CUDA's integer encoding: 1000 × major + 10 × minor)."""
    if not version:
        return "none"
    return f"{version // 1000}.{(version % 1000) // 10}"


def _major_minor(text: str | None) -> tuple[int, int] | None:
    parts = (text or "").split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        return None


def driver_cuda_version(loader: Callable[[str], Any] = ctypes.CDLL) -> tuple[int | None, str]:
    """``(version, "")`` of the CUDA the installed driver supports (``12060`` = 12.6), or ``(None, why)``."""
    names = ("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so")
    problems = []
    for name in names:
        try:
            lib = loader(name)
        except OSError:
            problems.append(f"{name} does not load")
            continue
        value = ctypes.c_int(0)
        try:
            rc = lib.cuDriverGetVersion(ctypes.byref(value))
        except Exception as exc:  # a broken or foreign library must read as "no driver"
            problems.append(f"{name}: cuDriverGetVersion failed ({exc})")
            continue
        if rc == 0 and value.value > 0:
            return int(value.value), ""
        problems.append(f"{name}: cuDriverGetVersion returned error {rc}")
    return None, "none found (" + "; ".join(problems)[:300] + ")"


@dataclass(frozen=True)
class Binding:
    """The cuda-python runtime module that imports here (``rt`` None when none does)."""

    module: str
    version: str | None
    rt: Any
    error: str = ""


def _binding_version(module: str) -> str | None:
    top = sys.modules.get("cuda.bindings") if module.startswith("cuda.bindings") else None
    if top is not None and getattr(top, "__version__", None):
        return str(top.__version__)
    for dist in ("cuda-bindings", "cuda-python"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def import_binding() -> Binding:
    """Import cuda-python's runtime API (``cuda.bindings.runtime``, else the older ``cuda.cudart``).

    Importing it needs no driver; its calls then report the driver's absence as error codes.
    """
    errors = []
    for module in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            rt = importlib.import_module(module)
        except Exception as exc:  # ImportError, or a broken install
            errors.append(f"{module}: {exc}")
            continue
        return Binding(module, _binding_version(module), rt)
    return Binding("", None, None, "; ".join(errors))


def _code(err: Any) -> int:
    return int(getattr(err, "value", err))


def probe_gpu(rt: Any) -> dict[str, Any]:
    """Device count, and name/compute capability/memory of the current device, from the binding.

    Returns ``{"count": 0, "code": …, "error": …}`` when ``cudaGetDeviceCount`` fails (no driver,
    a binding newer than the driver, no device) instead of raising.
    """
    try:
        err, count = rt.cudaGetDeviceCount()[:2]
        if _code(err) != 0:
            return {"count": 0, "code": _code(err), "error": f"cudaGetDeviceCount: {getattr(err, 'name', err)}"}
        if not count:
            return {"count": 0, "code": NO_DEVICE, "error": "cudaGetDeviceCount reports 0 devices"}
        err, dev = rt.cudaGetDevice()[:2]
        if _code(err) != 0:
            return {"count": int(count), "code": _code(err), "error": f"cudaGetDevice: {getattr(err, 'name', err)}"}
        err, prop = rt.cudaGetDeviceProperties(dev)[:2]
        if _code(err) != 0:
            return {"count": int(count), "code": _code(err),
                    "error": f"cudaGetDeviceProperties: {getattr(err, 'name', err)}"}
    except Exception as exc:  # a broken binding must read as "no GPU", never crash the report
        return {"count": 0, "code": -1, "error": f"CUDA probe failed: {exc}"}
    raw = prop.name
    name = raw.split(b"\0", 1)[0].decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray)) else str(raw)
    return {"count": int(count), "code": 0, "error": "", "device": int(dev), "name": name.strip(),
            "compute_capability": f"{prop.major}.{prop.minor}",
            "memory_mb": round(int(getattr(prop, "totalGlobalMem", 0)) / 2**20),
            "integrated": bool(getattr(prop, "integrated", 0))}


def binding_verdict(binding_version: str | None, driver: int | None, jetson: bool, probe_code: int = 0,
                    machine: str | None = None) -> tuple[str, str, str]:
    """``(status, message, fix)`` for a cuda-python version against the driver's CUDA version.

    Args:
        binding_version: cuda-python's package version (``"13.0.1"``), None when not installed.
        driver: the driver's CUDA version (``12060``), None when no driver is found.
        jetson: the machine is a Jetson (minor version compatibility not documented there).
        probe_code: the error code ``cudaGetDeviceCount`` returned (0 when it worked).
        machine: ``platform.machine()`` for the fix command (default: this machine's).
    """
    fix = fix_command("aarch64" if jetson else machine)
    have = _major_minor(binding_version)
    if binding_version is None or have is None:
        return SKIP, "cuda-python is not installed", fix
    if not driver:
        return SKIP, f"cuda-python {binding_version}; no NVIDIA driver to check it against", ""
    bmaj, bmin = have
    dmaj, dmin = driver // 1000, (driver % 1000) // 10
    built, supports = f"cuda-python {binding_version} (CUDA {bmaj}.{bmin})", f"the driver supports CUDA {dmaj}.{dmin}"
    if bmaj > dmaj:
        need = " (cuda-python 13 needs driver 580 or newer)" if bmaj == 13 else ""
        return (FAIL, f"{built} is newer than the driver: {supports}{need}; every CUDA call fails with "
                      "cudaErrorInsufficientDriver", fix)
    if probe_code == INSUFFICIENT_DRIVER:
        return FAIL, f"{built}: cudaGetDeviceCount says the driver is too old ({supports})", fix
    if bmaj < 12:
        return WARN, f"{built} is older than jamsdk's range (12.6 or newer); {supports}", fix
    if bmaj == dmaj and bmin > dmin:
        if jetson:
            return (WARN, f"{built} is newer than JetPack's CUDA {dmaj}.{dmin}; CUDA minor version compatibility "
                          "is not documented for Jetson, match the binding to JetPack", fix)
        return OK, f"{built} on a driver for CUDA {dmaj}.{dmin} (runs through CUDA minor version compatibility)", ""
    return OK, f"{built}; {supports}", ""


__all__ = ["Binding", "PINS", "binding_verdict", "cuda_version_text", "driver_cuda_version", "fix_command",
           "import_binding", "pin_for", "probe_gpu"]
