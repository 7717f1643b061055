"""``tegrastats`` beside a benchmark: a Jetson's RAM, CPU/GPU load, temperatures and rail power.

:class:`Tegrastats` runs ``tegrastats --interval MS`` for the duration of a ``with`` block (where
it is installed), :func:`parse_tegrastats` reads its lines (JetPack 4 to 6 formats) and
:func:`summarize_tegrastats` gives peaks and means for a benchmark's report.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from typing import Any, Sequence

import numpy as np

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
