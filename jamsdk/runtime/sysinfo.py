"""What machine a benchmark ran on: CPU, GPU, driver, library versions and, on a Jetson, its power state.

Read only: nothing here changes a setting. On a Jetson the power mode (``nvpmodel -q``) and whether
``jetson_clocks`` pinned the clocks decide the numbers, so :func:`jetson_info` records both and
:func:`jetson_advice` gives the commands a user can run to pin them (it never runs them).
:class:`Tegrastats` runs ``tegrastats`` beside a benchmark and summarises RAM, GPU load and power.

Torch-free and cheap: library versions come from package metadata (nothing heavy is imported), the
GPU from the runtime's cuda-python probe, the driver from ``/proc/driver/nvidia/version`` (else
``nvidia-smi``). Every function returns partial information instead of raising.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

#: ``run(argv) -> (returncode, stdout + stderr)``, or None when the program does not exist
Runner = Callable[[Sequence[str]], "tuple[int, str] | None"]

# Distribution names to ask package metadata, per import name (Jetson and GPU builds rename them).
_DISTRIBUTIONS = {
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino"),
    "tensorrt": ("tensorrt", "tensorrt-cu12", "tensorrt-cu13", "tensorrt-cu12-bindings", "tensorrt-cu13-bindings"),
    "cuda.bindings": ("cuda-bindings", "cuda-python"),
}


def run_command(argv: Sequence[str], timeout: float = 10.0) -> tuple[int, str] | None:
    """Run a read-only query command; ``(returncode, output)``, or None when it is not installed."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return -1, str(exc)
    return done.returncode, (done.stdout or "") + (done.stderr or "")


def _read(path: str | os.PathLike[str]) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model name (``/proc/cpuinfo``; ARM kernels name it differently), else ``platform``'s."""
    text = _read("/proc/cpuinfo") if cpuinfo is None else cpuinfo
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
    text = _read("/proc/cpuinfo") if cpuinfo is None else cpuinfo
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
    text = _read("/proc/driver/nvidia/version")
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


# -- Jetson ------------------------------------------------------------------------------------------

def parse_l4t_release(text: str) -> str | None:
    """``# R36 (release), REVISION: 4.3, …`` (``/etc/nv_tegra_release``) → ``"36.4.3"``."""
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)(?:\.(\d+))?", text)
    if not match:
        return None
    major, minor, patch = match.group(1), match.group(2), match.group(3) or "0"
    return f"{major}.{minor}.{patch}"


def parse_nvpmodel(text: str) -> dict[str, Any] | None:
    """``nvpmodel -q`` output → ``{"name": "MAXN_SUPER", "id": 2}`` (id None when not printed)."""
    match = re.search(r"NV Power Mode\s*:\s*(\S.*?)\s*$", text, re.MULTILINE)
    if not match:
        return None
    rest = text[match.end():]
    mode_id = re.search(r"^\s*(\d+)\s*$", rest, re.MULTILINE)
    return {"name": match.group(1), "id": int(mode_id.group(1)) if mode_id else None}


