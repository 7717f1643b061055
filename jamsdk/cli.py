"""The ``jamsdk`` command (also ``python -m jamsdk``).

Each subcommand lives in its own module under :mod:`jamsdk.commands` with ``add_parser(sub)`` and
``run(args) -> int``; this file only wires them. A :class:`~jamsdk.errors.JamError` is printed as
one line and exits with status 2; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from jamsdk import __version__
from jamsdk.errors import JamError

# (command name, module under jamsdk.commands)
COMMANDS: tuple[tuple[str, str], ...] = (
    ("info", "info"),
    ("convert-mraa", "convert_mraa"),
    ("synth", "synth"),
    ("train", "train"),
    ("eval", "eval"),
    ("export", "export"),
    ("build", "build"),
    ("animate", "animate"),
    ("demo", "demo"),
    ("bench", "bench"),
    ("live", "live"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jamsdk", description="Image animation (JAM/MRAA): train, export, run.")
    parser.add_argument("--version", action="version", version=f"jamsdk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS:
        mod = importlib.import_module(f"jamsdk.commands.{module}")
        p = mod.add_parser(sub, name)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except JamError as exc:
        print(f"jamsdk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"jamsdk {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
