"""The TensorRT device pipeline: plans run on device buffers, one stream, one sync per run.

Every slot of the Animator's plans is one device buffer allocated when the pipeline opens (a
StreamBatch adds and drops per-stream slots with :meth:`DevicePipeline.add_slots` /
:meth:`~DevicePipeline.drop_slots`); each stage step gets its own execution context whose tensor
addresses are set once to those buffers (by name) and never changed, so a stage's output buffer
*is* the next stage's input buffer and per-source slots (source image, features, source region
params) stay on the device. A second context per binding set (e.g. ``region_predictor`` on the
source and on the frame) keeps every captured CUDA graph valid: a graph bakes in the addresses it
was captured with, and TensorRT may keep pointer tables per context. It costs no activation
memory: contexts are created ``USER_MANAGED`` and all of them run in one scratch buffer per
pipeline (one stream, so they never run at the same time), sized for the largest engine.

A run: the feeds' H2D copies (from pinned staging), the engines and device copies of each
segment (plainly, or one graph launch per segment once every context in it has run plainly:
TensorRT does lazy setup on a context's first enqueue, which must not be captured), for each host
step a D2H of its inputs, a sync, the host function and the H2D of its outputs, then the fetches'
D2H and one sync. Host staging is pinned so the copies are truly asynchronous.

A capture that fails (``cudaStreamEndCapture`` reports the capture invalidated, or an enqueue
inside it returned False) is thrown away with a :class:`CaptureWarning` and the segment runs
plainly from then on; the test suite turns that warning into an error.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterable, Mapping, Protocol

import numpy as np

from jamsdk.errors import EngineError
from jamsdk.runtime import _cuda
from jamsdk.runtime.plan import Pipeline, Plan, Step, Timer
from jamsdk.stages import TensorSpec


class EngineStage(Protocol):
    """What the device pipeline needs of a stage's engine (the TensorRT backend is one).

    The pipeline sits below the backend that opens it, so it names this shape rather than
    importing :class:`~jamsdk.runtime.backends.tensorrt.TensorRTBackend`.
    """

    #: whether runs should be timed with CUDA events (then the pipeline fills ``last_gpu_ms``)
    gpu_timing: bool
    last_gpu_ms: dict[str, float] | None

    @property
    def name(self) -> str:
        """The stage (or helper graph) name, for messages."""
        ...

    @property
    def activation_bytes(self) -> int:
        """Device memory one execution context needs while it runs."""
        ...

    def new_context(self, addresses: Mapping[str, int], scratch: tuple[int, int]) -> Any:
        """An execution context whose tensors are bound to ``addresses``, running in ``scratch``."""
        ...


class DeviceArray:
    """A read-only view of a device buffer: ``__cuda_array_interface__`` (v3) for torch, CuPy, Numba.

    ``torch.as_tensor(arr, device="cuda")`` or ``cupy.asarray(arr)`` wrap it without a copy. The
    buffer belongs to the Animator and is overwritten by its next run and freed by ``close()``:
    copy it if you keep it longer. The work that wrote it is complete (the run synchronised).
    """

    def __init__(self, ptr: int, shape: tuple[int, ...], dtype: np.dtype, owner: Any, copy_to_host: Any):
        self.ptr, self.shape, self.dtype = int(ptr), tuple(shape), np.dtype(dtype)
        self._owner = owner  # keeps the pipeline (and so the buffer) alive while the view is
        self._copy_to_host = copy_to_host

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.ptr, False), "version": 3,
                "strides": None}

    def to_host(self) -> np.ndarray:
        """A host copy in this view's shape (one D2H copy and a sync)."""
        return self._copy_to_host().reshape(self.shape)

    def __repr__(self) -> str:
        return f"<DeviceArray {self.shape} {self.dtype} at 0x{self.ptr:x}>"


class CaptureWarning(UserWarning):
    """A CUDA graph capture failed; the segment runs without a graph (correct, a little slower)."""