_POWER_MODEL = re.compile(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=([^\s>]+)\s*>")


def parse_nvpmodel_conf(text: str) -> list[dict[str, Any]]:
    """The power modes ``/etc/nvpmodel.conf`` defines: ``[{"id": 0, "name": "15W"}, …]`` in file order."""
    return [{"id": int(i), "name": name} for i, name in _POWER_MODEL.findall(text)]


def _version(text: str | None) -> tuple[int, ...]:
    return tuple(int(v) for v in re.findall(r"\d+", text or ""))


def _watts(name: str) -> float:
    match = re.search(r"(\d+(?:\.\d+)?)\s*W\b", name, re.IGNORECASE)
    return float(match.group(1)) if match else -1.0


def highest_power_mode(info: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str]:
    """``({"id", "name"}, why)`` of the Jetson's highest power mode, or ``(None, why)`` when unknown.

    The modes the module's ``/etc/nvpmodel.conf`` defines decide (a MAXN mode, else the most
    watts). Without that file, one fact is built in: an Orin Nano on JetPack 6.0/6.1 (L4T before
    36.4.3) has no MAXN mode; its highest is mode 0 (15W on the 8 GB module, 10W on the 4 GB one).
    JetPack 6.2 added MAXN_SUPER (and 25W) to the Orin Nano and Orin NX.
    """
    if not info:
        return None, "not a Jetson"
    modes = info.get("nvpmodel_modes") or []
    if modes:
        maxn = [m for m in modes if "MAXN" in m["name"].upper()]
        if maxn:
            best = next((m for m in maxn if "SUPER" in m["name"].upper()), maxn[0])
            return best, "from /etc/nvpmodel.conf"
        best = max(modes, key=lambda m: _watts(m["name"]))
        if _watts(best["name"]) > 0:
            return best, "from /etc/nvpmodel.conf (no MAXN mode on this module)"
        return None, "/etc/nvpmodel.conf names no MAXN or watt mode"
    model = str(info.get("model") or "")
    l4t = _version(info.get("l4t"))
    if "Orin Nano" in model and l4t and l4t < (36, 4, 3):
        return ({"id": 0, "name": "15W (8 GB) / 10W (4 GB)"},
                f"L4T {info.get('l4t')} (JetPack 6.0/6.1) has no MAXN mode on an Orin Nano; JetPack 6.2 adds "
                "MAXN_SUPER")
    return None, "no /etc/nvpmodel.conf to read the modes from"


def _freqs(line: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"(MinFreq|MaxFreq|CurrentFreq)=(\d+)", line)}


def parse_jetson_clocks(text: str) -> dict[str, Any] | None:
    """``jetson_clocks --show`` → CPU/GPU/EMC min/max/current and whether the clocks are pinned.

    ``jetson_clocks`` pins each clock by raising its minimum to its maximum, so ``"on"`` is True
    when that holds for the GPU and every online CPU (None when the output has neither).
    """
    cpus, gpu_freq, emc = [], None, None
    for line in text.splitlines():
        line = line.strip()
        if re.match(r"cpu\d+:", line) and "Online=1" in line:
            cpus.append(_freqs(line))
        elif line.startswith("GPU ") or line.startswith("GPU:"):
            gpu_freq = _freqs(line)
        elif line.startswith("EMC "):
            emc = _freqs(line)
    if not cpus and not gpu_freq:
        return None

    def pinned(f: dict[str, int] | None) -> bool | None:
        if not f or "MinFreq" not in f or "MaxFreq" not in f:
            return None
        return f["MinFreq"] == f["MaxFreq"]

    checks = [pinned(f) for f in cpus] + [pinned(gpu_freq)]
    known = [c for c in checks if c is not None]
    return {"on": all(known) if known else None, "gpu": gpu_freq, "emc": emc,
            "cpus_pinned": sum(bool(c) for c in checks[:-1]), "cpus_online": len(cpus)}


def clocks_from_sysfs(root: str | os.PathLike[str] = "/") -> dict[str, Any] | None:
    """The same decision as :func:`parse_jetson_clocks` from sysfs (readable without root)."""
    root = Path(root)
    cpus = []
    for folder in sorted((root / "sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq")):
        lo, hi = _read(folder / "scaling_min_freq"), _read(folder / "scaling_max_freq")
        if lo and hi and lo.strip().isdigit() and hi.strip().isdigit():
            cpus.append(int(lo) == int(hi))
    gpu_freq = None
    for folder in sorted((root / "sys/class/devfreq").glob("*")):
        if "gpu" not in folder.name and "gv11b" not in folder.name and "ga10b" not in folder.name:
            continue
        lo, hi, cur = (_read(folder / n) for n in ("min_freq", "max_freq", "cur_freq"))
        if lo and hi and lo.strip().isdigit() and hi.strip().isdigit():
            gpu_freq = {"MinFreq": int(lo), "MaxFreq": int(hi)}
            if cur and cur.strip().isdigit():
                gpu_freq["CurrentFreq"] = int(cur)
            break
    if not cpus and gpu_freq is None:
        return None
    checks = cpus + ([gpu_freq["MinFreq"] == gpu_freq["MaxFreq"]] if gpu_freq else [])
    return {"on": all(checks), "gpu": gpu_freq, "emc": None, "cpus_pinned": sum(cpus), "cpus_online": len(cpus)}


