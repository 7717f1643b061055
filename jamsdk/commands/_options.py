"""Options several subcommands share, spelled once (the CLI grammar: every operand is a named option).

``--model DIR|demo`` wherever an exported model runs (default: the bundled demo model), ``--threads N``
wherever ONNX Runtime runs, ``--json OUT`` for a machine-readable report, ``--max-pixels N`` wherever
pictures are read, ``--token``/``--unauthenticated`` on servers.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any


def positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 1, got {text!r}")
    return value


def add_model(p: argparse.ArgumentParser, what: str = "model to run") -> None:
    p.add_argument("--model", metavar="DIR", default=None,
                   help=f"{what}: a folder written by jamsdk export (or jamsdk build), or the word demo for the "
                        "bundled demo model, which is the default (trained on synthetic cartoon figures only)")


def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="ONNX Runtime intra-op threads (default: ONNX Runtime's own choice)")


def add_json(p: argparse.ArgumentParser, what: str = "the result") -> None:
    p.add_argument("--json", metavar="OUT", help=f"also write {what} as JSON to OUT")


def add_access(p: argparse.ArgumentParser) -> None:
    """``--token`` and ``--unauthenticated`` (servers; :mod:`jamsdk.access` says the rule)."""
    p.add_argument("--token", metavar="TOKEN",
                   help="access token clients must send (Authorization: Bearer TOKEN; a browser opens "
                        "/?token=TOKEN once); default: the JAMSDK_TOKEN environment variable. Needed beyond "
                        "loopback unless --unauthenticated")
    p.add_argument("--unauthenticated", action="store_true",
                   help="allow a --host beyond loopback without a token: anyone who reaches it gets in")


def add_max_pixels(p: argparse.ArgumentParser) -> None:
    """``--max-pixels N`` wherever pictures or frames are read (:mod:`jamsdk.image_header`)."""
    from jamsdk.image_header import DEFAULT_MAX_PIXELS

    p.add_argument("--max-pixels", type=positive_int, metavar="N",
                   help=f"refuse pictures and frames that declare more than N pixels, before decoding them "
                        f"(default {DEFAULT_MAX_PIXELS:,}, or JAMSDK_MAX_PIXELS)")


def model_dir(args: argparse.Namespace) -> Path:
    """The folder ``--model`` names (the bundled demo model when absent); InputError when missing."""
    from jamsdk.bundled import resolve_model

    return resolve_model(args.model)


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON atomically; returns the path."""
    from jamsdk._atomic import write_bytes

    write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode("utf-8"))
    return Path(path)
