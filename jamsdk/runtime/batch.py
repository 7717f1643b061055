"""Many streams at once: :class:`StreamBatch` advances B independent streams with one call per stage.

::

    import jamsdk
    from jamsdk.runtime.batch import StreamBatch

    with StreamBatch("model_dir") as sb:                # graphs from `jamsdk export --batch-sizes 2,4,8`
        a = sb.add_stream(picture_a)                     # (H, W, 3) uint8 RGB, any size
        b = sb.add_stream(sb.encode(picture_b))          # or a cached, encoded picture
        outs = sb.run({a: frame_a, b: frame_b})          # {stream id: (S, S, 3) uint8}

Each stream owns what an :class:`~jamsdk.runtime.animator.Animator` owns: its source (picture,
region params, the generator encoder's features: an immutable
:class:`~jamsdk.runtime.stream_state.SourceState`, shared by any number of streams), and its
relative-mode driving reference. A call stacks the streams'
tensors and runs each per-frame stage once per chunk; n streams are split into the batch sizes
the model folder has graphs (or engines) for, largest first (7 → 4 + 2 + 1), so no stream waits
for padding and a result never depends on which other streams shared its call.

On TensorRT (with helper-graph engines) a chunk is one plan on the device pipeline, each stream's
source tensors stay on the GPU, and a chunk of B uint8 frames costs B crops up, B results down and
one sync (:mod:`jamsdk.runtime.batch_device`).

A model folder exported without ``--batch-sizes`` has only batch-1 graphs: StreamBatch then runs
the streams one after another (correct, no speed-up). One stream through batch-1 graphs performs
exactly the Animator's operations, so its frames are bit-identical to ``Animator.run``'s.

Batched graphs are fixed sizes exported side by side (:mod:`jamsdk.export.batched` says why).
"""

from __future__ import annotations

import itertools
import os
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from jamsdk.backend_registry import BY_NAME
from jamsdk.bundled import DEMO_SPEC, resolve_model, warn_if_demo
from jamsdk.errors import InputError
from jamsdk.manifest import Manifest, load_manifest
from jamsdk.pixels import center_crop_resize, resize_square
from jamsdk.runtime import regions
from jamsdk.runtime.backends import BACKENDS, Backend, check_feeds, resolve_long_running
from jamsdk.runtime.frames import (
    check_frame, check_model_tensor, check_output_size, output_side, to_image, to_model_input,
)
from jamsdk.runtime.plan import Pipeline, slot_specs, stage_plan
from jamsdk.runtime.stats import LatencyStats
from jamsdk.runtime.stream_state import Params, SourceState, StreamState

class MixedPrecisionWarning(UserWarning):
    """Engines whose batched and batch-1 precisions differ: streams run one by one (see :class:`StreamBatch`)."""


#: ``precision=`` values StreamBatch takes (``auto``: see :class:`StreamBatch`)
PRECISIONS = ("auto", "fp32", "fp16", "int8")



def split_sizes(n: int, sizes: Sequence[int]) -> list[int]:
    """Chunk sizes for ``n`` items from ``sizes`` (must include 1), largest first: 7, (1,2,4) → [4, 2, 1]."""
    out, left = [], n
    for b in sorted(sizes, reverse=True):
        while left >= b:
            out.append(b)
            left -= b
    return out


