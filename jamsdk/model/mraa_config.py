"""An MRAA YAML config → the jamsdk :class:`~jamsdk.config.ModelConfig` that computes the same model.

MRAA's released configs (``config/{mgif256,vox256,taichi256,ted384,ted-youtube384}.yaml``) put
``num_regions``, ``num_channels``, ``estimate_affine`` and ``revert_axis_swap`` directly under
``model_params``, beside the sections ``bg_predictor_params``, ``region_predictor_params``,
``generator_params`` (with ``pixelwise_flow_predictor_params`` inside) and ``avd_network_params``.
Every key is read strictly (type-checked, unknown keys refused, errors named by their MRAA path);
FOMM's layout (``common_params``, ``kp_detector_params``) and MRAA variants jamsdk cannot reproduce
exactly are refused with a message saying so. The result is MRAA-shaped: no attention, plain
residual blocks, ``align_corners`` False. :mod:`jamsdk.model.mraa_import` uses it for a whole conversion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from jamsdk.config import (
    BG_TYPES,
    AvdConfig,
    BgMotionConfig,
    DenseMotionConfig,
    GeneratorConfig,
    ModelConfig,
    RegionPredictorConfig,
    size_problems,
)
from jamsdk.errors import ConfigError

_MISSING = object()


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
