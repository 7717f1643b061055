"""Stand-ins for CUDA and TensorRT that keep their contracts, so that a test fails where the real thing would.

Every imitated behaviour names, in a comment on its line, the real source it copies. CUDA sources:
cuda-bindings 12.9.10 ``cuda/bindings/runtime.pyx`` (``rt.pyx``; line numbers of that file) and the
CUDA C++ Programming Guide, "CUDA Graphs: Prohibited and Unhandled Operations" (``Guide``). The
TensorRT stand-in and its sources are in ``trt_standin.py`` (re-exported here).

:class:`FakeCuda` implements jamsdk's small ``_cuda.Cuda`` interface the way ``_CudaPython`` does over
the real binding: a failed call raises ``EngineError("CUDA call … failed: <name> (<code>)")``.

* Memory: host bytearrays behind 256-byte-aligned fake pointers, with a gap after each allocation (an
  overrun lands outside every allocation). ``free`` returns the range to the allocator and a later
  ``malloc`` may hand it out again (first fit), as ``cudaFree``/``cudaMalloc`` may. Work names its
  memory when it is queued but touches it only when it runs (at the stream's synchronize, or when a
  graph launched on it runs): memory freed in between, even when its range belongs to a new
  allocation by then, fails the run as a use after free (real CUDA would fault or write into the new
  owner). Device bytes in use are counted (:attr:`FakeCuda.device_bytes`, :attr:`~FakeCuda.peak_bytes`),
  TensorRT's own allocations (engine weights, STATIC context memory) included.
* Streams: queues that run at synchronize, so a missing or misplaced sync gives stale results. Bytes
  per direction, syncs and graph launches are counted (:attr:`FakeCuda.counts`).
* Shared scratch: an engine enqueued with activation memory claims it for its stream until that stream
  is synchronised; another stream's engine using the same memory in between fails
  (``NvInferRuntime.h`` v10.3.0:3675-3683: the memory is in use "until network execution is complete";
  parallel use is undefined behaviour).
* Stream capture is strict and per stream: what would invalidate a real capture does, and
  ``end_capture`` then fails; a capture must be ended from the thread that began it (ThreadLocal
  mode is not relaxed); captures on other streams in other threads go on beside it.

Where a rule is stricter than CUDA (work on a second stream from the capturing thread invalidates the
capture here; CUDA runs it eagerly, outside the graph) it says so: either way the graph would lack
that work.

Importable as ``cuda_standin`` from the runtime tests (like ``rt_samples``).
"""

from __future__ import annotations

import json
import shutil
import threading
from collections import Counter

import numpy as np
from trt_standin import (ALIGN, VERSION, VERSIONS, DataType, Dims, ExecutionContextAllocationStrategy,  # noqa: F401
                         Severity, TensorIOMode, _round, activation_bytes, fake_builder, fake_tensorrt)

from jamsdk.errors import EngineError
from jamsdk.model_files import sha256_file
from jamsdk.runtime import _cuda

GPU = _cuda.GpuInfo("Fake GPU", "8.7")

# cudaError_t values (rt.pyx enum cudaError_t; the numbers are CUDA's driver_types.h)
_INVALID = ("cudaErrorInvalidValue", 1)
_ILLEGAL_ADDRESS = ("cudaErrorIllegalAddress", 700)
_UNSUPPORTED = ("cudaErrorStreamCaptureUnsupported", 900)  # rt.pyx: "not permitted when the stream is capturing"
_INVALIDATED = ("cudaErrorStreamCaptureInvalidated", 901)  # rt.pyx: "invalidated due to a previous error"
_UNMATCHED = ("cudaErrorStreamCaptureUnmatched", 903)      # rt.pyx: "The capture was not initiated in this stream"
_WRONG_THREAD = ("cudaErrorStreamCaptureWrongThread", 908)  # rt.pyx:1220-1224
_ILLEGAL = ("cudaErrorIllegalState", 401)


def _fail(call: str, error: tuple[str, int]) -> EngineError:
    """What ``_cuda._CudaPython._check`` raises for a call that returned ``error``."""
    return EngineError(f"CUDA call {call} failed: {error[0]} ({error[1]})")


