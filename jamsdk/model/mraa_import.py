"""Import checkpoints of the MRAA reference implementation into jamsdk.

MRAA (Siarohin et al., *Motion Representations for Articulated Animation*, CVPR 2021) saves a torch
``.pth`` dict holding one state dict per network; the architecture is described by the YAML config
it was trained with. This module converts the pair: the config into a
:class:`~jamsdk.config.ModelConfig` (:mod:`jamsdk.model.mraa_config`: MRAA-shaped, no attention,
plain residual blocks, ``align_corners`` False) and the checkpoint into a
:class:`~jamsdk.model.jam.JamModel` state dict (:mod:`jamsdk.model.mraa_checkpoint`: read with
``torch.load(weights_only=True)`` only, MRAA's names renamed to jamsdk's), then loads the weights
strictly and writes a jamsdk checkpoint that records where they came from.

The converted model computes what MRAA computes from the same weights, PCA sign convention included
(:mod:`jamsdk.model.linalg2x2` reproduces CPU ``torch.svd``), which the AVD network and the relative
mode depend on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from jamsdk.config import ModelConfig, read_yaml
from jamsdk.errors import CheckpointError
from jamsdk.model.mraa_checkpoint import check_mraa_state, flatten_mraa_state, mraa_state_to_jam, read_mraa_checkpoint
from jamsdk.model.mraa_config import model_config_from_mraa
from jamsdk.model_files import sha256_file


@dataclass(frozen=True)
class MraaConversion:
    """What :func:`convert_mraa` wrote: the model config, parameter count, meta and notes for the user."""

    config: ModelConfig
    num_params: int
    meta: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def _plain(obj: Any) -> Any:
    """YAML data as the types ``torch.load(weights_only=True)`` reads back (dates etc. become strings)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def load_mraa(checkpoint: str | os.PathLike[str], mraa_config: str | os.PathLike[str],
              size: int = 256) -> tuple[torch.nn.Module, ModelConfig, dict[str, Any], list[str]]:
    """Build the jamsdk model for an MRAA checkpoint + config and load the weights strictly.

    Returns:
        ``(model.eval(), config, meta, notes)``: ``meta`` records the source files (name, sha256)
        and the MRAA config values; ``notes`` are things the user should know (ignored training
        entries, no AVD network, ``fast_svd``).
    """
    from jamsdk.model.checkpoint import load_state_strict
    from jamsdk.model.jam import build_model

    ckpt_path, cfg_path = Path(checkpoint), Path(mraa_config)
    raw_cfg = read_yaml(cfg_path)
    data = read_mraa_checkpoint(ckpt_path)
    where = f"MRAA checkpoint {ckpt_path}"
    flat, ignored = flatten_mraa_state(data, where)
    with_avd = any(k.startswith("avd_network.") for k in flat)
    name = cfg_path.stem if cfg_path.stem.startswith("mraa") else f"mraa-{cfg_path.stem}"
    cfg = model_config_from_mraa(raw_cfg, size, name=name, with_avd=with_avd,
                                 where=f"MRAA config {cfg_path}")
    model = build_model(cfg)
    check_mraa_state(model, flat, where)
    load_state_strict(model, mraa_state_to_jam(flat), where)  # the jamsdk-side check, belt and braces

    notes = []
    if ignored:
        notes.append(f"ignored training entries: {', '.join(ignored)}")
    if not with_avd:
        notes.append("the checkpoint has no avd_network (a stage-1 checkpoint): the avd mode is unavailable")
    model_params = raw_cfg.get("model_params") or {}
    if (model_params.get("region_predictor_params") or {}).get("fast_svd"):
        notes.append("fast_svd: true — MRAA then used torch_batch_svd, whose eigenvector signs may differ from "
                     "CPU torch.svd's; jamsdk reproduces CPU torch.svd, so avd/relative results may differ")
    dataset_params = raw_cfg.get("dataset_params")
    frame_shape = dataset_params.get("frame_shape") if isinstance(dataset_params, Mapping) else None
    meta = {
        "converted_from": "mraa",
        "source_checkpoint": {"file": ckpt_path.name, "sha256": sha256_file(ckpt_path),
                              "bytes": ckpt_path.stat().st_size, "ignored_entries": ignored},
        "mraa_config": {"file": cfg_path.name, "sha256": sha256_file(cfg_path),
                        "model_params": _plain(model_params), "frame_shape": _plain(frame_shape)},
        "image_size": size,
    }
    return model.eval(), cfg, meta, notes


def convert_mraa(checkpoint: str | os.PathLike[str], mraa_config: str | os.PathLike[str],
                 out: str | os.PathLike[str], size: int = 256) -> MraaConversion:
    """Convert an MRAA checkpoint to a jamsdk checkpoint at ``out`` (written atomically).

    Args:
        checkpoint: the MRAA ``.pth``.
        mraa_config: the MRAA YAML it was trained with (``config/<dataset>.yaml``).
        out: the jamsdk checkpoint to write (replaced atomically if it exists).
        size: the square image size the converted model runs at.

    Raises:
        ConfigError: the MRAA config is invalid or describes a variant jamsdk cannot reproduce.
        CheckpointError: the file is unreadable, unsafe, or does not fit the config (names given).
    """
    from jamsdk.model.checkpoint import save_checkpoint

    src, dst = Path(checkpoint), Path(out)
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise CheckpointError(f"--out {dst} is the MRAA checkpoint itself; choose another output path")
    model, cfg, meta, notes = load_mraa(src, mraa_config, size)
    save_checkpoint(dst, model, cfg, meta=meta)
    return MraaConversion(cfg, sum(p.numel() for p in model.parameters()), meta, notes)
