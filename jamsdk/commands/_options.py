"""Options several subcommands share, spelled once (the CLI grammar: every operand is a named option).

``--model DIR|demo`` wherever an exported model runs (default: the bundled demo model), ``--backend``
and ``--precision`` wherever a model runs (the same choices and default everywhere), ``--mode`` wherever
motion is transferred, ``--threads N`` wherever ONNX Runtime runs, ``--json OUT`` for a machine-readable
report, ``--max-pixels N`` wherever pictures are read, ``--token``/``--unauthenticated`` on servers. A
command where a shared option cannot apply says so in one line.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from jamsdk.backend_registry import NAMES

#: ``--backend`` on every command; ``auto`` takes the first backend that can run the model here. Read
#: from the rows of :mod:`jamsdk.backend_registry`, which imports no numpy (``jamsdk doctor`` must parse
#: its command line where numpy is broken).
BACKENDS: tuple[str, ...] = ("auto", *NAMES)
#: ``--precision`` on every command; ``auto`` is each backend's own: FP32 graphs on ONNX Runtime,
#: FP16 engines when ``jamsdk build`` makes them (a TensorRT run uses its engines as built)
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "fp16", "int8")
#: ``--mode`` on every command that transfers motion
MODES: tuple[str, ...] = ("relative", "standard", "avd")
#: ``--precision`` of jamsdk batch and jamsdk serve (StreamBatch: long-running, every batch size one precision)
STREAM_BATCH_PRECISION_HELP = ("which ONNX graphs run in the {where}, at every batch size: auto = int8 where the "
                               "folder has INT8 graphs that passed the export's held-out gate on that runtime "
                               "(jamsdk export --precision int8), else fp32; TensorRT runs its engines as built")


class Repeatable(argparse.Action):
    """A repeatable option whose default is one value (as the option's single-value form elsewhere).

    Not given: the default, as a one-item list; given: the values given, in order, without repeats.
    """

    def __init__(self, option_strings, dest, default=None, **kwargs):  # noqa: ANN001
        super().__init__(option_strings, dest, default=[default] if default is not None else None, **kwargs)
        self.single_default = default

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001
        given = getattr(namespace, f"_{self.dest}_given", [])
        if values not in given:
            given.append(values)
        setattr(namespace, f"_{self.dest}_given", given)
        setattr(namespace, self.dest, list(given))


def add_backend(p: argparse.ArgumentParser, where: str = "", long_running: bool = False) -> None:
    """``--backend auto|tensorrt|onnxruntime|openvino`` (default auto; ``long_running``: batch and serve's order)."""
    then = ("else with --precision auto OpenVINO INT8 where it is installed and the folder's INT8 graphs passed the "
            "export's gate on it; else ONNX Runtime, for int8 OpenVINO first" if long_running
            else "else ONNX Runtime; for int8 OpenVINO before ONNX Runtime where it is installed")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help=f"inference backend{where} (default auto: TensorRT where engines and a GPU are there, {then})")


def add_precision(p: argparse.ArgumentParser, what: str = "", repeatable: bool = False) -> None:
    """``--precision auto|fp32|fp16|int8`` (default auto); ``what`` says what it picks on this command."""
    what = what or ("which ONNX graphs ONNX Runtime or OpenVINO runs: auto = fp32; int8 needs jamsdk export "
                    "--precision int8; TensorRT runs its engines as built")
    if repeatable:
        p.add_argument("--precision", choices=PRECISIONS, default="auto", action=Repeatable,
                       help=f"{what} (repeatable; default auto)")
    else:
        p.add_argument("--precision", choices=PRECISIONS, default="auto", help=f"{what} (default auto)")


def add_mode(p: argparse.ArgumentParser, repeatable: bool = False) -> None:
    """``--mode relative|standard|avd`` (default relative)."""
    if repeatable:
        p.add_argument("--mode", choices=MODES, default="relative", action=Repeatable,
                       help="motion transfer: relative (default), standard or avd; repeat it to score several")
    else:
        p.add_argument("--mode", choices=MODES, default="relative",
                       help="motion transfer: relative (default), standard or avd (needs a model with the AVD network)")


def run_precision(value: str) -> str:
    """The precision the runtime gets for ``--precision value`` (``auto``: FP32 graphs on ONNX Runtime)."""
    return "fp32" if value == "auto" else value


def given(args: argparse.Namespace, option: str) -> bool:
    """Whether ``--option`` was on the command line (not just its default)."""
    return option in getattr(args, "_given", ())


def add_max_batch(p: argparse.ArgumentParser, where: str) -> None:
    """``--max-batch N|auto`` (default auto) for the long-running paths (batch, serve)."""
    p.add_argument("--max-batch", type=max_batch_value, default="auto", metavar="N|auto|tune",
                   help=f"most frames per stage call {where}: auto (default) 1 on ONNX Runtime and OpenVINO "
                        "(batched calls were slower per frame on a 2-core CPU) and the largest exported size on "
                        "TensorRT; tune times every size when the model opens and keeps the sizes up to the "
                        "fastest per frame (costs a few seconds); N caps it at N")


def max_batch_value(text: str) -> int | str:
    """argparse type: ``auto``, ``tune`` or an integer ≥ 1."""
    if text in ("auto", "tune"):
        return text
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 1, auto or tune, got {text!r}") from None


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
    p.add_argument("--token-file", metavar="FILE",
                   help="file holding the access token clients must send (Authorization: Bearer TOKEN; a browser "
                        "opens /?token=TOKEN once), readable by you alone (chmod 600); default: the JAMSDK_TOKEN "
                        "environment variable. Needed beyond loopback unless --unauthenticated")
    p.add_argument("--token", metavar="TOKEN",
                   help="the access token itself (other local users see it in the process list: a warning says "
                        "so; prefer --token-file or JAMSDK_TOKEN)")
    p.add_argument("--unauthenticated", action="store_true",
                   help="allow a --host beyond loopback without a token: anyone who reaches it gets in")


def access_from_args(args: argparse.Namespace, command: str, origins: tuple[str, ...] | list[str] = ()):  # noqa: ANN201
    """The server's :class:`~jamsdk.access.Access` from ``--host``, ``--token``/``--token-file``, ``--unauthenticated``;
    a token typed on the command line gets one warning line (:data:`jamsdk.access.ARGV_WARNING`)."""
    import sys

    from jamsdk.access import ARGV_WARNING, Access

    access = Access.from_options(args.host, args.token, args.unauthenticated, origins, args.token_file)
    if args.token is not None:
        print(f"jamsdk {command}: warning: {ARGV_WARNING}", file=sys.stderr, flush=True)
    return access


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
