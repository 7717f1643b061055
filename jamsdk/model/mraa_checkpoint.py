"""MRAA ``.pth`` checkpoints: read safely, flattened, checked against a model, renamed to jamsdk's names.

MRAA saves a torch ``.pth`` dict holding one state dict per network — ``generator`` (with the
pixelwise flow predictor inside), ``region_predictor``, ``bg_predictor`` (empty for ``bg_type:
zero``) and ``avd_network`` (stage-2 checkpoints only) — plus ``optimizer_*``/``epoch_*`` entries in
training checkpoints, which are ignored. Files are read with ``torch.load(weights_only=True)`` only:
a file that needs arbitrary unpickling is refused, never loaded unsafely. Module names follow MRAA's,
so the conversion is a prefix rename:

==========================================  ==================
MRAA                                        jamsdk
==========================================  ==================
``generator.pixelwise_flow_predictor.*``    ``dense_motion.*``
``generator.*`` (the rest)                  ``generator.*``
``region_predictor.*``                      ``region_predictor.*``
``bg_predictor.*``                          ``bg_motion.*``
``avd_network.*``                           ``avd.*``
==========================================  ==================
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping

import torch

from jamsdk.errors import CheckpointError
from jamsdk.model.checkpoint import key_report

# (MRAA prefix, jamsdk prefix); the longer MRAA prefix must come first.
KEY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("generator.pixelwise_flow_predictor.", "dense_motion."),
    ("generator.", "generator."),
    ("region_predictor.", "region_predictor."),
    ("bg_predictor.", "bg_motion."),
    ("avd_network.", "avd."),
)
SECTIONS = ("generator", "region_predictor", "bg_predictor", "avd_network")
# Training-only entries of MRAA checkpoints (optimizer state, epoch counters): ignored.
_TRAINING_ENTRY = re.compile(r"^(optimizer|epoch)_\w+$")


def mraa_key_to_jam(key: str) -> str:
    """jamsdk state-dict name of an MRAA checkpoint name (``<section>.<state-dict key>``)."""
    for mraa, jam in KEY_PREFIXES:
        if key.startswith(mraa):
            return jam + key[len(mraa):]
    raise CheckpointError(f"{key}: not in an MRAA checkpoint section (expected one of {', '.join(SECTIONS)})")


def jam_key_to_mraa(key: str) -> str:
    """MRAA checkpoint name of a jamsdk state-dict name (inverse of :func:`mraa_key_to_jam`)."""
    for mraa, jam in KEY_PREFIXES:
        if key.startswith(jam):
            return mraa + key[len(jam):]
    raise KeyError(key)  # a jamsdk module MRAA does not have: a bug in the config mapping


def read_mraa_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load an MRAA ``.pth`` with ``torch.load(weights_only=True)``; typed errors for bad files.

    Raises:
        CheckpointError: missing file, corrupt file, a file that needs unsafe unpickling (refused,
            never retried unsafely), or a dict that is not an MRAA checkpoint.
    """
    from jamsdk.model.checkpoint import load_plain

    p = Path(path)
    data = load_plain(p, "MRAA checkpoint")
    if not isinstance(data, dict):
        raise CheckpointError(f"MRAA checkpoint {p}: expected a dict of state dicts, got {type(data).__name__}")
    if data.get("format") == "jamsdk.checkpoint":
        raise CheckpointError(f"MRAA checkpoint {p} is already a jamsdk checkpoint; nothing to convert")
    if "kp_detector" in data:
        raise CheckpointError(f"MRAA checkpoint {p}: has 'kp_detector', i.e. it is a FOMM (first-order-model) "
                              "checkpoint; jamsdk imports MRAA checkpoints only")
    return data


def flatten_mraa_state(data: Mapping[str, Any],
                       where: str = "MRAA checkpoint") -> tuple[dict[str, torch.Tensor], list[str]]:
    """MRAA checkpoint dict → ``{"<section>.<key>": tensor}`` and the names of ignored training entries.

    ``bg_predictor`` and ``avd_network`` may be absent, ``None`` or empty. A section saved from a
    ``DataParallel`` wrapper (every key starting with ``module.``) is unwrapped.
    """
    keys = [str(k) for k in data]
    ignored = sorted(k for k in keys if _TRAINING_ENTRY.match(k))
    unknown = sorted(k for k in keys if k not in SECTIONS and k not in ignored)
    if unknown:
        raise CheckpointError(f"{where}: unexpected top-level entries: {', '.join(unknown)} "
                              f"(expected {', '.join(SECTIONS)} and optionally optimizer_*/epoch_*)")
    missing = [s for s in ("generator", "region_predictor") if s not in data]
    if missing:
        raise CheckpointError(f"{where}: missing top-level entries: {', '.join(missing)} "
                              f"(an MRAA checkpoint has {', '.join(SECTIONS)}; got {', '.join(keys) or 'nothing'})")
    flat: dict[str, torch.Tensor] = {}
    for section in SECTIONS:
        state = data.get(section)
        if state is None:
            continue
        if not isinstance(state, Mapping):
            raise CheckpointError(f"{where}: '{section}' should be a state dict, got {type(state).__name__}")
        names = [str(k) for k in state]
        strip = len("module.") if names and all(n.startswith("module.") for n in names) else 0
        for name, value in state.items():
            full = f"{section}.{str(name)[strip:]}"
            if not isinstance(value, torch.Tensor):
                raise CheckpointError(f"{where}: {full}: expected a tensor, got {type(value).__name__}")
            flat[full] = value
    return flat, ignored


def check_mraa_state(model: torch.nn.Module, flat: Mapping[str, torch.Tensor], where: str = "MRAA checkpoint") -> None:
    """Compare MRAA-named tensors with what ``model`` expects; mismatches are named MRAA's way."""
    expected = {jam_key_to_mraa(k): tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in flat]
    unexpected = [k for k in flat if k not in expected]
    mismatched = [f"{k}: checkpoint {tuple(flat[k].shape)} vs config {expected[k]}"
                  for k in expected if k in flat and tuple(flat[k].shape) != expected[k]]
    if not (missing or unexpected or mismatched):
        return
    parts = [key_report((("missing in the checkpoint", missing), ("unexpected in the checkpoint", unexpected),
                         ("shape mismatches", mismatched)))]
    hints = []
    if any(k.startswith("region_predictor.jacobian.") for k in unexpected):
        hints.append("region_predictor.jacobian belongs to a regression-jacobian (pca_based: false) predictor, "
                     "which jamsdk does not import.")
    if any(k.startswith("generator.dense_motion_network.") for k in unexpected):
        hints.append("generator.dense_motion_network is FOMM's name: this looks like a FOMM checkpoint.")
    if any(k.startswith("bg_predictor.") for k in missing + unexpected):
        hints.append("Check bg_predictor_params.bg_type in the MRAA config.")
    hints.append("Is the MRAA config the one this checkpoint was trained with?")
    raise CheckpointError(f"{where} does not fit the MRAA config: " + "; ".join(parts) + ". " + " ".join(hints))


def mraa_state_to_jam(flat: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename MRAA checkpoint names to jamsdk state-dict names (tensors are shared, not copied)."""
    return {mraa_key_to_jam(k): v for k, v in flat.items()}
