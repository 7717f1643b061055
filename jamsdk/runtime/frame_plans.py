"""The Animator's plans: which stages a source and a frame run, and which slots they share.

Slots are named once here. Per source: ``source`` (model-space picture), ``source_shift`` /
``_covar`` / ``_affine``, ``source_feature_i``. Per frame: ``frame_u8`` (the uint8 crop) or
``driving`` (the float tensor), the region predictor's ``frame_*`` params, the transferred
``driving_*`` params, ``optical_flow``, ``occlusion_map``, ``prediction`` and ``result_u8``.
Settings: ``channel_order``, ``bg_params`` (identity unless ``bg_motion`` runs), and the relative
reference ``initial_shift`` / ``initial_affine`` / ``scale``.

The same plan runs on ONNX Runtime (host slots; the relative algebra as a host step) and on
TensorRT (device slots; with helper graphs the pixels and the relative algebra are steps too).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Iterable

from jamsdk.runtime.plan import HostFn, Plan, Step
from jamsdk.runtime.regions import PARAM_NAMES


@dataclass(frozen=True)
class Layout:
    """What decides a plan's steps besides its entry/exit: the model and the Animator's settings."""

    mode: str
    use_bg_motion: bool
    has_bg_motion: bool
    device_relative: bool  # the ``relative`` helper graph runs (TensorRT with helper graphs)
    features: tuple[str, ...]  # the generator encoder's outputs (= the generator's feature inputs)


def params(prefix: str, tensor_prefix: str = "") -> dict[str, str]:
    """Region-param bindings: tensor ``shift`` (or ``<tensor_prefix>_shift``) → slot ``<prefix>_shift``."""
    t = f"{tensor_prefix}_" if tensor_prefix else ""
    return {f"{t}{key}": f"{prefix}_{key}" for key in PARAM_NAMES}


def _same(slots: Iterable[str]) -> dict[str, str]:
    return {s: s for s in slots}


def source_plan(layout: Layout) -> Plan:
    """``set_source``: region params of the source (fetched: the relative scale needs them) and its features."""
    return Plan("source", (
        Step("region_predictor", {"image": "source"}, params("source")),  # not timed: a per-frame key
        Step("generator_encoder", {"source": "source"}, _same(layout.features), stat="generator_encoder"),
    ), feeds=("source",), fetches=tuple(params("source").values()))


def regions_plan(entry: str) -> Plan:
    """The region predictor alone on one frame from ``entry`` (a reference search): the ``frame_*`` params fetched.

    Its slots are the frame plans' own, so it runs in the Animator's pipeline between frames (it
    leaves nothing a frame reads: the relative reference lives in ``initial_*``/``scale``).
    """
    steps = []
    if entry == "frame_u8":
        steps.append(Step("preprocess", {"frame": "frame_u8", "channel_order": "channel_order"}, {"image": "driving"}))
    steps.append(Step("region_predictor", {"image": "driving"}, params("frame")))
    return Plan(f"regions:{entry}", tuple(steps), feeds=(entry,), fetches=tuple(params("frame").values()))


def frame_plan(layout: Layout, entry: str, exit: str, reference: bool, host_params: bool, *,
               take_reference: HostFn, host_transfer: HostFn, smooth: HostFn | None = None,
               record: Callable[..., dict] | None = None) -> Plan:
    """One frame from ``entry`` (``frame_u8`` or ``driving``) to ``exit`` (``result_u8`` or ``prediction``).

    Args:
        reference: the frame is the relative mode's reference (the first after set_source/reset).
        host_params: the driving region params must visit the host (a host-side filter is on).
        take_reference: host step ``frame_*`` → ``initial_shift``, ``initial_affine``, ``scale``.
        host_transfer: host step ``frame_*`` → ``driving_*`` (the numpy transfer).
        smooth: with ``host_params``, host step ``frame_*`` → ``frame_*`` right after the region
            predictor (the Animator's motion smoothing).
        record: with ``host_params``, host step reading ``frame_*`` and the transferred params
            before ``dense_motion``, called as ``record(slots, moved={param: slot})`` (the
            Animator's ``last_regions``); it writes nothing.
    """
    steps = []
    if entry == "frame_u8":
        steps.append(Step("preprocess", {"frame": "frame_u8", "channel_order": "channel_order"}, {"image": "driving"}))
    steps.append(Step("region_predictor", {"image": "driving"}, params("frame"), stat="region_predictor"))
    if host_params and smooth is not None:
        steps.append(Step("smooth", _same(params("frame").values()), _same(params("frame").values()), host=smooth))
    if layout.use_bg_motion:
        steps.append(Step("bg_motion", {"source": "source", "driving": "driving"}, {"bg_params": "bg_params"},
                          stat="bg_motion"))
    frame, driving = params("frame"), params("driving")
    if layout.mode == "avd":
        steps.append(Step("avd", {"source_shift": "source_shift", "source_affine": "source_affine",
                                  "driving_shift": "frame_shift", "driving_affine": "frame_affine"},
                          driving, stat="avd"))
        moved = driving
    elif layout.mode == "relative" and layout.device_relative and not host_params:
        if reference:  # the movement scale needs a convex hull: host, once per reference
            steps.append(Step("reference", _same(frame.values()), _same(["initial_shift", "initial_affine", "scale"]),
                              host=take_reference))
        steps.append(Step("relative", {"source_shift": "source_shift", "source_affine": "source_affine",
                                       "driving_shift": "frame_shift", "driving_affine": "frame_affine",
                                       "initial_shift": "initial_shift", "initial_affine": "initial_affine",
                                       "scale": "scale"},
                          {"shift": "driving_shift", "affine": "driving_affine"}, stat="relative"))
        moved = {"shift": "driving_shift", "covar": "frame_covar", "affine": "driving_affine"}  # covar: as driven
    elif layout.mode == "relative" or host_params:
        steps.append(Step("transfer", _same(frame.values()), _same(driving.values()), host=host_transfer))
        moved = driving
    else:  # standard: the region predictor's outputs are dense_motion's inputs
        moved = frame
    if host_params and record is not None:
        steps.append(Step("regions", {**_same(params("frame").values()), **_same(moved.values())}, {},
                          host=functools.partial(record, moved=dict(moved))))
    dm = {"source": "source", **params("source", "source"), **{f"driving_{k}": v for k, v in moved.items()}}
    if layout.has_bg_motion:
        dm["bg_params"] = "bg_params"
    steps.append(Step("dense_motion", dm, {"optical_flow": "optical_flow", "occlusion_map": "occlusion_map"},
                      stat="dense_motion"))
    steps.append(Step("generator", {"source": "source", **_same(layout.features), "optical_flow": "optical_flow",
                                    "occlusion_map": "occlusion_map"}, {"prediction": "prediction"}, stat="generator"))
    if exit == "result_u8":
        steps.append(Step("postprocess", {"prediction": "prediction", "channel_order": "channel_order"},
                          {"frame": "result_u8"}))
    extra = "".join(f":{st.name}" for st in steps if st.name in ("smooth", "regions"))  # CUDA graphs: keyed by name
    name = f"frame:{entry}>{exit}{':ref' if reference else ''}{':host' if host_params else ''}{extra}"
    return Plan(name, tuple(steps), feeds=(entry,), fetches=(exit,))
