"""Model configuration: frozen dataclasses read from YAML with ``yaml.safe_load``.

A config file is a mapping with a ``model`` section (this module) and optionally a ``train``
section (read by :mod:`jamsdk.train`). Unknown keys, wrong types and out-of-range values raise
:class:`~jamsdk.errors.ConfigError` with the dotted path of the bad key, e.g.
``model.generator.dilations: expected a list of int, got 'x'``.

Shipped model configs live in ``jamsdk/configs`` and can be named without a path
(``jam-256``, ``mraa-256``, ``tiny-jam``, ``tiny-mraa``, ``demo-128``).
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from jamsdk.errors import ConfigError

CONFIG_DIR = Path(__file__).parent / "configs"

ATTENTION_PLACES = ("none", "decoder", "encoder", "both")
BG_TYPES = ("zero", "shift", "affine", "perspective")
RES_BLOCKS = ("basic", "bottleneck")


@dataclass(frozen=True)
class RegionPredictorConfig:
    """Region predictor: hourglass → K heatmaps → shift, covariance and PCA affine per region."""

    block_expansion: int = 32
    max_features: int = 1024
    num_blocks: int = 5
    temperature: float = 0.1
    scale_factor: float = 0.25
    pad: int = 0
    # Where SCSE attention sits in the hourglass (see docs/model.md for the choice).
    attention: str = "decoder"


@dataclass(frozen=True)
class DenseMotionConfig:
    """Pixelwise flow predictor (MRAA's ``pixelwise_flow_predictor``)."""

    block_expansion: int = 64
    max_features: int = 1024
    num_blocks: int = 5
    scale_factor: float = 0.25
    use_deformed_source: bool = True
    use_covar_heatmap: bool = True
    estimate_occlusion_map: bool = True
    region_var: float = 0.01
    attention: str = "decoder"


@dataclass(frozen=True)
class GeneratorConfig:
    """Generator: first block, down blocks, residual bottleneck, up blocks, occlusion-aware warps."""

    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    num_bottleneck_blocks: int = 6
    skips: bool = True
    # "basic": two 3×3 convs (MRAA); "bottleneck": 1×1 reduce → dilated 3×3 → 1×1 expand (JAM).
    res_block: str = "basic"
    # One dilation rate per residual block (a single value is repeated).
    dilations: tuple[int, ...] = (1,)
    bottleneck_reduction: int = 4
    # SCSE on the output of every residual block.
    attention: bool = False


@dataclass(frozen=True)
class BgMotionConfig:
    """Background motion predictor: one 3×3 transform of the whole frame."""

    bg_type: str = "zero"
    block_expansion: int = 32
    max_features: int = 1024
    num_blocks: int = 5


@dataclass(frozen=True)
class AvdConfig:
    """Animation-via-disentanglement network (MRAA stage 2)."""

    enabled: bool = True
    id_bottleneck_size: int = 64
    pose_bottleneck_size: int = 64
    # Widths of the encoders' hidden layers (the decoder mirrors them); MRAA's are 256, 512, 1024.
    hidden_sizes: tuple[int, ...] = (256, 512, 1024)


@dataclass(frozen=True)
class ModelConfig:
    """The whole model. ``image_size`` is the square resolution the model runs at."""

    name: str = "jam"
    image_size: int = 256
    num_regions: int = 10
    num_channels: int = 3
    revert_axis_swap: bool = True
    # grid_sample / bilinear resize convention; MRAA checkpoints were trained with False.
    align_corners: bool = False
    scse_reduction: int = 16
    region_predictor: RegionPredictorConfig = field(default_factory=RegionPredictorConfig)
    dense_motion: DenseMotionConfig = field(default_factory=DenseMotionConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    bg_motion: BgMotionConfig = field(default_factory=BgMotionConfig)
    avd: AvdConfig = field(default_factory=AvdConfig)

    def __post_init__(self) -> None:
        _check_model(self)

    def supported_sizes(self, up_to: int = 1024) -> list[int]:
        """Square input sizes (≤ ``up_to``) this architecture can take."""
        return [s for s in range(8, up_to + 1) if not size_problems(self, s)]

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (lists, not tuples) that ``from_dict`` reads back and YAML/JSON can hold."""
        return _to_plain(dataclasses.asdict(self))


def size_problems(cfg: ModelConfig, size: int) -> list[str]:
    """Reasons why ``size`` does not fit ``cfg`` (empty when it fits)."""
    problems = []
    for name, sub in (("region_predictor", cfg.region_predictor), ("dense_motion", cfg.dense_motion)):
        inv = round(1 / sub.scale_factor)
        if size % inv:
            problems.append(f"{name}: size must be divisible by {inv} (scale_factor {sub.scale_factor})")
            continue
        inner = size // inv
        if inner % (2**sub.num_blocks):
            problems.append(
                f"{name}: size × {sub.scale_factor} = {inner} must be divisible by 2**num_blocks = {2**sub.num_blocks}"
            )
        if name == "region_predictor" and inner - 6 + 2 * sub.pad < 1:
            problems.append("region_predictor: heatmap would be empty")
    if size % (2**cfg.generator.num_down_blocks):
        problems.append(f"generator: size must be divisible by {2**cfg.generator.num_down_blocks}")
    if cfg.bg_motion.bg_type != "zero" and size % (2**cfg.bg_motion.num_blocks):
        problems.append(f"bg_motion: size must be divisible by {2**cfg.bg_motion.num_blocks}")
    return problems


def _check_model(cfg: ModelConfig) -> None:
    def bad(key: str, msg: str) -> None:
        raise ConfigError(f"model.{key}: {msg}")

    def positive(key: str, value: float) -> None:
        if value <= 0:
            bad(key, f"expected a positive value, got {value!r}")

    for key in ("image_size", "num_regions", "num_channels", "scse_reduction"):
        positive(key, getattr(cfg, key))
    for sect in ("region_predictor", "dense_motion"):
        sub = getattr(cfg, sect)
        if sub.attention not in ATTENTION_PLACES:
            bad(f"{sect}.attention", f"expected one of {ATTENTION_PLACES}, got {sub.attention!r}")
        if not 0 < sub.scale_factor <= 1 or abs(1 / sub.scale_factor - round(1 / sub.scale_factor)) > 1e-6:
            bad(f"{sect}.scale_factor", f"expected 1/n for a whole n ≥ 1, got {sub.scale_factor!r}")
        for key in ("block_expansion", "max_features", "num_blocks"):
            positive(f"{sect}.{key}", getattr(sub, key))
    positive("region_predictor.temperature", cfg.region_predictor.temperature)
    if cfg.region_predictor.pad < 0:
        bad("region_predictor.pad", f"expected ≥ 0, got {cfg.region_predictor.pad}")
    g = cfg.generator
    if g.res_block not in RES_BLOCKS:
        bad("generator.res_block", f"expected one of {RES_BLOCKS}, got {g.res_block!r}")
    if not g.dilations or any(d < 1 for d in g.dilations):
        bad("generator.dilations", f"expected a non-empty list of whole numbers ≥ 1, got {list(g.dilations)!r}")
    if len(g.dilations) not in (1, g.num_bottleneck_blocks):
        bad(
            "generator.dilations",
            f"expected 1 or num_bottleneck_blocks={g.num_bottleneck_blocks} values, got {len(g.dilations)}",
        )
    for key in ("block_expansion", "max_features", "bottleneck_reduction"):
        positive(f"generator.{key}", getattr(g, key))
    if g.num_down_blocks < 0 or g.num_bottleneck_blocks < 0:
        bad("generator", "num_down_blocks and num_bottleneck_blocks must be ≥ 0")
    if not cfg.avd.hidden_sizes or any(n < 1 for n in cfg.avd.hidden_sizes):
        bad("avd.hidden_sizes", f"expected a non-empty list of positive widths, got {list(cfg.avd.hidden_sizes)!r}")
    if cfg.bg_motion.bg_type not in BG_TYPES:
        bad("bg_motion.bg_type", f"expected one of {BG_TYPES}, got {cfg.bg_motion.bg_type!r}")
    problems = size_problems(cfg, cfg.image_size)
    if problems:
        bad("image_size", f"{cfg.image_size} does not fit the architecture: " + "; ".join(problems))


# ---------------------------------------------------------------------------------------------
# Generic, strict dataclass <- mapping conversion


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj


def first_difference(a: Any, b: Any, path: str) -> tuple[str, Any, Any] | None:
    """The first dotted key (in sorted order) where two config dicts differ, with both values.

    Nested dicts are walked; a key missing on one side compares as ``None``. ``None`` when the two
    are equal. Callers word the message: the trainer names which side is the checkpoint, the
    ablation which side is which config.
    """
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            found = first_difference(a.get(k), b.get(k), f"{path}.{k}")
            if found:
                return found
        return None
    return None if a == b else (path, a, b)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return from_dict(tp, value, path)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _convert(value, arg, path)
            except ConfigError:
                pass
        raise ConfigError(f"{path}: expected {_type_name(tp)}, got {value!r}")
    if tp is type(None):
        if value is not None:
            raise ConfigError(f"{path}: expected null, got {value!r}")
        return None
    if origin is tuple:
        (item_tp, *_rest) = typing.get_args(tp)
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            value = [value]  # a scalar where a list is expected means a list of one
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected {_type_name(tp)}, got {value!r}")
        return tuple(_convert(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected int, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected float, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected str, got {value!r}")
        return value
    if tp is Any:
        return value
    raise TypeError(f"unsupported config field type {tp!r} at {path}")  # a bug, not user input


def from_dict(cls: type, data: Mapping[str, Any], path: str = "") -> Any:
    """Build the frozen dataclass ``cls`` from ``data``; unknown keys and bad types raise ConfigError."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    prefix = f"{path}." if path else ""
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{prefix}{unknown[0]}: unknown key (expected one of: {', '.join(sorted(names))})"
        )
    kwargs = {k: _convert(v, hints[k], f"{prefix}{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        if path and not str(exc).startswith(path):
            raise ConfigError(f"{path}: {exc}") from None
        raise


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML mapping with ``yaml.safe_load``; errors name the file."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({exc})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def resolve_config_path(name_or_path: str | os.PathLike[str]) -> Path:
    """A path as given, or the name of a shipped config (``jam-256`` → jamsdk/configs/jam-256.yaml)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    shipped = CONFIG_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    names = sorted(q.stem for q in CONFIG_DIR.glob("*.yaml"))
    raise ConfigError(f"config {str(name_or_path)!r} is neither a file nor a shipped config ({', '.join(names)})")


def model_config_from_dict(data: Mapping[str, Any]) -> ModelConfig:
    """ModelConfig from the ``model`` mapping of a config file (or of a checkpoint)."""
    return from_dict(ModelConfig, data, "model")


def read_config_file(name_or_path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """``(path, data)`` of a config file whose top level is ``model:`` and optionally ``train:``."""
    path = resolve_config_path(name_or_path)
    data = read_yaml(path)
    unknown = sorted(set(data) - {"model", "train"})
    if unknown:
        raise ConfigError(f"{path}: {unknown[0]}: unknown top-level key (expected 'model' and optionally 'train')")
    if "model" not in data:
        raise ConfigError(f"{path}: missing the 'model' section")
    return path, data


def load_model_config(name_or_path: str | os.PathLike[str]) -> ModelConfig:
    """Read the ``model`` section of a YAML config (a path, or a shipped config name)."""
    path, data = read_config_file(name_or_path)
    try:
        return model_config_from_dict(data["model"] or {})
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