def is_jetson(root: str | os.PathLike[str] = "/") -> bool:
    return (Path(root) / "etc/nv_tegra_release").is_file()


def jetson_info(root: str | os.PathLike[str] = "/", run: Runner = run_command) -> dict[str, Any] | None:
    """L4T/JetPack release, module, power mode and clock state of a Jetson; None elsewhere.

    Nothing is changed: ``nvpmodel -q`` and ``jetson_clocks --show`` are queries (the latter often
    needs root; sysfs answers then). Failed queries are recorded with their output.
    """
    root = Path(root)
    release_text = _read(root / "etc/nv_tegra_release")
    if release_text is None:
        return None
    info: dict[str, Any] = {"l4t": parse_l4t_release(release_text), "jetpack": None, "model": None,
                            "nvpmodel": None, "nvpmodel_modes": None, "jetson_clocks": None, "problems": []}
    conf = _read(root / "etc/nvpmodel.conf")
    if conf:
        info["nvpmodel_modes"] = parse_nvpmodel_conf(conf) or None
    model = _read(root / "proc/device-tree/model")
    if model:
        info["model"] = model.replace("\x00", "").strip()
    out = run(["dpkg-query", "-W", "-f=${Version}", "nvidia-jetpack"])
    if out is not None and out[0] == 0 and out[1].strip():
        info["jetpack"] = out[1].strip().split("+")[0].split("-")[0]  # "6.2+b77" → "6.2"
    out = run(["nvpmodel", "-q"])
    if out is None:
        info["problems"].append("nvpmodel not found")
    else:
        info["nvpmodel"] = parse_nvpmodel(out[1])
        if info["nvpmodel"] is None:
            info["problems"].append(f"nvpmodel -q: {out[1].strip()[:200] or f'exit status {out[0]}'}")
    out = run(["jetson_clocks", "--show"])
    clocks = parse_jetson_clocks(out[1]) if out is not None and out[0] == 0 else None
    if clocks is not None:
        clocks["source"] = "jetson_clocks --show"
    else:
        if out is not None:
            info["problems"].append(f"jetson_clocks --show: {out[1].strip()[:200] or f'exit status {out[0]}'}")
        clocks = clocks_from_sysfs(root)
        if clocks is not None:
            clocks["source"] = "sysfs (min == max frequency)"
    info["jetson_clocks"] = clocks
    return info


def jetson_advice(info: dict[str, Any] | None) -> list[str]:
    """Commands that pin a Jetson's clocks for repeatable numbers (for the user to run; never run here)."""
    if info is None:
        return []
    lines = []
    mode = info.get("nvpmodel") or {}
    best, why = highest_power_mode(info)
    if best is not None:
        current_is_best = (mode.get("id") == best["id"] if mode.get("id") is not None
                           else str(mode.get("name", "")) in best["name"].split(" "))
        if not mode or not current_is_best:
            lines.append(f"sudo nvpmodel -m {best['id']}   # {best['name']}: this module's highest power mode "
                         f"({why}); may need a reboot")
    elif not mode or "MAXN" not in str(mode.get("name", "")).upper():
        # Unknown module or modes: no mode id can be named (ids differ per module and JetPack).
        lines.append("sudo nvpmodel -m <id of the highest power mode>   # MAXN/MAXN_SUPER where the module has one; "
                     "ids per module in /etc/nvpmodel.conf; may need a reboot")
    clocks = info.get("jetson_clocks") or {}
    if clocks.get("on") is not True:
        lines.append("sudo jetson_clocks                                  # pin CPU/GPU/EMC clocks to their maximum")
    return lines