class FakeCuda(_cuda.Cuda):
    """Device memory as bytearrays; streams as queues that run at synchronize; strict stream capture."""

    binding = "fake"
    supports_graphs = True

    def __init__(self):
        self.mem: dict[int, bytearray] = {}      # live allocations: base → bytes
        self.sizes: dict[int, int] = {}          # base → bytes counted for it (rounded like an allocator)
        self.spans: dict[int, int] = {}          # base → address range it holds (rounded size + gap)
        self.generation: dict[int, int] = {}     # base → which allocation holds it now (reuse gets a new one)
        self.holes: list[tuple[int, int]] = []   # freed ranges (start, span), handed out again first-fit
        self.reserved: dict[int, int] = {}       # TensorRT-internal allocations: token → bytes
        self.next = 0x10000
        self.pinned: list[np.ndarray] = []
        self.queues: dict[int, list] = {}
        self.captures: dict[int, dict] = {}      # stream → {"ops", "invalid", "thread"}
        self.graphs: dict[int, list] = {}
        self.scratch_users: dict[int, int] = {}  # activation memory base → stream whose queued engines use it
        self.counts: Counter = Counter()
        self.launches = 0
        self.peak_bytes = 0
        self.reused = 0                          # mallocs served from a freed range
        self.last_invalidation = ""
        self._tokens = 0
        self._allocations = 0
        self._lock = threading.RLock()

    # -- memory -------------------------------------------------------------------------------------

    @property
    def streams(self) -> set[int]:
        return set(self.queues)

    @property
    def device_bytes(self) -> int:
        """Device memory in use: cudaMalloc'd blocks plus TensorRT's own (engines, STATIC contexts)."""
        return sum(self.sizes.values()) + sum(self.reserved.values())

    def _account(self) -> None:
        self.peak_bytes = max(self.peak_bytes, self.device_bytes)

    def reserve(self, nbytes: int) -> int:
        """Count ``nbytes`` that TensorRT allocates itself; returns a token for :meth:`release`."""
        with self._lock:
            self._tokens += 1
            self.reserved[self._tokens] = _round(nbytes)
            self._account()
            return self._tokens

    def release(self, token: int) -> None:
        self.reserved.pop(token, None)

    def _base(self, ptr: int, nbytes: int) -> int | None:
        for base, buf in self.mem.items():
            if base <= ptr and ptr + nbytes <= base + len(buf):
                return base
        return None

    def try_ref(self, ptr: int, nbytes: int) -> tuple | None:
        """``(base, generation, offset, nbytes)`` of live memory at ``ptr``, None if it is not inside one."""
        base = self._base(ptr, nbytes)
        return None if base is None else (base, self.generation[base], ptr - base, nbytes, ptr)

    def ref(self, ptr: int, nbytes: int) -> tuple:
        """:meth:`try_ref`, or EngineError: work may only be queued on memory that is allocated now."""
        ref = self.try_ref(ptr, nbytes)
        if ref is None:
            raise EngineError(f"illegal address: {nbytes} bytes at 0x{ptr:x} are not inside a live allocation "
                              f"(cudaErrorIllegalAddress, {_ILLEGAL_ADDRESS[1]})")
        return ref

    def view(self, ref: tuple | None, what: str = "memory") -> memoryview:
        """The bytes ``ref`` names, when the work that uses them runs; EngineError for a use after free."""
        if ref is None:
            raise EngineError(f"illegal address: {what} is not inside a live allocation "
                              f"(cudaErrorIllegalAddress, {_ILLEGAL_ADDRESS[1]})")
        base, gen, offset, nbytes, ptr = ref
        if self.generation.get(base) != gen:
            owner = "has been handed out again" if base in self.mem else "is free"
            raise EngineError(f"use after free: {what} ({nbytes} bytes at 0x{ptr:x}) was freed after the work that "
                              f"uses it was queued or bound, and its range {owner} (cudaErrorIllegalAddress, "
                              f"{_ILLEGAL_ADDRESS[1]})")
        return memoryview(self.mem[base])[offset:offset + nbytes]

    def block(self, ptr: int, nbytes: int) -> memoryview:
        """``nbytes`` of device memory at ``ptr`` (inside one live allocation) now, or EngineError."""
        return self.view(self.ref(ptr, nbytes))

    def _unsafe_call(self, call: str) -> None:
        # cudaMalloc/cudaFree are "potentially unsafe" during a capture: with the ThreadLocal mode the
        # capturing thread may not call them (rt.pyx:18438-18466); the capture is invalidated.
        cap = self.capturing_thread()
        if cap is not None:
            cap["invalid"] = cap["invalid"] or f"{call} during capture"
            raise _fail(call, _UNSUPPORTED)

    def device_count(self):
        return 1, ""

    def device_info(self):
        return GPU

    def driver_version(self):
        return 12060

    def last_error(self):
        # cuda-python's cudaGetLastError reads cuda-python's own runtime state, never TensorRT's
        # libcudart: a failed capture shows only as EndCapture's (cudaErrorStreamCaptureInvalidated,
        # None) (cuda-bindings 13.0.3 runtime.pyx:17199).
        return ""

    def malloc(self, nbytes):
        with self._lock:
            self._unsafe_call("cudaMalloc")
            span = _round(nbytes) + ALIGN  # a gap: an overrun lands outside every allocation
            for i, (start, size) in enumerate(self.holes):
                if size >= span:  # rt.pyx:20983-21010: freed memory goes back to the allocator
                    ptr = start
                    self.holes[i:i + 1] = [(start + span, size - span)] if size > span else []
                    self.reused += 1
                    break
            else:
                ptr = self.next
                self.next += span
            self._allocations += 1
            self.mem[ptr] = bytearray(int(nbytes))
            self.sizes[ptr] = _round(nbytes)
            self.spans[ptr] = span
            self.generation[ptr] = self._allocations
            self._account()
            return ptr

    def free(self, ptr):
        with self._lock:
            self._unsafe_call("cudaFree")
            if ptr not in self.mem:  # rt.pyx:21000-21002: freeing twice "an error is returned"
                raise _fail("cudaFree", _INVALID)
            del self.mem[ptr]
            del self.sizes[ptr]
            del self.generation[ptr]
            self.holes.append((ptr, self.spans.pop(ptr)))

    def pinned_bytes(self, nbytes):
        arr = np.zeros(nbytes, np.uint8)
        self.pinned.append(arr)
        return arr

    def _is_pinned(self, array) -> bool:
        base = array
        while isinstance(getattr(base, "base", None), np.ndarray):
            base = base.base
        return any(a is base for a in self.pinned)

    def free_pinned(self, array):
        base = array
        while base.base is not None and isinstance(base.base, np.ndarray):
            base = base.base
        before = len(self.pinned)
        self.pinned = [a for a in self.pinned if a is not base]
        assert len(self.pinned) == before - 1, "free_pinned of memory that is not pinned"

    def stream_create(self):
        with self._lock:
            s = 7 + len(self.queues) + 100 * len(self.graphs)
            while s in self.queues:
                s += 1
            self.queues[s] = []
            return s

    def stream_destroy(self, stream):
        assert not self.queues.pop(stream), "stream destroyed with work still queued"

    # -- work on streams -------------------------------------------------------------------------------

    def capturing(self, stream) -> dict | None:
        """The capture in progress on ``stream``, or None."""
        return self.captures.get(stream)

    def capturing_thread(self) -> dict | None:
        """The capture the calling thread began and has not ended, or None."""
        me = threading.get_ident()
        return next((c for c in self.captures.values() if c["thread"] == me), None)

    def invalidate_thread_capture(self, why: str) -> None:
        cap = self.capturing_thread()
        if cap is not None:
            cap["invalid"] = cap["invalid"] or why

    def _claim(self, stream, scratch) -> None:
        if scratch is None:
            return
        other = self.scratch_users.get(scratch)
        if other is not None and other != stream:
            # NvInferRuntime.h v10.3.0:3675-3683: in use from enqueueV3 "until network execution is complete";
            # "using it in another execution context running in parallel … undefined behavior".
            raise EngineError(f"activation memory 0x{scratch:x} is in use by an engine queued on stream {other} "
                              f"(not synchronised yet) and an engine on stream {stream} was enqueued with it: "
                              "parallel use of one context memory is undefined behaviour in TensorRT")
        self.scratch_users[scratch] = stream

    def enqueue(self, stream, op, nbytes=0, kind="", scratch=None):
        """Queue ``op`` on ``stream``, or record it into the capture in progress on that stream."""
        with self._lock:
            assert stream in self.queues, f"unknown stream {stream}"
            cap = self.captures.get(stream)
            if cap is not None:
                cap["ops"].append((op, nbytes, kind, scratch))  # rt.pyx:18271-18278: captured, not executed
                return
            mine = self.capturing_thread()
            if mine is not None:
                # Stricter than CUDA, which runs work on an unjoined stream eagerly and leaves it out of the
                # graph (Guide, "Cross-stream Dependencies and Events"): here it invalidates the capture.
                mine["invalid"] = mine["invalid"] or f"work on stream {stream} while stream {mine['stream']} captures"
            self._claim(stream, scratch)
            self.counts[kind] += nbytes
            self.queues[stream].append(op)

    def h2d(self, dst, src, stream):
        assert isinstance(src, np.ndarray) and src.flags.c_contiguous
        if self.capturing_thread() is not None and not self._is_pinned(src):
            # A copy from pageable memory is synchronous for the host (CUDA Runtime API, "API
            # synchronization behavior"); synchronising during a capture is prohibited and invalidates it
            # (Guide, Prohibited and Unhandled Operations).
            self.invalidate_thread_capture("pageable copy during capture")
            raise _fail("cudaMemcpyAsync(H2D)", _UNSUPPORTED)
        target = self.ref(dst, src.nbytes)

        def op():
            self.view(target, "an H2D copy's destination")[:] = src.tobytes()  # read when it runs, like a DMA
        self.enqueue(stream, op, src.nbytes, "h2d_bytes")

    def d2h(self, dst, src, stream):
        if self.capturing_thread() is not None and not self._is_pinned(dst):
            self.invalidate_thread_capture("pageable copy during capture")
            raise _fail("cudaMemcpyAsync(D2H)", _UNSUPPORTED)
        source = self.ref(src, dst.nbytes)

        def op():
            data = bytes(self.view(source, "a D2H copy's source"))
            dst[...] = np.frombuffer(data, dst.dtype).reshape(dst.shape)
        self.enqueue(stream, op, dst.nbytes, "d2h_bytes")

    def d2d(self, dst, src, nbytes, stream):
        target, source = self.ref(dst, nbytes), self.ref(src, nbytes)

        def op():
            self.view(target, "a D2D copy's destination")[:] = bytes(self.view(source, "a D2D copy's source"))
        self.enqueue(stream, op, nbytes, "d2d_bytes")

    def synchronize(self, stream):
        with self._lock:
            cap = self.captures.get(stream) or self.capturing_thread()
            if cap is not None:
                # Guide, Prohibited and Unhandled Operations: synchronising or querying a capturing stream is
                # invalid (cudaErrorStreamCaptureUnsupported) and invalidates the capture sequence. (From the
                # capturing thread on another stream: stricter than CUDA, as for work on another stream.)
                cap["invalid"] = cap["invalid"] or "synchronize during capture"
                raise _fail("cudaStreamSynchronize", _UNSUPPORTED)
            self.counts["syncs"] += 1
            queue, self.queues[stream] = self.queues[stream], []
        try:
            for op in queue:
                op()
        finally:
            with self._lock:  # rt.pyx:16751-16757 "Blocks until stream has completed all operations"
                for scratch in [s for s, user in self.scratch_users.items() if user == stream]:
                    del self.scratch_users[scratch]

    # -- graphs -----------------------------------------------------------------------------------------

    def begin_capture(self, stream):
        with self._lock:
            if stream not in self.queues or stream in self.captures:
                # rt.pyx:18277-18280: capture "may only be initiated if the stream is not already in capture mode"
                raise _fail("cudaStreamBeginCapture", _ILLEGAL)
            self.captures[stream] = {"stream": stream, "ops": [], "invalid": "", "thread": threading.get_ident()}
            self.counts["captures"] += 1

    def end_capture(self, stream, instantiate=True):
        with self._lock:
            cap = self.captures.get(stream)
            if cap is None:
                # rt.pyx:18277-18278 "Capture must be ended on the same stream in which it was initiated";
                # a capture on another stream goes on.
                raise _fail("cudaStreamEndCapture", _UNMATCHED)
            if cap["thread"] != threading.get_ident():
                # rt.pyx:18284-18287, 18508-18511: not relaxed (ThreadLocal), so EndCapture "must be from the
                # same thread as cudaStreamBeginCapture"; the capture goes on.
                raise _fail("cudaStreamEndCapture", _WRONG_THREAD)
            del self.captures[stream]
            if cap["invalid"]:
                # rt.pyx:18503-18505 + 18548-18549: an invalidated capture returns (cudaErrorStreamCaptureInvalidated,
                # None); nothing sticky is left for cudaGetLastError (sampleDevice.h:196-201).
                self.counts["invalidated_captures"] += 1
                self.last_invalidation = cap["invalid"]
                raise _fail("cudaStreamEndCapture", _INVALIDATED)
            if not instantiate:
                return None
            handle = 0x9000 + len(self.graphs) + self.counts["captures"]
            while handle in self.graphs:
                handle += 1
            self.graphs[handle] = cap["ops"]
            return handle

    def launch_graph(self, graph_exec, stream):
        self.launches += 1
        self.counts["graph_launches"] += 1
        for op, nbytes, kind, scratch in self.graphs[graph_exec]:
            self.enqueue(stream, op, nbytes, kind, scratch=scratch)

    def destroy_graph(self, graph_exec):
        del self.graphs[graph_exec]


