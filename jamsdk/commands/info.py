"""``jamsdk info``: version, shipped configs and which optional backends import."""

from __future__ import annotations

import argparse
import importlib.util

from jamsdk import __version__
from jamsdk.config import CONFIG_DIR


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help="show version, shipped configs and installed backends")


def run(args: argparse.Namespace) -> int:
    print(f"jamsdk {__version__}")
    print("shipped configs: " + ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))))
    for mod in ("torch", "onnx", "onnxruntime", "tensorrt", "cuda.bindings"):
        found = importlib.util.find_spec(mod.split(".")[0]) is not None
        print(f"{mod:14s} {'installed' if found else 'not installed'}")
    return 0
