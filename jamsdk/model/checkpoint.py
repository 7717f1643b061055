"""jamsdk checkpoints: model config + weights (+ training state), loadable with ``weights_only=True``.

Layout of the saved dict (only tensors, numbers, strings, lists and dicts, so
``torch.load(weights_only=True)`` reads it and never unpickles code):

``format``: "jamsdk.checkpoint"; ``version``: 1; ``jamsdk_version``; ``config``: the model config as
plain data (``ModelConfig.to_dict()``); ``model``: the ``JamModel`` state dict; ``train_state``:
whatever the trainer stores (step, optimizer, scheduler, RNG) or ``None``; ``meta``: free-form
plain data (e.g. where a converted checkpoint came from).
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path
from typing import Any, Mapping

import torch

from jamsdk._atomic import atomic_path
from jamsdk.config import ModelConfig, model_config_from_dict
from jamsdk.errors import CheckpointError, ConfigError, InputError
from jamsdk.input_files import check_input

FORMAT = "jamsdk.checkpoint"
VERSION = 1


def save_checkpoint(path: str | os.PathLike[str], model: torch.nn.Module, config: ModelConfig,
                    train_state: Mapping[str, Any] | None = None, meta: Mapping[str, Any] | None = None) -> None:
    """Write a checkpoint atomically (temporary file, fsync, rename): a kill never leaves a torn file."""
    from jamsdk._version import __version__

    payload = {
        "format": FORMAT,
        "version": VERSION,
        "jamsdk_version": __version__,
        "config": config.to_dict(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "train_state": dict(train_state) if train_state is not None else None,
        "meta": dict(meta) if meta is not None else {},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a jamsdk checkpoint dict safely (``weights_only=True``); typed errors for bad files."""
    p = Path(path)
    data = load_plain(p, "checkpoint")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        keys = sorted(map(str, data))[:6] if isinstance(data, dict) else type(data).__name__
        hint = " (an MRAA checkpoint? convert it with `jamsdk convert-mraa`)" if isinstance(data, dict) and \
            "region_predictor" in data else ""
        raise CheckpointError(f"checkpoint {p}: expected a {FORMAT!r} file, got {keys}{hint}")
    if not isinstance(data.get("version"), int) or data["version"] > VERSION:
        raise CheckpointError(
            f"checkpoint {p}: format version {data.get('version')!r} is newer than this jamsdk reads ({VERSION}); "
            "upgrade jamsdk"
        )
    return data


def load_plain(path: Path, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, the only way jamsdk reads a ``.pt``/``.pth``.

    Raises:
        CheckpointError: ``{what} PATH does not exist`` / ``is not a file``, or :func:`refused`'s line.
    """
    if not path.exists():
        raise CheckpointError(f"{what} {path} does not exist")
    if not path.is_file():
        raise CheckpointError(f"{what} {path} is not a file")
    try:
        check_input(path, "checkpoint", what=what)  # within the checkpoint cap (jamsdk.input_files)
    except InputError as exc:
        raise CheckpointError(str(exc)) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt zips, and UnpicklingError for objects it refuses
        raise refused(path, exc, what) from None


def refused(path: Path, exc: BaseException, what: str) -> CheckpointError:
    """One line for a file ``torch.load(weights_only=True)`` refused or could not read.

    torch's own message spans several lines and suggests ``weights_only=False``, which runs whatever
    code the file holds; this one says what the file is and how to make a trusted one plain.
    """
    text = str(exc)
    refused_global = re.search(r"GLOBAL ([\w.]+)", text)
    if refused_global:
        return CheckpointError(
            f"{what} {path} was refused by torch.load(weights_only=True), which jamsdk always uses: it is not a "
            f"plain tensor checkpoint but holds pickled Python objects ({refused_global.group(1)}). If you trust its "
            "source, re-save only its tensors where it was made (e.g. torch.save(model.state_dict(), 'plain.pt')) "
            "and use that file")
    detail = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", text, re.S)
    first = " ".join(detail.group(1).split()) if detail else \
        next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    kind = "" if isinstance(exc, (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError)) \
        else f"{type(exc).__name__}: "
    return CheckpointError(f"{what} {path} is corrupt or not a torch checkpoint ({kind}{first[:200]})")


def config_of(data: Mapping[str, Any], where: str = "checkpoint") -> ModelConfig:
    try:
        return model_config_from_dict(data["config"])
    except (ConfigError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{where}: invalid model config ({exc})") from None


def key_report(groups: "tuple[tuple[str, list[str]], ...]", limit: int = 8) -> str:
    """``"label (n): a, b … (+k more); …"`` for the non-empty groups of key problems."""
    parts = []
    for label, items in groups:
        if items:
            more = f" … (+{len(items) - limit} more)" if len(items) > limit else ""
            parts.append(f"{label} ({len(items)}): " + ", ".join(items[:limit]) + more)
    return "; ".join(parts)


def load_state_strict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], where: str = "checkpoint") -> None:
    """Load ``state`` into ``model``; missing, unexpected and mis-shaped keys are reported by name."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k}: model {tuple(own[k].shape)} vs file {tuple(state[k].shape)}"
                  for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or mismatched:
        report = key_report((("missing keys", missing), ("unexpected keys", unexpected),
                             ("shape mismatches", mismatched)))
        raise CheckpointError(f"{where} does not fit the model: {report}")
    model.load_state_dict(dict(state), strict=True)


def load_model(path: str | os.PathLike[str]) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Build the model a checkpoint describes, load its weights strictly, return ``(model.eval(), data)``."""
    from jamsdk.model.jam import build_model

    data = read_checkpoint(path)
    cfg = config_of(data, f"checkpoint {path}")
    model = build_model(cfg)
    load_state_strict(model, data["model"], f"checkpoint {path}")
    return model.eval(), data
