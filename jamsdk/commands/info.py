"""jamsdk info: version, the bundled demo model, shipped configs and which optional backends import."""

from __future__ import annotations

import argparse
import importlib.util

from jamsdk._version import describe
from jamsdk.backend_registry import ROWS
from jamsdk.config import CONFIG_DIR

OPERANDS = ""


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help="show version, the bundled demo model, shipped configs and installed backends",
                          description=__doc__)


def run(args: argparse.Namespace) -> int:
    from jamsdk.bundled import DEMO_CHECKPOINT, DEMO_MODEL_DIR, DEMO_NAME

    print(describe())
    present = (DEMO_MODEL_DIR / "manifest.json").is_file()
    print(f"bundled demo model: {DEMO_MODEL_DIR}" + ("" if present else " (missing from this install)"))
    print(f"  {DEMO_NAME}, --model demo (the default): a small JAM trained on synthetic articulated cartoon "
          "figures only; it will not animate real faces or bodies well")
    print("  for a real model: jamsdk convert-mraa (an MRAA checkpoint) or jamsdk train, then jamsdk export")
    print(f"  its checkpoint: {DEMO_CHECKPOINT}")
    print("shipped configs: " + ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))))
    from jamsdk.runtime.sysinfo import cpu_flags, package_version

    backends = sorted(row.package for row in ROWS)
    for mod in ("torch", "onnx", *backends, "cuda.bindings"):
        found = importlib.util.find_spec(mod.split(".")[0]) is not None
        version = package_version(mod) if found else None
        print(f"{mod:14s} {(version or 'installed') if found else 'not installed'}")
    print(f"{'CPU flags':14s} {' '.join(cpu_flags()) or '-'}")
    return 0
