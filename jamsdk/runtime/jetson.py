"""A Jetson's release, module, power mode and clock state, and the commands that would pin them.

Read only: nothing here changes a setting. On a Jetson the power mode (``nvpmodel -q``) and whether
``jetson_clocks`` pinned the clocks decide a benchmark's numbers, so :func:`jetson_info` records
both and :func:`jetson_advice` gives the commands a user can run to pin them (it never runs them).
Every function returns partial information instead of raising.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from jamsdk.runtime._query import Runner, read_text, run_command


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
        lo, hi = read_text(folder / "scaling_min_freq"), read_text(folder / "scaling_max_freq")
        if lo and hi and lo.strip().isdigit() and hi.strip().isdigit():
            cpus.append(int(lo) == int(hi))
    gpu_freq = None
    for folder in sorted((root / "sys/class/devfreq").glob("*")):
        if "gpu" not in folder.name and "gv11b" not in folder.name and "ga10b" not in folder.name:
            continue
        lo, hi, cur = (read_text(folder / n) for n in ("min_freq", "max_freq", "cur_freq"))
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
    release_text = read_text(root / "etc/nv_tegra_release")
    if release_text is None:
        return None
    info: dict[str, Any] = {"l4t": parse_l4t_release(release_text), "jetpack": None, "model": None,
                            "nvpmodel": None, "nvpmodel_modes": None, "jetson_clocks": None, "problems": []}
    conf = read_text(root / "etc/nvpmodel.conf")
    if conf:
        info["nvpmodel_modes"] = parse_nvpmodel_conf(conf) or None
    model = read_text(root / "proc/device-tree/model")
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


def describe_jetson(jet: dict[str, Any]) -> str:
    """One human line about :func:`jetson_info`'s result."""
    mode = jet.get("nvpmodel") or {}
    clocks = jet.get("jetson_clocks") or {}
    on = {True: "on", False: "off", None: "unknown"}[clocks.get("on")]
    power = mode.get("name") or "unknown"
    if mode.get("id") is not None:  # nvpmodel -q does not always print the id
        power += f" (id {mode['id']})"
    return (f"Jetson: {jet.get('model') or 'unknown module'}, L4T {jet.get('l4t') or '?'}, "
            f"JetPack {jet.get('jetpack') or '?'}; power mode {power}; jetson_clocks {on}"
            + (f" (from {clocks['source']})" if clocks.get("source") else ""))
