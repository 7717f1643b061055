"""Import checkpoints of the MRAA reference implementation into jamsdk.

MRAA (Siarohin et al., *Motion Representations for Articulated Animation*, CVPR 2021) saves a torch
``.pth`` dict holding one state dict per network — ``generator`` (with the pixelwise flow predictor
inside), ``region_predictor``, ``bg_predictor`` (empty for ``bg_type: zero``) and ``avd_network``
(stage-2 checkpoints only) — plus ``optimizer_*``/``epoch_*`` entries in training checkpoints. The
architecture is described by the YAML config it was trained with: in MRAA's released configs
(``config/{mgif256,vox256,taichi256,ted384,ted-youtube384}.yaml``) ``model_params`` holds
``num_regions``, ``num_channels``, ``estimate_affine`` and ``revert_axis_swap`` directly, beside the
sections ``bg_predictor_params``, ``region_predictor_params``, ``generator_params`` (with
``pixelwise_flow_predictor_params`` inside) and ``avd_network_params``. FOMM's layout
(``common_params``, ``kp_detector_params``) is refused with a message saying so.

This module turns the pair into a :class:`~jamsdk.config.ModelConfig` (MRAA-shaped: no attention,
plain residual blocks, ``align_corners`` False) and a :class:`~jamsdk.model.jam.JamModel` state
dict. Module names follow MRAA's, so the conversion is a prefix rename:

==========================================  ==================
MRAA                                        jamsdk
==========================================  ==================
``generator.pixelwise_flow_predictor.*``    ``dense_motion.*``
``generator.*`` (the rest)                  ``generator.*``
``region_predictor.*``                      ``region_predictor.*``
``bg_predictor.*``                          ``bg_motion.*``
``avd_network.*``                           ``avd.*``
==========================================  ==================

The converted model computes what MRAA computes from the same weights, PCA sign convention included
(:mod:`jamsdk.model.linalg2x2` reproduces CPU ``torch.svd``), which the AVD network and the relative
mode depend on. MRAA files are read with ``torch.load(weights_only=True)`` only: a file that needs
arbitrary unpickling is refused, never loaded unsafely.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from jamsdk.config import (
    BG_TYPES,
    AvdConfig,
    BgMotionConfig,
    DenseMotionConfig,
    GeneratorConfig,
    ModelConfig,
    RegionPredictorConfig,
    read_yaml,
    size_problems,
)
from jamsdk.errors import CheckpointError, ConfigError
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
_MISSING = object()


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


# ---------------------------------------------------------------------------------------------
# Config


class _Section:
    """Typed, strict access to one mapping of the MRAA YAML; errors carry the dotted path."""

    def __init__(self, data: Any, path: str):
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {data!r}")
        self.data, self.path, self.used = data, path, set()

    def get(self, key: str, kind: type, default: Any = _MISSING) -> Any:
        self.used.add(key)
        where = f"{self.path}.{key}"
        if key not in self.data:
            if default is _MISSING:
                raise ConfigError(f"{where}: missing (expected {kind.__name__})")
            return default
        value = self.data[key]
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        else:
            ok = isinstance(value, kind)
        if not ok:
            raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}")
        return value

    def section(self, key: str, required: bool = True) -> "_Section":
        self.used.add(key)
        if key not in self.data and required:
            raise ConfigError(f"{self.path}.{key}: missing section")
        return _Section(self.data.get(key), f"{self.path}.{key}")

    def reject_unknown(self, why: str = "jamsdk cannot tell how MRAA would use it") -> None:
        unknown = sorted(set(map(str, self.data)) - self.used)
        if unknown:
            raise ConfigError(f"{self.path}.{unknown[0]}: unknown key ({why})")


def model_config_from_mraa(data: Mapping[str, Any], image_size: int = 256, name: str = "mraa",
                           with_avd: bool = True, where: str = "MRAA config") -> ModelConfig:
    """The jamsdk :class:`ModelConfig` of an MRAA YAML config (the whole file as a mapping).

    Args:
        data: the parsed MRAA YAML (``model_params`` is read; ``dataset_params`` etc. are ignored).
        image_size: the square size the model will run at (MRAA's configs do not fix it).
        name: the jamsdk model name.
        with_avd: whether the checkpoint holds an AVD network (stage 2); without one the AVD
            network is left out (``avd.enabled`` false).
        where: how error messages name the config.

    Raises:
        ConfigError: a missing, unknown or badly typed key (named with its MRAA path), a variant
            jamsdk cannot reproduce exactly (regression-jacobian FOMM-style region predictor,
            ``skips: false``, no occlusion map), or an ``image_size`` the architecture cannot take.
    """
    try:
        return _model_config_from_mraa(data, image_size, name, with_avd, where)
    except ConfigError as exc:
        if str(exc).startswith(where):
            raise
        raise ConfigError(f"{where}: {exc}") from None


def _model_config_from_mraa(data: Mapping[str, Any], image_size: int, name: str, with_avd: bool,
                            where: str) -> ModelConfig:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping at the top level, got {type(data).__name__}")
    if "model_params" not in data:
        hint = " (this looks like a jamsdk config, which needs no conversion)" if "model" in data else ""
        raise ConfigError(f"{where}: missing 'model_params' (expected an MRAA YAML config){hint}")
    mp = _Section(data["model_params"], "model_params")
    # MRAA's released configs put num_regions & co. directly under model_params. FOMM's put num_kp
    # & co. under model_params.common_params and have a kp_detector_params section.
    for fomm in ("common_params", "kp_detector_params", "discriminator_params"):
        if fomm in mp.data:
            raise ConfigError(f"{where}: model_params.{fomm}: this is the layout of a FOMM (first-order-model) "
                              "config; jamsdk imports MRAA (articulated-animation) configs only, which put "
                              "num_regions, num_channels, estimate_affine and revert_axis_swap directly under "
                              "model_params")
    rp = mp.section("region_predictor_params")
    gen = mp.section("generator_params")
    flow = gen.section("pixelwise_flow_predictor_params")
    bg = mp.section("bg_predictor_params", required=False)
    avd = mp.section("avd_network_params", required=with_avd)

    k = mp.get("num_regions", int)
    channels = mp.get("num_channels", int, 3)
    revert = mp.get("revert_axis_swap", bool, True)
    if not mp.get("estimate_affine", bool):
        raise ConfigError(f"{where}: model_params.estimate_affine: expected true "
                          "(jamsdk imports MRAA's affine region model), got false")
    mp.reject_unknown()

    if not rp.get("pca_based", bool):
        raise ConfigError(
            f"{where}: model_params.region_predictor_params.pca_based: expected true, got false. "
            "This is a regression-jacobian (FOMM-style) region predictor; jamsdk imports PCA-based MRAA "
            "models only (every released MRAA config is PCA-based)")
    rp.get("fast_svd", bool, False)  # recorded by the caller; the signs are CPU torch.svd's either way
    region = RegionPredictorConfig(
        block_expansion=rp.get("block_expansion", int), max_features=rp.get("max_features", int),
        num_blocks=rp.get("num_blocks", int), temperature=rp.get("temperature", float),
        scale_factor=_scale_factor(rp, where),
        pad=rp.get("pad", int, 3),  # MRAA's constructor default (vox256.yaml relies on it)
        attention="none")
    rp.reject_unknown()

    if not gen.get("skips", bool):
        raise ConfigError(f"{where}: model_params.generator_params.skips: false is not supported "
                          "(jamsdk reproduces MRAA's skip-warping generator, skips: true)")
    if not flow.get("estimate_occlusion_map", bool):
        raise ConfigError(f"{where}: model_params.generator_params.pixelwise_flow_predictor_params."
                          "estimate_occlusion_map: false is not supported (every MRAA config sets true)")
    dense = DenseMotionConfig(
        block_expansion=flow.get("block_expansion", int), max_features=flow.get("max_features", int),
        num_blocks=flow.get("num_blocks", int), scale_factor=_scale_factor(flow, where),
        use_deformed_source=flow.get("use_deformed_source", bool),
        use_covar_heatmap=flow.get("use_covar_heatmap", bool), estimate_occlusion_map=True,
        region_var=flow.get("region_var", float, 0.01), attention="none")
    flow.reject_unknown()
    generator = GeneratorConfig(
        block_expansion=gen.get("block_expansion", int), max_features=gen.get("max_features", int),
        num_down_blocks=gen.get("num_down_blocks", int), num_bottleneck_blocks=gen.get("num_bottleneck_blocks", int),
        skips=True, res_block="basic", dilations=(1,), attention=False)
    gen.reject_unknown()

    bg_type = bg.get("bg_type", str, "zero")
    if bg_type not in BG_TYPES:
        raise ConfigError(f"{where}: model_params.bg_predictor_params.bg_type: expected one of {BG_TYPES}, "
                          f"got {bg_type!r}")
    if bg_type == "zero":
        bg_motion = BgMotionConfig(bg_type="zero")
        for key in ("block_expansion", "max_features", "num_blocks"):  # unused, but type-checked
            bg.get(key, int, 0)
    else:
        bg_motion = BgMotionConfig(bg_type=bg_type, block_expansion=bg.get("block_expansion", int),
                                   max_features=bg.get("max_features", int), num_blocks=bg.get("num_blocks", int))
    bg.reject_unknown()

    if with_avd:
        # MRAA's AVDNetwork has its own revert_axis_swap, default true (MRAA_FACTS §7); jamsdk has
        # one setting for every network, so the two must agree.
        avd_revert = avd.get("revert_axis_swap", bool, True)
        if avd_revert != revert:
            origin = "" if "revert_axis_swap" in avd.data else " (MRAA's default)"
            raise ConfigError(
                f"{where}: model_params.avd_network_params.revert_axis_swap is {avd_revert}{origin} but "
                f"model_params.revert_axis_swap is {revert}; jamsdk uses one setting for all networks")
        avd_cfg = AvdConfig(enabled=True, id_bottleneck_size=avd.get("id_bottle_size", int),
                            pose_bottleneck_size=avd.get("pose_bottle_size", int))
    else:
        for key in ("id_bottle_size", "pose_bottle_size"):
            avd.get(key, int, 0)
        avd.get("revert_axis_swap", bool, True)
        avd_cfg = AvdConfig(enabled=False)
    avd.reject_unknown()

    sections = dict(region_predictor=region, dense_motion=dense, generator=generator, bg_motion=bg_motion, avd=avd_cfg)
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size <= 0:
        raise ConfigError(f"size: expected a positive whole number, got {image_size!r}")
    # size_problems reads only these sections; checking first gives a message about the size, not the config.
    view = _SizeView(**sections)
    problems = size_problems(view, image_size)  # type: ignore[arg-type]
    if problems:
        fits = [s for s in range(32, 1025, 32) if not size_problems(view, s)][:6]  # type: ignore[arg-type]
        raise ConfigError(f"size {image_size} does not fit this MRAA model: " + "; ".join(problems)
                          + (f" (sizes that fit: {', '.join(map(str, fits))}, …)" if fits else ""))
    return ModelConfig(name=name, image_size=image_size, num_regions=k, num_channels=channels,
                       revert_axis_swap=revert, align_corners=False, **sections)


def _scale_factor(section: _Section, where: str) -> float:
    value = section.get("scale_factor", float)
    if not 0 < value <= 1 or abs(1 / value - round(1 / value)) > 1e-6:
        raise ConfigError(f"{where}: {section.path}.scale_factor: expected 1/n for a whole n ≥ 1, got {value!r}")
    return value


@dataclass(frozen=True)
class _SizeView:
    """The sections :func:`~jamsdk.config.size_problems` reads, before a full ModelConfig exists."""

    region_predictor: RegionPredictorConfig
    dense_motion: DenseMotionConfig
    generator: GeneratorConfig
    bg_motion: BgMotionConfig
    avd: AvdConfig


# ---------------------------------------------------------------------------------------------
# Checkpoint


def read_mraa_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load an MRAA ``.pth`` with ``torch.load(weights_only=True)``; typed errors for bad files.

    Raises:
        CheckpointError: missing file, corrupt file, a file that needs unsafe unpickling (refused,
            never retried unsafely), or a dict that is not an MRAA checkpoint.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"MRAA checkpoint {p} {'is not a file' if p.exists() else 'does not exist'}")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt files, and UnpicklingError for objects it refuses
        from jamsdk.model.checkpoint import refused

        raise refused(p, exc, "MRAA checkpoint") from None
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


# ---------------------------------------------------------------------------------------------
# The whole conversion


@dataclass(frozen=True)
class MraaConversion:
    """What :func:`convert_mraa` wrote: the model config, parameter count, meta and notes for the user."""

    config: ModelConfig
    num_params: int
    meta: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def sha256_of(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
        "source_checkpoint": {"file": ckpt_path.name, "sha256": sha256_of(ckpt_path),
                              "bytes": ckpt_path.stat().st_size, "ignored_entries": ignored},
        "mraa_config": {"file": cfg_path.name, "sha256": sha256_of(cfg_path),
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