# -- tegrastats --------------------------------------------------------------------------------------

_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_SWAP = re.compile(r"\bSWAP (\d+)/(\d+)MB")
_GR3D = re.compile(r"\bGR3D_FREQ (\d+)%(?:@\[?(\d+)(?:,\d+)*\]?)?")
_EMC = re.compile(r"\bEMC_FREQ (\d+)%")
_CPU = re.compile(r"\bCPU \[([^\]]*)\]")
# tegrastats prints -256C for a sensor that is switched off (CV0..CV2 on modules without those
# engines, for example): a marker, not a temperature.
OFFLINE_SENSOR_C = -200.0
_TEMP = re.compile(r"\b([A-Za-z][\w-]*)@(-?\d+(?:\.\d+)?)C\b")
# Rails, current/average: "VDD_IN 4820mW/4820mW" (JetPack 5/6), or without unit (JetPack 4, mW):
# "POM_5V_IN 1315/1315", "GPU 0/20". RAM/SWAP/IRAM carry MB/kB right after the number: not rails.
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)mW/(\d+)mW")
_RAIL_NO_UNIT = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)/(\d+)(?=\s|$)")


def parse_tegrastats(line: str) -> dict[str, Any] | None:
    """One ``tegrastats`` line → RAM, swap, CPU/GPU (GR3D) load, EMC load, temperatures, rail power.

    Returns None for a line without a ``RAM`` field (a banner or an error). Power is the current
    value of each rail in mW; frequencies in MHz.
    """
    ram = _RAM.search(line)
    if not ram:
        return None
    out: dict[str, Any] = {"ram_used_mb": int(ram.group(1)), "ram_total_mb": int(ram.group(2))}
    swap = _SWAP.search(line)
    if swap:
        out["swap_used_mb"] = int(swap.group(1))
    gr3d = _GR3D.search(line)
    if gr3d:
        out["gpu_load_percent"] = int(gr3d.group(1))
        if gr3d.group(2):
            out["gpu_mhz"] = int(gr3d.group(2))
    emc = _EMC.search(line)
    if emc:
        out["emc_load_percent"] = int(emc.group(1))
    cpu = _CPU.search(line)
    if cpu:
        loads = [int(m) for m in re.findall(r"(\d+)%", cpu.group(1))]
        if loads:
            out["cpu_load_percent"] = loads
    temps, offline = {}, []
    for name, value in _TEMP.findall(line):
        if name in ("GR3D_FREQ", "EMC_FREQ"):
            continue
        if float(value) <= OFFLINE_SENSOR_C:
            offline.append(name)
        else:
            temps[name] = float(value)
    if temps:
        out["temperature_c"] = temps
    if offline:
        out["temperature_offline"] = offline
    rails = {name: int(cur) for name, cur, _avg in _RAIL.findall(line) or _RAIL_NO_UNIT.findall(line)}
    if rails:
        out["power_mw"] = rails
    return out