def install(monkeypatch, cuda: FakeCuda | None = None, trt=None, api: str = "10.3"):
    """Put the stand-ins in place of the CUDA binding and ``tensorrt`` (of version ``api``); returns the FakeCuda."""
    import sys

    from jamsdk.runtime.backends import tensorrt as trt_backend

    cuda = cuda or FakeCuda()
    monkeypatch.setattr(_cuda, "_probe", lambda: (GPU, ""))
    monkeypatch.setattr(_cuda, "cuda", lambda: cuda)
    monkeypatch.setitem(sys.modules, "tensorrt", trt or fake_tensorrt(cuda, api=api))
    monkeypatch.setattr(trt_backend._Logger, "instance", None)  # one logger per (fake) tensorrt module
    monkeypatch.setattr(trt_backend, "tensorrt_cuda_major", lambda: 12)
    return cuda


def make_engine_dir(model_dir, out, precision: str = "fp32", helpers: bool = True, batched: bool = False,
                    version: str = VERSION):
    """A copy of ``model_dir`` whose "engines" are its ONNX graphs (for the fake TensorRT).

    ``helpers``: give the helper graphs engines too (False: a folder whose engines were built before
    helper graphs existed). ``batched``: engines for the batched graphs too (``export --batch-sizes``).
    ``version``: the TensorRT version they are recorded as built with.
    """
    shutil.copytree(model_dir, out)
    data = json.loads((out / "manifest.json").read_text())
    refs = {}
    for name in data["stages"]:
        shutil.copy(out / f"{name}.onnx", out / f"{name}.engine")
        refs[name] = {"file": f"{name}.engine", "sha256": sha256_file(out / f"{name}.engine")}
    engines = {"tensorrt_version": version, "gpu_name": GPU.name, "compute_capability": GPU.compute_capability,
               "precision": precision, "typing": "strong", "stages": refs}
    if helpers and data.get("helpers"):
        engines["helpers"] = {}
        for name, entry in data["helpers"].items():
            shutil.copy(out / entry["file"], out / f"{name}.engine")
            engines["helpers"][name] = {"file": f"{name}.engine", "sha256": sha256_file(out / f"{name}.engine")}
    if batched and data.get("batched"):
        engines["batched"] = {}
        for name, sizes in data["batched"]["stages"].items():
            for b in sizes:
                shutil.copy(out / f"{name}.b{b}.onnx", out / f"{name}.b{b}.engine")
                engines["batched"].setdefault(name, {})[b] = {
                    "file": f"{name}.b{b}.engine", "sha256": sha256_file(out / f"{name}.b{b}.engine")}
    data["engines"] = engines
    (out / "manifest.json").write_text(json.dumps(data))
    return out
