"""Streaming animation: one source picture, driving frames in, animated frames out.

::

    import jamsdk
    with jamsdk.Animator("model_dir") as anim:          # TensorRT if engines fit, else ONNX Runtime
        anim.set_source(picture)                         # (H, W, 3) uint8 RGB
        for frame in frames:
            out = anim.run(frame)                        # (S, S, 3) uint8 RGB
        print(anim.stats_table())                        # per-stage latency (anim.stats(): the numbers)

Work per source (``set_source``): ``region_predictor`` on the source and ``generator_encoder``
(the source half of the generator), cached. Work per frame (``run``): ``region_predictor`` on the
frame, the mode's transfer (relative: the region algebra; avd: the ``avd`` stage),
``dense_motion`` and ``generator``. The first frame after ``set_source``/``reset`` (or the first
ever) is the driving reference of the relative mode.

The work is described once, as plans (:mod:`jamsdk.runtime.plan`), and run by the backend's
pipeline: ONNX Runtime on the host, stage by stage; TensorRT device-resident, where the cached
source tensors stay on the GPU and a streamed uint8 frame costs one upload of the ``S × S × 3``
crop, one download of the ``S × S × 3`` result and one stream sync (with the helper graphs of
:mod:`jamsdk.runtime.helpers`; folders exported without them take a slower host path for the
pixels and the relative algebra).
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from jamsdk.bundled import DEMO_SPEC, resolve_model, warn_if_demo
from jamsdk.errors import InputError
from jamsdk.manifest import Manifest, load_manifest
from jamsdk.pixels import center_crop_resize, resize_square
from jamsdk.runtime import frame_plans, regions
from jamsdk.runtime.backends import BACKENDS, Backend, resolve_backend
from jamsdk.runtime.frames import (
    check_frame, check_model_tensor, check_output_size, output_side, to_image, to_model_input,
)
from jamsdk.runtime.plan import Pipeline, Plan, slot_specs
from jamsdk.runtime.reference import best_reference
from jamsdk.runtime.smoothing import RegionSmoother
from jamsdk.runtime.stats import LatencyStats

Params = dict[str, np.ndarray]
PRECISIONS = ("fp32", "fp16", "int8")


class Animator:
    """Animate a source picture with driving frames through an exported model folder.

    Args:
        model_dir: a folder written by ``jamsdk export`` (``manifest.json`` + graphs, and engines
            after ``jamsdk build``), or ``"demo"`` for the bundled demo model (which issues a
            :class:`~jamsdk.bundled.DemoModelWarning` once per process: it knows synthetic figures only).
        backend: ``"auto"`` (TensorRT when the folder has engines, tensorrt imports and a GPU
            answers; otherwise ONNX Runtime, or for ``precision="int8"`` OpenVINO where it is
            installed), ``"tensorrt"``, ``"onnxruntime"`` or ``"openvino"`` (CPU; compiled models
            are cached per user, see :mod:`jamsdk.runtime.backends.openvino`).
        mode: ``"relative"`` (motion relative to the first driving frame, scaled to the source;
            the default), ``"standard"`` (absolute driving regions) or ``"avd"`` (needs a model
            with the AVD network).
        precision: which ONNX graphs ONNX Runtime or OpenVINO loads, ``"fp32"`` (default), ``"fp16"``
            or ``"int8"`` (Q/DQ graphs from ``jamsdk export --precision int8``; each runtime takes
            the graph the export judged for it).
            TensorRT runs the engines as built (``jamsdk build`` chose their precision).
        providers: ONNX Runtime execution providers (None: CPU; ``"auto"``: TensorRT/CUDA EPs
            when installed).
        threads: ONNX Runtime intra-op / OpenVINO inference threads (None: their default).
        cuda_graph: TensorRT only: replay a frame's engines as one CUDA graph from the second frame on.
        bgr: frames and pictures come as BGR (OpenCV) and results go out as BGR.
        output_size: ``"model"`` (``S × S``, default), ``"crop"`` (the side of the input's centred
            square) or an int side; see :mod:`jamsdk.runtime.frames` for the crop policy.
        use_bg_motion: run the ``bg_motion`` stage per frame (when the model has one). Off by
            default: like MRAA's animation, the background transform is the identity.
        verify_hashes: check every graph's/engine's SHA-256 against the manifest when opening.
        stats_window: how many recent samples per stage :meth:`stats` keeps for percentiles.
        smoothing: One-Euro filter on the driving regions, its time constant in frames while
            still (0 = off, the default; 2–5 calms a jittery driver). See
            :mod:`jamsdk.runtime.smoothing`.

    The constructor loads every stage the mode needs (the only point where a GPU is touched);
    :meth:`close` or leaving the ``with`` block frees them.

    Raises:
        InputError: bad arguments or a bad model folder (a :class:`~jamsdk.errors.ManifestError`).
        EngineError: a graph or engine that cannot be loaded here (e.g. built for another GPU).
        MissingDependencyError: the chosen backend's package is not installed.
    """

    def __init__(self, model_dir: str | os.PathLike[str], backend: str = "auto", mode: str = "relative", *,
                 precision: str = "fp32", providers: str | Sequence[str] | None = None,
                 threads: int | None = None, cuda_graph: bool = False, bgr: bool = False,
                 output_size: str | int = "model", use_bg_motion: bool = False, verify_hashes: bool = True,
                 stats_window: int = 10_000, smoothing: float = 0.0):
        self._backends: dict[str, Backend] = {}
        # For `animate` and `jamsdk live`: smoothing of the driving regions against jitter, and the
        # last frame's regions kept so that a view (jamsdk.runtime.views) can draw them.
        self._smoother = RegionSmoother(smoothing)
        self._last_regions: dict[str, Params] | None = None
        self._keep_regions = False  # off: the default plans stay as they are (no host step)
        if precision not in PRECISIONS:
            raise InputError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
        self.output_size = check_output_size(output_size)
        self.bgr = bool(bgr)
        if model_dir is None or model_dir == DEMO_SPEC:
            model_dir = resolve_model(model_dir)
        self.manifest: Manifest = load_manifest(model_dir, verify_hashes=verify_hashes)
        warn_if_demo(self.manifest.model_dir)  # once per process: the bundled model's scope
        self.mode = self.manifest.check_mode(mode)
        self.kind = resolve_backend(self.manifest, backend, precision)
        self.image_size = self.manifest.image_size
        self.use_bg_motion = bool(use_bg_motion) and self.manifest.has_bg_motion
        self._stats = LatencyStats(stats_window)
        options = {"precision": precision, "providers": providers, "threads": threads,
                   "cuda_graph": cuda_graph, "verify_hashes": verify_hashes}
        # Stages this Animator never calls are not loaded (no memory, no GPU buffers for them).
        unused = {"avd"} if self.mode != "avd" else set()
        if not self.use_bg_motion:
            unused.add("bg_motion")
        needed = [name for name in self.manifest.stages if name not in unused]
        cls = BACKENDS[self.kind]
        self._pipe: Pipeline | None = None
        try:
            for name in needed:
                self._backends[name] = cls.from_manifest(self.manifest, name, options).open()
            helpers = cls.helper_backends(self.manifest, options)
            if self.mode != "relative":
                helpers.pop("relative", None)
            for name, b in helpers.items():
                self._backends[name] = b.open()
            # Device pixels only as a pair: a uint8 frame in needs a uint8 result out to save anything.
            self._device_pixels = "preprocess" in helpers and "postprocess" in helpers
            self._device_relative = "relative" in helpers
            stages = {name: b.stage for name, b in self._backends.items()}
            slots = slot_specs(self._all_plans(), stages)
            self._pipe = cls.open_pipeline(self._backends, slots, options)
            if self._device_pixels:
                self._pipe.write("channel_order", np.array([2, 1, 0] if self.bgr else [0, 1, 2], np.int32))
            if self.manifest.has_bg_motion and not self.use_bg_motion:
                self._pipe.write("bg_params", np.eye(3, dtype=np.float32)[None])
        except BaseException:
            try:
                self.close()
            except Exception:  # the error that stopped the opening is the one to report
                pass
            raise
        self._source_image: np.ndarray | None = None
        self._source: Params | None = None
        self._initial: Params | None = None
        self._scale: np.float32 | None = None

    # -- public API ------------------------------------------------------------------------------

    def set_source(self, image: np.ndarray) -> None:
        """Set the picture to animate: ``(H, W, 3)`` uint8 RGB (BGR with ``bgr=True``), any size.

        Runs the per-source stages once. The driving reference of the relative mode is kept (its
        movement scale is recomputed for the new source); call :meth:`reset` to take a new one.
        """
        self.set_source_tensor(to_model_input(image, self.image_size, self.bgr, "source image"))

    def set_source_tensor(self, source: np.ndarray) -> None:
        """:meth:`set_source` for a model-space ``(1, 3, S, S)`` float32 RGB array in [0, 1]."""
        self._check_tensor(source, "source")
        self._require_open()
        with self._stats.time("source"):
            src = np.array(source, dtype=np.float32, order="C", copy=True)  # cached: the caller may reuse theirs
            out = self._pipeline().run(self._source_plan(), {"source": src}, time=self._stats.time)
        self._source_image = src
        self._source = {key: out[f"source_{key}"] for key in regions.PARAM_NAMES}
        self._scale = None
        self._smoother.reset()
        if self._device_relative and self._initial is not None:  # the kept reference, scaled for this source
            self._pipeline().write("scale", self._reference_scale())

    def run(self, frame: np.ndarray) -> np.ndarray:
        """Animate the source by one driving frame.

        Args:
            frame: ``(H, W, 3)`` uint8 RGB (BGR with ``bgr=True``) or float in [0, 1], any size
                (the centred square is used).

        Returns:
            ``(side, side, 3)`` uint8 in the input's channel order; ``side`` per ``output_size``.
        """
        self._require_source()
        with self._stats.time("frame"):
            entry, feed = self._frame_feed(frame)  # validates the frame
            side = output_side(self.output_size, self.image_size, frame.shape)
            if self._device_pixels:
                out = self._run_plan(entry, "result_u8", feed)[0]
                with self._stats.time("postprocess"):
                    return np.ascontiguousarray(resize_square(out, side) if side != self.image_size else out)
            pred = self._run_plan(entry, "prediction", feed)
            with self._stats.time("postprocess"):
                return to_image(pred, side, self.bgr)

    def run_device(self, frame: np.ndarray) -> Any:
        """:meth:`run`, with the ``(S, S, 3)`` uint8 result left on the GPU (no download, no host copy).

        Returns an object with ``__cuda_array_interface__`` (``torch.as_tensor(r, device="cuda")``,
        ``cupy.asarray(r)`` wrap it without a copy; ``r.to_host()`` downloads it). The buffer is the
        Animator's: the next run overwrites it and :meth:`close` frees it, so copy what you keep.
        Needs the TensorRT backend and a folder with helper graphs (exported by this jamsdk, engines
        built by ``jamsdk build``); ``output_size`` does not apply (always ``S × S``).

        Raises:
            InputError: on ONNX Runtime, or for a folder without helper graphs.
        """
        self._require_source()
        if not (self._device_pixels and self._pipeline().on_device):
            raise InputError("run_device needs the TensorRT backend and a model folder with helper graphs "
                             "(re-export it with this jamsdk, or jamsdk.runtime.helpers.add_helper_graphs, "
                             "then `jamsdk build`); use run() otherwise")
        with self._stats.time("frame"):
            entry, feed = self._frame_feed(frame)
            with self._stats.time("pipeline"):
                result = self._pipeline().run_device(self._frame_plan(entry, "result_u8"), {feed[0]: feed[1]},
                                                     keep="result_u8")
        result.shape = result.shape[1:]  # (1, S, S, 3) → (S, S, 3): the same memory
        return result

    def run_tensor(self, driving: np.ndarray) -> np.ndarray:
        """:meth:`run` in model space: ``(1, 3, S, S)`` float32 in [0, 1] → prediction, same layout."""
        self._check_tensor(driving, "driving")
        self._require_source()
        return self._run_plan("driving", "prediction", ("driving", np.ascontiguousarray(driving)))

    def reset(self) -> None:
        """Make the next driving frame the relative mode's reference (e.g. after the driver moved)."""
        self._initial = None
        self._scale = None
        self._smoother.reset()

    # -- reference search and region read-out (`animate --best-frame` and the live views use them) ---

    def find_reference(self, frames: Iterable[np.ndarray]) -> int:
        """Index of the driving frame whose region layout best matches the source's.

        Runs ``region_predictor`` on each frame (one at a time: a long video is not held in
        memory) in the Animator's own pipeline (on TensorRT: its engine context, stream and
        activation memory; no second set); the measure is
        :func:`jamsdk.runtime.reference.layout_distance`. Changes no state: pass the chosen frame to
        :meth:`set_reference` to use it.

        Raises:
            InputError: no source set, no frames, or a bad frame.
        """
        self._require_source()
        return best_reference(self._source, (self._frame_regions(f, "candidate frame") for f in frames))

    def set_reference(self, frame: np.ndarray) -> None:
        """Make ``frame`` the relative mode's reference (instead of the next driving frame)."""
        self._require_source()
        self._initial = self._frame_regions(frame, "reference frame")
        self._scale = None
        self._smoother.reset()
        if self._device_relative:  # the device-side relative step reads the reference from its slots
            self._pipeline().write_many({"initial_shift": self._initial["shift"],
                                         "initial_affine": self._initial["affine"], "scale": self._reference_scale()})

    @property
    def last_regions(self) -> dict[str, Params] | None:
        """Region params of the last :meth:`run`: ``{"source", "driving", "transferred"}``, each
        ``{"shift", "covar", "affine"}`` (driving after smoothing; transferred = what the
        generator was driven with). None unless :attr:`keep_regions` is on (and a frame ran since)."""
        return self._last_regions

    @property
    def keep_regions(self) -> bool:
        """Whether :attr:`last_regions` is kept (default off). On, the frame's region params visit
        the host (a numpy step; on the device-resident TensorRT path one small round trip per frame,
        and the relative algebra runs on the host), e.g. for the region overlay of
        :mod:`jamsdk.runtime.views`."""
        return self._keep_regions

    @keep_regions.setter
    def keep_regions(self, value: bool) -> None:
        self._keep_regions = bool(value)
        if not value:
            self._last_regions = None

    def stats(self) -> dict[str, dict[str, float]]:
        """Latency per stage (and ``frame``, ``source``, ``preprocess``, ``postprocess``) in ms.

        ``{key: {"count", "mean_ms", "p50_ms", "p90_ms"}}``; count is over the whole life, the
        mean and percentiles over the last ``stats_window`` samples.
        """
        return self._stats.summary()

    def stats_table(self) -> str:
        """:meth:`stats` as a fixed-width text table: one line per key, count and mean/p50/p90 in ms."""
        from jamsdk.runtime.stats import format_stats

        return format_stats(self.stats())

    @property
    def backend(self) -> str:
        """The backend kind in use (``"tensorrt"``, ``"onnxruntime"`` or ``"openvino"``)."""
        return self.kind

    def close(self) -> None:
        """Free every backend's resources (GPU memory, sessions). Safe to call twice."""
        pipe, self._pipe = getattr(self, "_pipe", None), None
        backends, self._backends = self._backends, {}
        errors = []
        # The pipeline (its execution contexts) before the backends' engines; each in its own try.
        for closing in ([pipe] if pipe is not None else []) + list(backends.values()):
            try:
                closing.close()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> "Animator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<Animator {self.manifest.model_dir} backend={self.kind} mode={self.mode} "
                f"size={self.image_size} {'open' if self._backends else 'closed'}>")

    # -- internals -------------------------------------------------------------------------------

    def _require_open(self) -> None:
        if not self._backends:
            raise InputError("this Animator is closed")

    def _require_source(self) -> None:
        self._require_open()
        if self._source is None or self._source_image is None:
            raise InputError("no source picture: call set_source(image) before run(frame)")

    def _check_tensor(self, x: Any, what: str) -> None:
        check_model_tensor(x, self.image_size, what)

    def _frame_regions(self, frame: np.ndarray, what: str) -> Params:
        """The region params of one frame (not a driving frame: no state changes), in the Animator's pipeline."""
        if self._device_pixels and check_frame(frame, what).dtype == np.uint8:
            entry, x = "frame_u8", center_crop_resize(frame, self.image_size)[None]
        else:
            entry, x = "driving", to_model_input(frame, self.image_size, self.bgr, what)
        out = self._pipeline().run(frame_plans.regions_plan(entry), {entry: x})
        return {key: out[f"frame_{key}"] for key in regions.PARAM_NAMES}

    def _pipeline(self) -> Pipeline:
        if self._pipe is None:
            raise InputError("this Animator is closed")
        return self._pipe

    def _frame_feed(self, frame: np.ndarray) -> tuple[str, tuple[str, np.ndarray]]:
        """(plan entry, (slot, array)): the uint8 crop for device pixels, else the model-space tensor."""
        with self._stats.time("preprocess"):
            if self._device_pixels and check_frame(frame, "driving frame").dtype == np.uint8:
                # Only the crop + resize on the host: it shrinks the upload to S·S·3 bytes.
                return "frame_u8", ("frame_u8", center_crop_resize(frame, self.image_size)[None])
            return "driving", ("driving", to_model_input(frame, self.image_size, self.bgr, "driving frame"))

    def _run_plan(self, entry: str, exit: str, feed: tuple[str, np.ndarray]) -> np.ndarray:
        pipe = self._pipeline()
        plan = self._frame_plan(entry, exit)
        if pipe.on_device:  # stages are enqueued, not run, one by one: one time for the whole chain
            with self._stats.time("pipeline"):
                return pipe.run(plan, {feed[0]: feed[1]})[exit]
        return pipe.run(plan, {feed[0]: feed[1]}, time=self._stats.time)[exit]

    # -- plans ---------------------------------------------------------------------------------------

    def _layout(self) -> frame_plans.Layout:
        return frame_plans.Layout(
            mode=self.mode, use_bg_motion=self.use_bg_motion, has_bg_motion=self.manifest.has_bg_motion,
            device_relative=self._device_relative,
            features=tuple(s.name for s in self._backends["generator_encoder"].stage.outputs))

    def _source_plan(self) -> Plan:
        return frame_plans.source_plan(self._layout())

    def _all_plans(self) -> list[Plan]:
        entries = ["driving"] + (["frame_u8"] if self._device_pixels else [])
        exits = ["prediction"] + (["result_u8"] if self._device_pixels else [])
        plans = [self._source_plan()] + [frame_plans.regions_plan(e) for e in entries]
        for reference in (False, True):
            for host_params in (False, True):
                plans += [self._frame_plan(e, x, reference, host_params) for e in entries for x in exits]
        return plans

    def _host_params(self) -> bool:
        """Whether driving region params must visit the host each frame (a host-side filter is on)."""
        return self._smoother.enabled or self._keep_regions

    def _host_smooth(self, slots: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Host step: the One-Euro filter on this frame's region params (:mod:`jamsdk.runtime.smoothing`)."""
        out = self._smoother({key: slots[f"frame_{key}"] for key in regions.PARAM_NAMES})
        return {f"frame_{key}": out[key] for key in regions.PARAM_NAMES}

    def _host_record(self, slots: dict[str, np.ndarray], moved: Mapping[str, str]) -> dict[str, np.ndarray]:
        """Host step: keep this frame's driving and transferred region params for :attr:`last_regions`."""
        self._last_regions = {"source": self._source or {},
                              "driving": {key: slots[f"frame_{key}"] for key in regions.PARAM_NAMES},
                              "transferred": {key: slots[slot] for key, slot in moved.items()}}
        return {}

    def _frame_plan(self, entry: str, exit: str, reference: bool | None = None,
                    host_params: bool | None = None) -> Plan:
        """The steps of one frame; ``reference``/``host_params`` default to the Animator's state."""
        return frame_plans.frame_plan(
            self._layout(), entry, exit, self._initial is None if reference is None else reference,
            self._host_params() if host_params is None else host_params,
            take_reference=self._take_reference, host_transfer=self._host_transfer,
            smooth=self._host_smooth if self._smoother.enabled else None,
            record=self._host_record if self._keep_regions else None)

    def _take_reference(self, slots: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Host step of the first relative frame: keep it as the reference, upload its params and scale."""
        self._initial = {key: slots[f"frame_{key}"] for key in regions.PARAM_NAMES}
        self._scale = None
        return {"initial_shift": self._initial["shift"], "initial_affine": self._initial["affine"],
                "scale": self._reference_scale()}

    def _reference_scale(self) -> np.ndarray:
        assert self._source is not None and self._initial is not None
        self._scale = regions.relative_scale(self._source, self._initial)
        return np.array([self._scale], np.float32)

    def _host_transfer(self, slots: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Host step: the mode's region transfer in numpy (ONNX Runtime; TensorRT without helper graphs)."""
        driving = {key: slots[f"frame_{key}"] for key in regions.PARAM_NAMES}
        if self._initial is None:
            self._initial = driving
        assert self._source is not None
        params = self._transfer(self._source, driving)
        return {f"driving_{key}": params[key] for key in regions.PARAM_NAMES}

    def _transfer(self, source: Params, driving: Params) -> Params:
        if self.mode == "standard":
            return driving
        assert self._initial is not None
        if self._scale is None:  # once per (source, reference) pair
            self._scale = regions.relative_scale(source, self._initial)
        return regions.relative_params(source, driving, self._initial, self._scale)