def summarize_tegrastats(samples: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Peak RAM, mean/max GPU load, mean/max power per rail and max temperatures over ``samples``."""
    if not samples:
        return None

    def stat(values: list[float]) -> dict[str, float] | None:
        return {"mean": float(np.mean(values)), "max": float(np.max(values))} if values else None

    out: dict[str, Any] = {
        "samples": len(samples),
        "ram_used_mb": stat([s["ram_used_mb"] for s in samples]),
        "ram_total_mb": samples[0]["ram_total_mb"],
        "gpu_load_percent": stat([s["gpu_load_percent"] for s in samples if "gpu_load_percent" in s]),
        "gpu_mhz": stat([s["gpu_mhz"] for s in samples if "gpu_mhz" in s]),
        "cpu_load_percent": stat([float(np.mean(s["cpu_load_percent"])) for s in samples if "cpu_load_percent" in s]),
    }
    rails = sorted({r for s in samples for r in s.get("power_mw", {})})
    out["power_mw"] = {r: stat([s["power_mw"][r] for s in samples if r in s.get("power_mw", {})]) for r in rails}
    sensors = sorted({t for s in samples for t in s.get("temperature_c", {})})
    out["temperature_c_max"] = {t: max(s["temperature_c"][t] for s in samples if t in s.get("temperature_c", {}))
                                for t in sensors}
    offline = sorted({t for s in samples for t in s.get("temperature_offline", [])})
    if offline:
        out["temperature_offline"] = offline
    return out


class Tegrastats:
    """``tegrastats --interval MS`` in a subprocess for the duration of a ``with`` block.

    Where tegrastats is not installed the block runs without it (:attr:`available` False). Lines
    are parsed by :func:`parse_tegrastats`; :meth:`summary` summarises them.
    """

    def __init__(self, interval_ms: int = 500, command: str = "tegrastats"):
        self.interval_ms = int(interval_ms)
        self.command = command
        self.available = shutil.which(command) is not None
        self.lines: list[str] = []
        self.error = "" if self.available else f"{command} not found"
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> "Tegrastats":
        if self.available:
            try:
                self._proc = subprocess.Popen([self.command, "--interval", str(self.interval_ms)],
                                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            except OSError as exc:
                self.available, self.error = False, f"{self.command}: {exc}"
                return self
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def __exit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=3)
        if not self.samples() and self.lines:
            self.error = f"{self.command} printed no parsable line: {self.lines[0][:200]}"

    def samples(self) -> list[dict[str, Any]]:
        return [s for s in map(parse_tegrastats, self.lines) if s is not None]

    def summary(self) -> dict[str, Any] | None:
        out = summarize_tegrastats(self.samples())
        if out is not None:
            out["interval_ms"] = self.interval_ms
        return out


# -- everything --------------------------------------------------------------------------------------

def machine_info(run: Runner = run_command, probe_gpu: bool = True) -> dict[str, Any]:
    """CPU, GPU, driver, Python and library versions, and :func:`jetson_info` (None off a Jetson)."""
    import cv2

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "cpu_flags": cpu_flags(),
        "onnxruntime": package_version("onnxruntime"),
        "openvino": package_version("openvino"),
        "tensorrt": package_version("tensorrt"),
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
    lines.append(f"onnxruntime {info.get('onnxruntime') or '-'}, openvino {info.get('openvino') or '-'}, "
                 f"tensorrt {info.get('tensorrt') or '-'}, "
                 f"cuda-python {info.get('cuda_python') or '-'}, numpy {info['numpy']}, opencv {info['opencv']}")
    jet = info.get("jetson")
    if jet:
        mode = jet.get("nvpmodel") or {}
        clocks = jet.get("jetson_clocks") or {}
        on = {True: "on", False: "off", None: "unknown"}[clocks.get("on")]
        power = mode.get("name") or "unknown"
        if mode.get("id") is not None:  # nvpmodel -q does not always print the id
            power += f" (id {mode['id']})"
        lines.append(f"Jetson: {jet.get('model') or 'unknown module'}, L4T {jet.get('l4t') or '?'}, "
                     f"JetPack {jet.get('jetpack') or '?'}; power mode {power}; jetson_clocks {on}"
                     + (f" (from {clocks['source']})" if clocks.get("source") else ""))
    return lines


__all__ = ["CPU_FLAGS", "Tegrastats", "clocks_from_sysfs", "cpu_flags", "cpu_model", "describe_machine", "gpu", "is_jetson", "jetson_advice",
           "highest_power_mode", "jetson_info", "machine_info", "nvidia_driver", "package_version",
           "parse_driver_version", "parse_jetson_clocks", "parse_l4t_release", "parse_nvpmodel",
           "parse_nvpmodel_conf", "parse_tegrastats", "run_command",
           "summarize_tegrastats"]
