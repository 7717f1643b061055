"""Streaming animation: one source picture, driving frames in, animated frames out.

::

    import jamsdk
    with jamsdk.Animator("model_dir") as anim:          # TensorRT if engines fit, else ONNX Runtime
        anim.set_source(picture)                         # (H, W, 3) uint8 RGB
        for frame in frames:
            out = anim.run(frame)                        # (S, S, 3) uint8 RGB
        print(anim.stats())

Work per source (``set_source``): ``region_predictor`` on the source and ``generator_encoder``
(the source half of the generator), cached. Work per frame (``run``): ``region_predictor`` on the
frame, the mode's transfer (relative: host numpy; avd: the ``avd`` stage), ``dense_motion`` and
``generator``. The first frame after ``set_source``/``reset`` (or the first ever) is the driving
reference of the relative mode.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from jamsdk.bundled import DEMO_SPEC, resolve_model, warn_if_demo
from jamsdk.errors import InputError
from jamsdk.manifest import MODES, Manifest, load_manifest
from jamsdk.runtime import regions
from jamsdk.runtime.backends import BACKENDS, Backend, resolve_backend
from jamsdk.runtime.frames import check_output_size, output_side, to_image, to_model_input
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
            answers; otherwise ONNX Runtime), ``"tensorrt"`` or ``"onnxruntime"``.
        mode: ``"relative"`` (motion relative to the first driving frame, scaled to the source;
            the default), ``"standard"`` (absolute driving regions) or ``"avd"`` (needs a model
            with the AVD network).
        precision: which ONNX graphs ONNX Runtime loads, ``"fp32"`` (default), ``"fp16"`` or
            ``"int8"`` (Q/DQ graphs from ``jamsdk export --precision int8``).
            TensorRT runs the engines as built (``jamsdk build`` chose their precision).
        providers: ONNX Runtime execution providers (None: CPU; ``"auto"``: TensorRT/CUDA EPs
            when installed).
        threads: ONNX Runtime intra-op threads (None: its default).
        cuda_graph: TensorRT only: replay each stage as a CUDA graph after the first frame.
        bgr: frames and pictures come as BGR (OpenCV) and results go out as BGR.
        output_size: ``"model"`` (``S × S``, default), ``"crop"`` (the side of the input's centred
            square) or an int side; see :mod:`jamsdk.runtime.frames` for the crop policy.
        use_bg_motion: run the ``bg_motion`` stage per frame (when the model has one). Off by
            default: like MRAA's animation, the background transform is the identity.
        verify_hashes: check every graph's/engine's SHA-256 against the manifest when opening.
        stats_window: how many recent samples per stage :meth:`stats` keeps for percentiles.

    The constructor loads every stage the mode needs (the only point where a GPU is touched);
    :meth:`close` or leaving the ``with`` block frees them.

    Raises:
        InputError: bad arguments or a bad model folder (a :class:`~jamsdk.manifest.ManifestError`).
        EngineError: a graph or engine that cannot be loaded here (e.g. built for another GPU).
        MissingDependencyError: the chosen backend's package is not installed.
    """

    def __init__(self, model_dir: str | os.PathLike[str], backend: str = "auto", mode: str = "relative", *,
                 precision: str = "fp32", providers: str | Sequence[str] | None = None,
                 threads: int | None = None, cuda_graph: bool = False, bgr: bool = False,
                 output_size: str | int = "model", use_bg_motion: bool = False, verify_hashes: bool = True,
                 stats_window: int = 10_000):
        self._backends: dict[str, Backend] = {}
        if precision not in PRECISIONS:
            raise InputError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
        self.output_size = check_output_size(output_size)
        self.bgr = bool(bgr)
        if model_dir is None or model_dir == DEMO_SPEC:
            model_dir = resolve_model(model_dir)
        self.manifest: Manifest = load_manifest(model_dir, verify_hashes=verify_hashes)
        warn_if_demo(self.manifest.model_dir)  # once per process: the bundled model's scope
        self.mode = self._check_mode(mode)
        self.kind = resolve_backend(self.manifest, backend)
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
        try:
            for name in needed:
                self._backends[name] = cls.from_manifest(self.manifest, name, options).open()
        except BaseException:
            self.close()
            raise
        self._identity_bg = np.eye(3, dtype=np.float32)[None]
        self._source_image: np.ndarray | None = None
        self._source: Params | None = None
        self._features: dict[str, np.ndarray] = {}
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
            # Not under "region_predictor": that key times the per-frame call only.
            params = self._call("region_predictor", {"image": src}, stat=False)
            self._features = self._call("generator_encoder", {"source": src})
        self._source_image, self._source = src, params
        self._scale = None

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
            with self._stats.time("preprocess"):
                x = to_model_input(frame, self.image_size, self.bgr, "driving frame")
            pred = self.run_tensor(x)
            with self._stats.time("postprocess"):
                out = to_image(pred, output_side(self.output_size, self.image_size, frame.shape), self.bgr)
        return out

    def run_tensor(self, driving: np.ndarray) -> np.ndarray:
        """:meth:`run` in model space: ``(1, 3, S, S)`` float32 in [0, 1] → prediction, same layout."""
        self._check_tensor(driving, "driving")
        self._require_source()
        drv = self._call("region_predictor", {"image": np.ascontiguousarray(driving)})
        if self._initial is None:
            self._initial = drv
        params = self._transfer(self._source, drv)
        feeds = {"source": self._source_image}
        for prefix, p in (("source", self._source), ("driving", params)):
            for key in regions.PARAM_NAMES:
                feeds[f"{prefix}_{key}"] = p[key]
        if self.manifest.has_bg_motion:
            feeds["bg_params"] = (self._call("bg_motion", {"source": self._source_image, "driving": driving})
                                  ["bg_params"] if self.use_bg_motion else self._identity_bg)
        motion = self._call("dense_motion", feeds)
        feeds = {"source": self._source_image, **self._features, **motion}
        return self._call("generator", feeds)["prediction"]

    def reset(self) -> None:
        """Make the next driving frame the relative mode's reference (e.g. after the driver moved)."""
        self._initial = None
        self._scale = None

    def stats(self) -> dict[str, dict[str, float]]:
        """Latency per stage (and ``frame``, ``source``, ``preprocess``, ``postprocess``) in ms.

        ``{key: {"count", "mean_ms", "p50_ms", "p90_ms"}}``; count is over the whole life, the
        mean and percentiles over the last ``stats_window`` samples.
        """
        return self._stats.summary()

    @property
    def backend(self) -> str:
        """The backend kind in use (``"tensorrt"`` or ``"onnxruntime"``)."""
        return self.kind

    def close(self) -> None:
        """Free every backend's resources (GPU memory, sessions). Safe to call twice."""
        backends, self._backends = self._backends, {}
        for b in backends.values():
            b.close()

    def __enter__(self) -> "Animator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<Animator {self.manifest.model_dir} backend={self.kind} mode={self.mode} "
                f"size={self.image_size} {'open' if self._backends else 'closed'}>")

    # -- internals -------------------------------------------------------------------------------

    def _check_mode(self, mode: str) -> str:
        if mode not in MODES:
            raise InputError(f"mode: expected one of {MODES}, got {mode!r}")
        if mode == "avd" and not self.manifest.has_avd:
            raise InputError(f"mode 'avd' needs a model exported with its AVD network; "
                             f"{self.manifest.model_dir} has no avd stage (modes: {list(self.manifest.modes)})")
        return mode

    def _require_open(self) -> None:
        if not self._backends:
            raise InputError("this Animator is closed")

    def _require_source(self) -> None:
        self._require_open()
        if self._source is None or self._source_image is None:
            raise InputError("no source picture: call set_source(image) before run(frame)")

    def _check_tensor(self, x: Any, what: str) -> None:
        shape = (1, 3, self.image_size, self.image_size)
        if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.shape != shape:
            got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
            raise InputError(f"{what}: expected a {shape} float32 array in [0, 1], got {got}")
        if not np.isfinite(x).all():
            raise InputError(f"{what}: NaN or infinite values")

    def _call(self, name: str, feeds: Mapping[str, np.ndarray], stat: bool = True) -> dict[str, np.ndarray]:
        if not stat:
            return self._backends[name].run(feeds)
        with self._stats.time(name):
            return self._backends[name].run(feeds)

    def _transfer(self, source: Params, driving: Params) -> Params:
        if self.mode == "standard":
            return driving
        if self.mode == "relative":
            assert self._initial is not None
            if self._scale is None:  # once per (source, reference) pair
                self._scale = regions.relative_scale(source, self._initial)
            return regions.relative_params(source, driving, self._initial, self._scale)
        out = self._call("avd", {"source_shift": source["shift"], "source_affine": source["affine"],
                                 "driving_shift": driving["shift"], "driving_affine": driving["affine"]})
        return {key: out[key] for key in regions.PARAM_NAMES}