class _Bound:
    """One execution context of a stage with its addresses set once."""

    def __init__(self, backend: EngineStage, addresses: Mapping[str, int], scratch: tuple[int, int],
                 slots: frozenset[str]):
        self.backend = backend
        self.context = backend.new_context(addresses, scratch)
        self.slots = slots
        self.runs = 0

    def execute(self, stream: int) -> None:
        if not self.context.execute_async_v3(stream):
            raise EngineError(f"{self.backend.name}: execute_async_v3 failed (see the TensorRT log above)")


class _Copy:
    """A device-to-device copy between two slots (a copy step); ready to capture from the start."""

    runs = 1

    def __init__(self, cu: Any, dst: int, src: int, nbytes: int, slots: frozenset[str]):
        self.cu, self.dst, self.src, self.nbytes, self.slots = cu, dst, src, nbytes, slots

    def execute(self, stream: int) -> None:
        self.cu.d2d(self.dst, self.src, self.nbytes, stream)


class DevicePipeline(Pipeline):
    """Runs plans over device buffers (see the module docstring).

    Args:
        backends: open TensorRT backends by stage (and helper) name.
        slots: every slot's shape and dtype (:func:`jamsdk.runtime.plan.slot_specs`).
        cuda_graph: replay each segment as one CUDA graph after its first plain run.
    """

    on_device = True

    def __init__(self, backends: Mapping[str, EngineStage], slots: Mapping[str, TensorSpec],
                 cuda_graph: bool = False):
        self.backends = backends
        self.specs = dict(slots)
        self.cuda_graph = cuda_graph
        self.cu = _cuda.cuda()
        self.stream: int | None = None
        self.device: dict[str, int] = {}
        self.pinned: dict[str, np.ndarray] = {}
        self.bound: dict[tuple, _Bound] = {}
        self.segments: dict[tuple, list[Any]] = {}
        self.graphs: dict[tuple, Any] = {}
        self.no_graph: set[tuple] = set()
        self.clock: Any = None  # an EventClock while GPU timing is on
        #: the one activation buffer every context of this pipeline runs in: ``(pointer, bytes)``
        self.scratch: tuple[int, int] = (0, 0)
        try:
            self.stream = self.cu.stream_create()
            size = max((b.activation_bytes for b in backends.values()), default=0)
            if size:
                self.scratch = (self.cu.malloc(size), size)
            for slot, spec in self.specs.items():
                self.device[slot] = self.cu.malloc(_nbytes(spec))
        except BaseException:
            self.close()
            raise

    def add_slots(self, slots: Mapping[str, TensorSpec]) -> None:
        """Allocate more slots (e.g. a new stream's source tensors); names must be new."""
        taken = sorted(set(slots) & set(self.specs))
        if taken:
            raise EngineError(f"slots {taken} exist already")
        for slot, spec in slots.items():
            self.specs[slot] = spec
            self.device[slot] = self.cu.malloc(_nbytes(spec))

    def drop_slots(self, names: Iterable[str]) -> None:
        """Free slots, with every context, graph and segment bound to any of them."""
        names = set(names) & set(self.specs)
        if not names:
            return
        self.cu.synchronize(self.stream)  # nothing queued may still use them
        for key in [k for k, seg in self.segments.items() if any(b.slots & names for b in seg)]:
            del self.segments[key]
            graph = self.graphs.pop(key, None)
            if graph is not None:
                self.cu.destroy_graph(graph)
            self.no_graph.discard(key)
        for key in [k for k, b in self.bound.items() if b.slots & names]:
            del self.bound[key]  # the context goes before the memory it is bound to
        for slot in names:
            self.cu.free(self.device.pop(slot))
            host = self.pinned.pop(slot, None)
            if host is not None:
                self.cu.free_pinned(host)
            del self.specs[slot]

    # -- slots --------------------------------------------------------------------------------------

    def _staging(self, slot: str) -> np.ndarray:
        """The slot's pinned host mirror, made the first time the slot crosses (most never do)."""
        host = self.pinned.get(slot)
        if host is None:
            spec = self.specs[slot]
            host = self.pinned[slot] = self.cu.pinned_empty(tuple(spec.shape), np.dtype(spec.dtype))
        return host

    def _upload(self, slot: str, array: np.ndarray, owner: str = "") -> None:
        host = self._staging(slot)
        if array.shape != host.shape or array.dtype != host.dtype:
            raise EngineError(f"slot {slot!r}: expected {host.shape} {host.dtype}, got {array.shape} {array.dtype}")
        np.copyto(host, array)
        self.cu.h2d(self.device[slot], host, self.stream)
        self._mark(owner, "h2d")

    def _download(self, slot: str, owner: str = "") -> np.ndarray:
        host = self._staging(slot)
        self.cu.d2h(host, self.device[slot], self.stream)
        self._mark(owner, "d2h")
        return host

    def write(self, slot: str, array: np.ndarray) -> None:
        self.write_many({slot: array})

    def write_many(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Set several slots: every upload queued, then one sync (each slot has its own staging)."""
        for slot, array in arrays.items():
            self._upload(slot, np.ascontiguousarray(array))
        self.cu.synchronize(self.stream)

    def copy(self, src: str, dst: str, src_offset: int = 0, dst_offset: int = 0, nbytes: int = -1) -> None:
        """Queue a device copy between two slots now, outside any plan (and so outside every CUDA graph).

        For copies that depend on who is where (a stream's own slots into a batch position): as a
        step of a plan they would make its segment, and so its graph, one per arrangement.
        """
        self._copy(src, dst, (src_offset, dst_offset, nbytes), frozenset((src, dst))).execute(self.stream)

    def read(self, slot: str) -> np.ndarray:
        """A host copy of a slot (one D2H and a sync)."""
        host = self._download(slot)
        self.cu.synchronize(self.stream)
        return host.copy()

    # -- running ------------------------------------------------------------------------------------

    def _bind(self, step: Step) -> Any:
        slots = frozenset({**step.inputs, **step.outputs}.values())
        if step.copy is not None:
            return self._copy(step.inputs["src"], step.outputs["dst"], step.copy, slots)
        key = (step.name, tuple(sorted({**step.inputs, **step.outputs}.items())))
        bound = self.bound.get(key)
        if bound is None:
            addresses = {t: self.device[s] for t, s in {**step.inputs, **step.outputs}.items()}
            bound = self.bound[key] = _Bound(self.backends[step.name], addresses, self.scratch, slots)
        return bound

    def _copy(self, src: str, dst: str, copy: tuple[int, int, int], slots: frozenset[str]) -> _Copy:
        start, at, n = copy
        n = _nbytes(self.specs[src]) - start if n < 0 else n
        if start + n > _nbytes(self.specs[src]) or at + n > _nbytes(self.specs[dst]):
            raise EngineError(f"copy of {n} bytes from {src}+{start} to {dst}+{at} overruns a slot")
        return _Copy(self.cu, self.device[dst] + at, self.device[src] + start, n, slots)

    def _enqueue(self, steps: tuple[Step, ...]) -> None:
        if not steps:
            return
        # Keyed by what the segment is (its stages and bindings), not by a plan's name: plans that
        # share a segment share its contexts and graph, and a different segment never reuses them.
        key = tuple((s.name, tuple(s.inputs.items()), tuple(s.outputs.items()), s.copy) for s in steps)
        bound = self.segments.get(key)
        if bound is None:
            bound = self.segments[key] = [self._bind(s) for s in steps]
        graph = self.graphs.get(key)
        if graph is None and self.cuda_graph and self.cu.supports_graphs and key not in self.no_graph \
                and all(b.runs > 0 for b in bound):
            graph = self._capture(key, bound)
        if graph is not None:
            self.cu.launch_graph(graph, self.stream)
            self._mark(steps[0].name, "compute")
        else:
            for step, b in zip(steps, bound):
                b.execute(self.stream)
                self._mark(step.name, "compute")
        for b in bound:
            b.runs += 1

    def _capture(self, key: tuple, bound: list[Any]) -> Any:
        """One CUDA graph of the segment; None (and plain runs from now on) when the capture fails.

        As trtexec's ``endCaptureOnError`` (``sampleDevice.h``): the capture is always ended, or the
        stream stays in capture mode; an invalidated capture makes ``end_capture`` raise
        (``cudaErrorStreamCaptureInvalidated``), and a capture whose enqueue returned False is
        ended without instantiating it.
        """
        cu, why = self.cu, ""
        try:
            cu.begin_capture(self.stream)
        except Exception as exc:
            self._give_up(key, f"cannot begin a capture: {exc}")
            return None
        try:
            for b in bound:
                b.execute(self.stream)
        except Exception as exc:
            why = str(exc)
        try:
            graph = cu.end_capture(self.stream, instantiate=not why)  # never instantiate a failed enqueue
        except Exception as exc:
            graph, why = None, f"{why}; {exc}" if why else str(exc)
        if why or graph is None:
            if graph is not None:
                cu.destroy_graph(graph)
            self._give_up(key, why or "no graph")
            return None
        self.graphs[key] = graph
        return graph

    def _give_up(self, key: tuple, why: str) -> None:
        self.no_graph.add(key)
        names = "+".join(step[0] for step in key if step[0] != "copy")
        warnings.warn(f"CUDA graph capture of {names} failed ({why}); running it without a graph", CaptureWarning,
                      stacklevel=4)

    def _run(self, plan: Plan, feeds: Mapping[str, np.ndarray]) -> None:
        if self.clock is None and any(getattr(b, "gpu_timing", False) for b in self.backends.values()):
            rt = getattr(self.cu, "rt", None)  # events need cuda-python (not the pycuda fallback)
            self.clock = EventClock(rt) if rt is not None else None
        if self.clock is not None:
            self.clock.start(self.stream)
        first = plan.steps[0].name if plan.steps else ""
        for slot in plan.feeds:
            self._upload(slot, feeds[slot], first)
        # Slot values the host already holds since the last engines ran: consecutive host steps
        # (e.g. smoothing, then the numpy transfer, then a region read-out) share one round trip.
        fresh: dict[str, np.ndarray] = {}
        owner = first
        for steps, host in plan.segments():
            if steps:
                self._enqueue(steps)
                fresh.clear()
                owner = steps[-1].name
            if host is None:
                continue
            need = [s for s in host.inputs.values() if s not in fresh]
            if need:
                got = {s: self._download(s, owner) for s in need}
                self.cu.synchronize(self.stream)  # the host step needs the values: a documented extra sync
                fresh.update({s: a.copy() for s, a in got.items()})
            out = host.host({s: fresh[s] for s in host.inputs.values()})
            for s in host.outputs.values():
                value = np.ascontiguousarray(out[s], self.specs[s].dtype)
                self._upload(s, value, owner)
                fresh[s] = value

    def run(self, plan: Plan, feeds: Mapping[str, np.ndarray], time: Timer | None = None) -> dict[str, np.ndarray]:
        self._run(plan, feeds)
        last = plan.steps[-1].name if plan.steps else ""
        hosts = [self._download(s, last) for s in plan.fetches]
        self.cu.synchronize(self.stream)
        if self.clock is not None:
            self.clock.read(self.backends)
        return {s: h.copy() for s, h in zip(plan.fetches, hosts)}  # the staging is reused by the next run

    def run_device(self, plan: Plan, feeds: Mapping[str, np.ndarray], keep: str,
                   time: Timer | None = None) -> DeviceArray:
        self._run(plan, feeds)
        self.cu.synchronize(self.stream)
        if self.clock is not None:
            self.clock.read(self.backends)
        spec = self.specs[keep]
        return DeviceArray(self.device[keep], tuple(spec.shape), np.dtype(spec.dtype), self,
                           lambda: self.read(keep))

    def _mark(self, owner: str, kind: str) -> None:
        if self.clock is not None:
            self.clock.mark(self.stream, owner, kind)

    # -- closing ------------------------------------------------------------------------------------

    def close(self) -> None:
        """Free graphs, contexts, buffers and the stream; each in its own try (one failure frees the rest)."""
        cu, errors = self.cu, []

        def attempt(fn: Any, *args: Any) -> None:
            try:
                fn(*args)
            except Exception as exc:  # keep freeing; report the first failure at the end
                errors.append(exc)

        if self.stream is not None:
            attempt(cu.synchronize, self.stream)
        graphs, self.graphs = self.graphs, {}
        for graph in graphs.values():
            attempt(cu.destroy_graph, graph)
        self.segments.clear()
        self.bound.clear()  # contexts before the engines their backends hold, and before their scratch
        if self.clock is not None:
            attempt(self.clock.close)
            self.clock = None
        device, self.device = self.device, {}
        for ptr in device.values():
            attempt(cu.free, ptr)
        scratch, self.scratch = self.scratch, (0, 0)
        if scratch[1]:
            attempt(cu.free, scratch[0])
        pinned, self.pinned = self.pinned, {}
        for host in pinned.values():
            attempt(cu.free_pinned, host)
        stream, self.stream = self.stream, None
        if stream is not None:
            attempt(cu.stream_destroy, stream)
        if errors:
            raise EngineError(f"freeing TensorRT pipeline resources failed: {errors[0]}")


def _nbytes(spec: TensorSpec) -> int:
    return max(1, int(np.prod(spec.shape, dtype=np.int64)) * np.dtype(spec.dtype).itemsize)


class EventClock:
    """CUDA events between the copies and engines of a run, for ``jamsdk bench``.

    Each mark closes the interval since the previous one and charges it to ``(stage, kind)``,
    kind ``h2d``, ``compute`` or ``d2h``; after the run's sync :meth:`read` writes each stage's
    ``{"h2d_ms", "compute_ms", "d2h_ms"}`` into its backend's ``last_gpu_ms``. A CUDA graph is
    one interval, charged to the first stage of its segment. Events are recorded between
    captures, never inside one.
    """

    def __init__(self, rt: Any):
        self.rt = rt
        self.pool: list[Any] = []
        self.marks: list[tuple[Any, str, str]] = []
        self._elapsed = getattr(rt, "cudaEventElapsedTime", None) or getattr(rt, "cudaEventElapsedTime_v2")

    def _event(self, i: int) -> Any:
        while len(self.pool) <= i:
            result = self.rt.cudaEventCreate()
            if int(getattr(result[0], "value", result[0])) != 0:
                raise EngineError(f"cudaEventCreate failed: {result[0]}")
            self.pool.append(result[1])
        return self.pool[i]

    def start(self, stream: int) -> None:
        self.marks = []
        self.mark(stream, "", "")

    def mark(self, stream: int, owner: str, kind: str) -> None:
        event = self._event(len(self.marks))
        self.rt.cudaEventRecord(event, stream)
        self.marks.append((event, owner, kind))

    def read(self, backends: Mapping[str, Any]) -> None:
        totals: dict[str, dict[str, float]] = {}
        for (a, _, _), (b, owner, kind) in zip(self.marks, self.marks[1:]):
            result = self._elapsed(a, b)
            ms = float(result[1]) if isinstance(result, tuple) else float(result)
            t = totals.setdefault(owner, {"h2d_ms": 0.0, "compute_ms": 0.0, "d2h_ms": 0.0})
            t[f"{kind}_ms"] += ms
        for name, t in totals.items():
            backend = backends.get(name)
            if backend is not None and getattr(backend, "gpu_timing", False):
                backend.last_gpu_ms = t
        self.marks = []

    def close(self) -> None:
        pool, self.pool = self.pool, []
        for event in pool:
            try:
                self.rt.cudaEventDestroy(event)
            except Exception:  # freeing must not mask the error that got us here
                pass