class StreamBatch:
    """B streams of one model, advanced together (see the module docstring).

    Args:
        model_dir: an exported model folder (with ``--batch-sizes`` for a speed-up), or ``"demo"``.
        backend, mode, providers, threads, cuda_graph, bgr, output_size, use_bg_motion, verify_hashes:
            as for :class:`~jamsdk.runtime.animator.Animator`; one mode for all streams.
        precision: ``fp32``, ``fp16``, ``int8`` (the export's Q/DQ graphs at every batch size; a size
            the folder has no graphs of this precision for is not used) or ``auto``: INT8 where the
            folder's INT8 graphs passed the export's held-out gate on the backend (with ``backend="auto"``
            OpenVINO first), else FP32 (:func:`~jamsdk.runtime.backends.resolve_long_running`; the
            chosen one is :attr:`precision`).
        max_batch: the largest number of streams per stage call: a whole number; None (default) the
            largest exported; ``"auto"`` (what ``jamsdk batch`` and ``serve`` use) 1 on the CPU
            backends and the largest on TensorRT (the backend's ``auto_max_batch`` in
            :mod:`jamsdk.backend_registry`); or ``"tune"``: the sizes up
            to the one with the least time per frame here and now (:meth:`tune_max_batch`).
        stats_window: samples kept per key for :meth:`stats`.
        openvino_hint: on OpenVINO, ``latency`` (default: the B rows of a call as one batched tensor,
            every core on each layer) or ``throughput`` (the batch-1 graph, the rows as parallel
            requests on OpenVINO's streams; :mod:`jamsdk.runtime.backends.openvino`).

    Every stage runs in one precision at every batch size (:attr:`precision`): on TensorRT the
    manifest's ``engines.batched_precision``, with the batch-1 engines of that precision where the
    folder's own batch-1 engines differ (``jamsdk build`` makes them); a folder without them runs its
    streams one by one in its batch-1 precision, with a :class:`MixedPrecisionWarning`.

    Raises:
        InputError: bad arguments or model folder. EngineError / MissingDependencyError: as the Animator.
    """

    def __init__(self, model_dir: str | os.PathLike[str], backend: str = "auto", mode: str = "relative", *,
                 precision: str = "fp32", providers: str | Sequence[str] | None = None, threads: int | None = None,
                 cuda_graph: bool = False, bgr: bool = False, output_size: str | int = "model",
                 use_bg_motion: bool = False, verify_hashes: bool = True, max_batch: int | str | None = None,
                 stats_window: int = 10_000, openvino_hint: str = "latency"):
        self._backends: dict[tuple[str, int], Backend] = {}
        if precision not in PRECISIONS:
            raise InputError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
        if max_batch in ("auto", "tune"):
            rule, max_batch = max_batch, None
        elif max_batch is not None and (isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1):
            raise InputError(f"max_batch: expected a whole number ≥ 1, 'auto' or 'tune', got {max_batch!r}")
        else:
            rule = None
        self.output_size = check_output_size(output_size)
        self.bgr = bool(bgr)
        if model_dir == DEMO_SPEC:
            model_dir = resolve_model(model_dir)
        self.manifest: Manifest = load_manifest(model_dir, verify_hashes=verify_hashes)
        warn_if_demo(self.manifest.model_dir)  # once per process, as the Animator does
        self.mode = self.manifest.check_mode(mode)
        self.kind, precision = resolve_long_running(self.manifest, backend, precision)
        #: the precision the streams run in (``auto`` resolved)
        self.precision = precision
        self.image_size = self.manifest.image_size
        self.use_bg_motion = bool(use_bg_motion) and self.manifest.has_bg_motion
        unused = ({"avd"} if mode != "avd" else set()) | ({"bg_motion"} if not self.use_bg_motion else set())
        self._needed = [n for n in self.manifest.stages if n not in unused]
        per_frame = [n for n in self._needed if self.manifest.stage(n).per == "frame"]
        if rule == "auto":  # one frame per call on a CPU backend (why: the registry's comment)
            max_batch = BY_NAME[self.kind].auto_max_batch
        self.batch_sizes = tuple(b for b in self._available_sizes(per_frame) if max_batch is None or b <= max_batch)
        options = {"precision": precision, "providers": providers, "threads": threads, "cuda_graph": cuda_graph,
                   "verify_hashes": verify_hashes, "openvino_hint": openvino_hint}
        if self.kind == "tensorrt":
            self.precision, options["batched_set"] = self._engine_set()
        cls = BACKENDS[self.kind]
        self._device: Any = None  # a DeviceBatch on TensorRT with helper engines
        self._stage_pipe: Pipeline | None = None  # else, on TensorRT: every stage call in this one pipeline
        self._helpers: dict[str, Backend] = {}
        try:
            for name in self._needed:
                for b in self.batch_sizes if name in per_frame else (1,):
                    self._backends[(name, b)] = cls.from_manifest(self.manifest, name, {**options, "batch": b}).open()
            helpers = cls.helper_backends(self.manifest, options)
            if self.mode != "relative":
                helpers.pop("relative", None)
            if getattr(cls, "device_resident", False) and {"preprocess", "postprocess"} <= set(helpers) \
                    and (self.mode != "relative" or "relative" in helpers):
                from jamsdk.runtime.batch_device import DeviceBatch

                for name, helper in helpers.items():
                    self._helpers[name] = helper.open()
                self._device = DeviceBatch(self._backends, self._helpers, self.batch_sizes, self.mode,
                                           self.use_bg_motion, self.manifest.has_bg_motion, self.bgr, options)
            elif getattr(cls, "device_resident", False):
                # One stream and one activation memory for all stages and sizes (the largest engine's),
                # not one private pipeline per backend; stage by stage, through the host.
                engines = {f"{name}@b{b}": be for (name, b), be in self._backends.items()}
                plans = [stage_plan(key, be.stage) for key, be in engines.items()]
                self._stage_pipe = cls.open_pipeline(engines, slot_specs(plans, {k: be.stage for k, be in
                                                                                 engines.items()}), options)
        except BaseException:
            self.close()
            raise
        self._streams: dict[int, StreamState] = {}
        self._ids = itertools.count()
        self._stats = LatencyStats(stats_window)
        self._identity_bg = np.eye(3, dtype=np.float32)[None]
        #: seconds per frame at each batch size, as :meth:`tune_max_batch` timed them (``max_batch="tune"``)
        self.tuning: dict[int, float] = {}
        if rule == "tune":
            try:
                self.tune_max_batch()
            except BaseException:
                self.close()
                raise
            self._stats = LatencyStats(stats_window)  # the timing runs are not the caller's frames

    # -- streams ---------------------------------------------------------------------------------

    @property
    def max_batch(self) -> int:
        """The most streams one stage call takes."""
        return max(self.batch_sizes)

    def encode(self, picture: np.ndarray) -> SourceState:
        """Run the per-source stages on a picture (``(H, W, 3)`` uint8 RGB, BGR with ``bgr``): reusable."""
        return self.encode_tensor(to_model_input(picture, self.image_size, self.bgr, "source image"))

    def encode_tensor(self, source: np.ndarray) -> SourceState:
        """:meth:`encode` for a model-space ``(1, 3, S, S)`` float32 array in [0, 1]."""
        self._check_tensor(source, "source")
        with self._stats.time("source"):
            src = np.array(source, dtype=np.float32, order="C", copy=True)
            if self._device is not None:
                params, feats = self._device.encode(src)
            else:
                params = self._stage("region_predictor", 1, {"image": src})
                feats = self._stage("generator_encoder", 1, {"source": src})
        return SourceState(src, params, feats)

    def add_stream(self, source: np.ndarray | SourceState) -> int:
        """A new stream animating ``source`` (a picture or a :class:`SourceState`); returns its id."""
        self._require_open()
        state = source if isinstance(source, SourceState) else self.encode(source)
        sid = next(self._ids)
        st = StreamState(state)
        if self._device is not None:
            self._device.attach(st)  # its source tensors go to the device once
        self._streams[sid] = st
        return sid

    def set_source(self, stream: int, source: np.ndarray | SourceState) -> None:
        """Change a stream's picture; like ``Animator.set_source`` its driving reference is kept."""
        st = self._stream(stream)
        st.source = source if isinstance(source, SourceState) else self.encode(source)
        st.scale = None
        if self._device is not None:
            self._device.write_source(st)

    def reset(self, stream: int) -> None:
        """The stream's next frame becomes its relative-mode reference."""
        st = self._stream(stream)
        st.initial, st.scale = None, None

    def remove_stream(self, stream: int) -> None:
        """Forget a stream (its id is never reused)."""
        st = self._stream(stream)
        if self._device is not None:
            self._device.detach(st)
        del self._streams[stream]

    @property
    def streams(self) -> tuple[int, ...]:
        """Ids of the open streams."""
        return tuple(self._streams)

    # -- frames ----------------------------------------------------------------------------------

    def run(self, frames: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
        """Advance each given stream by one driving frame (any subset of the streams, in any order).

        Args:
            frames: stream id → ``(H, W, 3)`` uint8 RGB (BGR with ``bgr``) or float frame in [0, 1].

        Returns:
            stream id → ``(side, side, 3)`` uint8, as ``Animator.run`` returns.

        Raises:
            InputError: an unknown stream or a bad frame (nothing is advanced then).
        """
        ids = list(frames)
        for sid in ids:
            self._stream(sid)
        if self._device is not None:
            with self._stats.time("batch"):
                entries = [self._device_entry(frames[sid], f"driving frame of stream {sid}") for sid in ids]
                outs = self._advance_device([(self._streams[sid], *e) for sid, e in zip(ids, entries)], "result_u8")
                return {sid: self._device_image(o, frames[sid].shape) for sid, o in zip(ids, outs)}
        with self._stats.time("batch"):
            xs = [to_model_input(frames[sid], self.image_size, self.bgr, f"driving frame of stream {sid}")
                  for sid in ids]
            preds = self._advance([(self._streams[sid], x) for sid, x in zip(ids, xs)])
            return {sid: to_image(p, output_side(self.output_size, self.image_size, frames[sid].shape), self.bgr)
                    for sid, p in zip(ids, preds)}

    def run_tensors(self, driving: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
        """:meth:`run` in model space: stream id → ``(1, 3, S, S)`` float32 → prediction, same layout."""
        for sid, x in driving.items():
            self._stream(sid)
            self._check_tensor(x, f"driving frame of stream {sid}")
        if self._device is not None:
            preds = self._advance_device([(self._streams[sid], "driving", np.ascontiguousarray(x, np.float32))
                                          for sid, x in driving.items()], "prediction")
            return dict(zip(driving, preds))
        preds = self._advance([(self._streams[sid], np.ascontiguousarray(x)) for sid, x in driving.items()])
        return dict(zip(driving, preds))

    def animate_clip(self, source: np.ndarray | SourceState, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Animate one whole clip, ``max_batch`` of its frames per stage call (offline jobs).

        Frames of one clip are independent given the source and the first frame (the relative
        reference), so a clip batches like many streams. Yields frames in order, as
        ``Animator.run`` would return them.
        """
        st = StreamState(source if isinstance(source, SourceState) else self.encode(source))
        if self._device is not None:
            yield from self._animate_clip_device(st, frames)
            return
        chunk: list[np.ndarray] = []
        sides: list[int] = []
        for frame in frames:
            chunk.append(to_model_input(frame, self.image_size, self.bgr, "driving frame"))
            sides.append(output_side(self.output_size, self.image_size, frame.shape))
            if len(chunk) == self.max_batch:
                yield from (to_image(p, s, self.bgr) for p, s in zip(self._advance([(st, x) for x in chunk]), sides))
                chunk, sides = [], []
        if chunk:
            yield from (to_image(p, s, self.bgr) for p, s in zip(self._advance([(st, x) for x in chunk]), sides))

    def tune_max_batch(self, rounds: int = 3) -> dict[int, float]:
        """Keep the batch sizes up to the one with the least time per frame, timed here and now.

        Each round runs one call at every size, in turn (so a busy moment hits every size alike),
        on streams of a fixed synthetic picture that are removed afterwards; the first call of each
        size is a warm-up. The verdict is the median per size. Costs ``(rounds + 1) × sum(sizes)``
        frames. Returns (and keeps in :attr:`tuning`) batch size → seconds per frame.
        """
        import time

        sizes = self.batch_sizes
        if len(sizes) == 1:
            self.tuning = {}
            return {}
        rng = np.random.default_rng(0)
        s = self.image_size
        ramp = np.linspace(0.0, 1.0, s, dtype=np.float32)
        picture = (0.5 * ramp[None, :, None] + 0.3 * ramp[:, None, None]
                   + 0.2 * rng.random((s, s, 3), dtype=np.float32))[None].transpose(0, 3, 1, 2)
        source = self.encode_tensor(np.ascontiguousarray(picture))
        frames = [np.ascontiguousarray(np.roll(picture, i, axis=3)) for i in range(max(sizes))]
        times: dict[int, list[float]] = {b: [] for b in sizes}
        ids = [self.add_stream(source) for _ in range(max(sizes))]
        try:
            for r in range(rounds + 1):
                for b in sizes:
                    start = time.perf_counter()
                    self.run_tensors({sid: frames[i] for i, sid in enumerate(ids[:b])})
                    if r:  # round 0 warms every size up
                        times[b].append((time.perf_counter() - start) / b)
        finally:
            for sid in ids:
                self.remove_stream(sid)
        self.tuning = {b: float(np.median(t)) for b, t in times.items()}
        best = min(self.tuning, key=self.tuning.__getitem__)
        self.batch_sizes = tuple(b for b in sizes if b <= best)
        return dict(self.tuning)

    def stats(self) -> dict[str, dict[str, float]]:
        """Latency in ms per key: ``batch`` (one :meth:`run`), ``source``, and ``<stage>@b<B>`` per call.

        On TensorRT with helper engines: ``chunk@b<B>`` per chunk instead (stages are enqueued, not run, one by one).
        """
        return self._stats.summary()

    @property
    def backend(self) -> str:
        return self.kind

    def close(self) -> None:
        """Free every backend. Safe to call twice."""
        device, self._device = getattr(self, "_device", None), None
        stage_pipe, self._stage_pipe = getattr(self, "_stage_pipe", None), None
        backends, self._backends = self._backends, {}
        helpers, self._helpers = getattr(self, "_helpers", {}), {}
        errors = []
        # The device pipelines (their contexts) before the engines; each in its own try.
        pipes = [p for p in (device, stage_pipe) if p is not None]
        for closing in pipes + list(backends.values()) + list(helpers.values()):
            try:
                closing.close()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> "StreamBatch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<StreamBatch {self.manifest.model_dir} backend={self.kind} precision={self.precision} mode={self.mode} "
                f"sizes={list(self.batch_sizes)} streams={len(self._streams)}>")

    # -- internals -------------------------------------------------------------------------------

    def _available_sizes(self, per_frame: list[str]) -> list[int]:
        sizes = [1]
        for b in self.manifest.batch_sizes:
            if b == 1:
                continue
            if self.kind == "tensorrt":
                engines = self.manifest.engines
                ok = engines is not None and all(b in engines.batched.get(n, {}) for n in per_frame)
            else:  # one precision at every size: a size without this precision's graphs is not used
                ok = all(self.precision in self.manifest.batched.get(n, {}).get(b, {}) for n in per_frame)
            if ok:
                sizes.append(b)
        return sizes

    def _engine_set(self) -> tuple[str, bool]:
        """``(precision, batched set)``: one precision for every engine, read from the manifest.

        Batched engines are ``engines.batched_precision``; where that differs from the batch-1
        engines' (an INT8 build whose batched graphs are FP16) the batch-1 engines of that precision
        (``engines.batched_b1``) are used instead, so a stream's result never depends on the size of
        its chunk. A folder built before those existed runs its streams one by one in its batch-1
        precision, with a warning.
        """
        engines = self.manifest.engines
        if engines is None or self.batch_sizes == (1,) or engines.batched_precision == engines.precision:
            return (engines.precision if engines is not None else self.precision), False
        missing = [n for n in self._needed if n not in engines.batched_b1]
        if not missing:
            return engines.batched_precision, True
        import warnings

        warnings.warn(f"{self.manifest.model_dir}: its batched engines are {engines.batched_precision}, its batch-1 "
                      f"engines {engines.precision}, and it has no {engines.batched_precision} batch-1 engines "
                      f"({', '.join(missing)}): StreamBatch runs one precision, so its streams run one by one in "
                      f"{engines.precision}; rebuild with `jamsdk build --model {self.manifest.model_dir} --precision "
                      f"{engines.precision}` to batch them", MixedPrecisionWarning, stacklevel=3)
        self.batch_sizes = (1,)
        return engines.precision, False

    def _require_open(self) -> None:
        if not self._backends:
            raise InputError("this StreamBatch is closed")

    def _stream(self, sid: Any) -> StreamState:
        self._require_open()
        try:
            return self._streams[sid]
        except (KeyError, TypeError):
            raise InputError(f"no stream {sid!r} (open streams: {list(self._streams)})") from None

    def _check_tensor(self, x: Any, what: str) -> None:
        check_model_tensor(x, self.image_size, what)

    def _device_entry(self, frame: np.ndarray, what: str) -> tuple[str, np.ndarray]:
        """(entry, array) for the device plan: the uint8 crop (preprocessed on the GPU) or the float tensor."""
        if check_frame(frame, what).dtype == np.uint8:
            return "frame_u8", center_crop_resize(frame, self.image_size)[None]
        return "driving", to_model_input(frame, self.image_size, self.bgr, what)

    def _device_image(self, out: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        side = output_side(self.output_size, self.image_size, shape)
        return np.ascontiguousarray(resize_square(out[0], side) if side != self.image_size else out[0])

    def _advance_device(self, items: list[tuple[StreamState, str, np.ndarray]], exit: str) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        start = 0
        for b in split_sizes(len(items), self.batch_sizes):
            with self._stats.time(f"chunk@b{b}"):
                out.extend(self._device.run_chunk(items[start:start + b], exit))
            start += b
        return out

    def _animate_clip_device(self, st: StreamState, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        self._device.attach(st)
        try:
            chunk: list[tuple[StreamState, str, np.ndarray]] = []
            shapes: list[tuple[int, ...]] = []
            for frame in frames:
                chunk.append((st, *self._device_entry(frame, "driving frame")))
                shapes.append(frame.shape)
                if len(chunk) == self.max_batch:
                    outs = self._advance_device(chunk, "result_u8")
                    yield from (self._device_image(o, s) for o, s in zip(outs, shapes))
                    chunk, shapes = [], []
            if chunk:
                outs = self._advance_device(chunk, "result_u8")
                yield from (self._device_image(o, s) for o, s in zip(outs, shapes))
        finally:
            if self._device is not None:
                self._device.detach(st)

    def _call(self, name: str, b: int, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._stats.time(f"{name}@b{b}"):
            return self._stage(name, b, feeds)

    def _stage(self, name: str, b: int, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One stage call: the backend's own ``run``, or a one-step plan on the shared stage pipeline."""
        backend = self._backends[(name, b)]
        if self._stage_pipe is None:
            return backend.run(feeds)
        check_feeds(backend.stage, feeds)  # what backend.run checks before it dispatches
        key = f"{name}@b{b}"
        out = self._stage_pipe.run(stage_plan(key, backend.stage), {f"{key}/{t}": a for t, a in feeds.items()})
        return {s.name: out[f"{key}/{s.name}"] for s in backend.stage.outputs}

    def _advance(self, items: list[tuple[StreamState, np.ndarray]]) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        start = 0
        for b in split_sizes(len(items), self.batch_sizes):
            out.extend(self._advance_chunk(items[start:start + b]))
            start += b
        return out

    def _advance_chunk(self, items: list[tuple[StreamState, np.ndarray]]) -> list[np.ndarray]:
        b = len(items)
        cat = np.concatenate if b > 1 else (lambda arrays: arrays[0])
        driving = cat([x for _, x in items])
        drv_all = self._call("region_predictor", b, {"image": driving})
        sources = [st.source for st, _ in items]
        transferred = []
        for i, (st, _) in enumerate(items):
            drv = {k: v[i:i + 1] for k, v in drv_all.items()} if b > 1 else drv_all
            if st.initial is None:  # the stream's first frame (even inside this chunk) is its reference
                st.initial = drv
            transferred.append(drv if self.mode != "relative" else self._relative(st, drv))
        src_params = {k: cat([s.params[k] for s in sources]) for k in regions.PARAM_NAMES}
        params = {k: cat([p[k] for p in transferred]) for k in regions.PARAM_NAMES}
        if self.mode == "avd":
            avd = self._call("avd", b, {"source_shift": src_params["shift"], "source_affine": src_params["affine"],
                                        "driving_shift": params["shift"], "driving_affine": params["affine"]})
            params = {k: avd[k] for k in regions.PARAM_NAMES}
        src_image = cat([s.image for s in sources])
        feeds = {"source": src_image}
        for prefix, p in (("source", src_params), ("driving", params)):
            for key in regions.PARAM_NAMES:
                feeds[f"{prefix}_{key}"] = p[key]
        if self.manifest.has_bg_motion:
            feeds["bg_params"] = (self._call("bg_motion", b, {"source": src_image, "driving": driving})["bg_params"]
                                  if self.use_bg_motion else cat([self._identity_bg] * b))
        motion = self._call("dense_motion", b, feeds)
        feats = {k: cat([s.features[k] for s in sources]) for k in sources[0].features}
        pred = self._call("generator", b, {"source": src_image, **feats, **motion})["prediction"]
        return [pred[i:i + 1] for i in range(b)] if b > 1 else [pred]

    def _relative(self, st: StreamState, drv: Params) -> Params:
        assert st.initial is not None
        if st.scale is None:
            st.scale = regions.relative_scale(st.source.params, st.initial)
        return regions.relative_params(st.source.params, drv, st.initial, st.scale)
