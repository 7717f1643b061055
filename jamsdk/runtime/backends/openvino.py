"""OpenVINO backend: each stage's ONNX graph compiled for the CPU by OpenVINO (no conversion step).

Why it exists: on a CPU with AVX-512 VNNI, OpenVINO runs the export's symmetric Q/DQ ``int8``
graphs at about 2.9× its FP32 convolution rate, where ONNX Runtime's S8S8 kernels are no faster
than FP32 (docs/performance.md has the numbers). In FP32 the two runtimes are within a few per cent.

Settings that decide correctness or speed (each measured; docs/runtime.md, "OpenVINO"):

* ``INFERENCE_PRECISION_HINT: f32`` always. OpenVINO's default on a CPU with BF16 is bf16, which
  silently ruins this model's flow path (24 dB mean, 16 dB worst frame against FP32).
* ``PERFORMANCE_HINT: LATENCY`` (one stream: a frame is one request) and ``INFERENCE_NUM_THREADS``
  from ``threads``.
* CPU pinning off by default: on a shared 2-core machine pinned threads waited for cores that other
  processes held.
* **Throughput mode** (``hint="throughput"``, for :class:`~jamsdk.runtime.batch.StreamBatch`): the
  stage's batch-1 graph compiled with ``PERFORMANCE_HINT: THROUGHPUT`` (OpenVINO splits the cores
  into streams) runs the ``rows`` rows of a call as that many asynchronous infer requests, instead
  of one request on the batched graph with all cores on each layer. Which wins depends on the
  machine (docs: the CPU throughput page has the measurements and how to choose).
* The compiled model is cached per user, keyed by the graph's SHA-256 (:func:`cache_dir_for`), so
  a second open skips compilation; nothing is written next to the model (it may sit in a read-only
  site-packages, and the folder is not OpenVINO's to write in).

``import openvino`` also imports its model converter, which starts openvino-telemetry: without a
consent file it counts as consent, writes a client id under ``~/intel`` and sends an event to Google
Analytics. :func:`import_openvino` imports openvino with the telemetry package hidden, so the
converter takes the no-op stub OpenVINO ships for installs without it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from jamsdk._lazy import not_installed, require
from jamsdk.backend_registry import BY_NAME
from jamsdk.errors import EngineError, InputError
from jamsdk.runtime.backends.ov_cache import folder_for, record
from jamsdk.runtime.backends.base import Backend, manifest_stage
from jamsdk.stages import Stage

if TYPE_CHECKING:
    from jamsdk.manifest import Manifest

_core: Any = None


def import_openvino() -> ModuleType:
    """``openvino``, imported without its telemetry (see the module docstring)."""
    loaded = sys.modules.get("openvino")
    if loaded is not None:
        return loaded
    hide = "openvino_telemetry" not in sys.modules
    if hide:
        # A None entry makes `import openvino_telemetry` raise ImportError; openvino/tools/ovc/
        # telemetry_utils.py then imports its own telemetry_stub (a class whose methods do nothing).
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]
    try:
        return require("openvino")
    finally:
        if hide and sys.modules.get("openvino_telemetry", 0) is None:
            del sys.modules["openvino_telemetry"]


def core() -> Any:
    """The process's ``openvino.Core`` (one: it holds the plugins and their thread pools)."""
    global _core
    if _core is None:
        _core = import_openvino().Core()
    return _core


def cache_dir_for(sha256: str) -> Path | None:
    """The folder OpenVINO caches the compiled graph of hash ``sha256`` in; None when it cannot be made.

    One folder per graph content: a re-exported graph never meets a blob compiled from the old one
    (OpenVINO's own key is the file's path, size and time, plus the options and the CPU's name). Its
    owner, mode and content are checked first (:mod:`jamsdk.runtime.backends.ov_cache`).
    """
    return folder_for(sha256)


def error_text(exc: BaseException, limit: int = 300) -> str:
    """OpenVINO's message without its C++ source locations (``Exception from src/...:132:``)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    said = [ln for ln in lines if not ln.startswith(("Exception from ", "Check '"))]
    return (" ".join(said) or (lines[-1] if lines else type(exc).__name__))[:limit]


#: ``hint=`` values: one request per call on all cores, or the rows of a call as parallel requests
HINTS = ("latency", "throughput")


def compile_properties(threads: int | None = None, pinning: bool = False,
                       cache_dir: str | os.PathLike[str] | None = None, hint: str = "latency") -> dict[str, Any]:
    """The properties jamsdk compiles every graph with (see the module docstring for why each)."""
    props: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": hint.upper(),
                             "ENABLE_CPU_PINNING": bool(pinning)}
    if threads:
        props["INFERENCE_NUM_THREADS"] = int(threads)
    if cache_dir is not None:
        props["CACHE_DIR"] = os.fspath(cache_dir)
    return props


class OpenVINOBackend(Backend):
    """Runs a stage's ONNX graph with OpenVINO on the CPU.

    Args:
        stage: the stage's tensor specs.
        path: the ``.onnx`` file (FP32 or Q/DQ INT8).
        threads: inference threads (None: OpenVINO's choice, one per physical core).
        pinning: pin inference threads to cores (``ENABLE_CPU_PINNING``); off by default.
        sha256: the graph's hash; with it the compiled model is cached (:func:`cache_dir_for`).
        cache: False: never read or write the cache (e.g. short-lived candidate graphs).
        hint: ``latency`` (default) or ``throughput``: ``path`` is then a batch-1 graph and each call's
            ``stage.inputs`` rows (their leading dimension) run as parallel requests (module docstring).
    """

    kind = "openvino"
    artifact = "onnx"
    #: ``pinning`` of backends made by :meth:`from_manifest` (the Animator's); benchmarks flip it
    PINNING: bool = False

    def __init__(self, stage: Stage, path: str | os.PathLike[str], threads: int | None = None,
                 pinning: bool = False, sha256: str | None = None, cache: bool = True, hint: str = "latency"):
        super().__init__(stage, path)
        if hint not in HINTS:
            raise InputError(f"openvino hint: expected one of {HINTS}, got {hint!r}")
        self.threads, self.pinning, self.sha256, self.cache = threads, bool(pinning), sha256, bool(cache)
        self.hint = hint
        self.rows = stage.inputs[0].shape[0] if hint == "throughput" and stage.inputs else 1
        self._request: Any = None
        self._queue: Any = None

    def properties(self) -> dict[str, Any]:
        """The compile properties (:func:`compile_properties`; also part of OpenVINO's cache key)."""
        folder = cache_dir_for(self.sha256) if self.cache and self.sha256 else None
        return compile_properties(self.threads, self.pinning, folder, self.hint)

    @classmethod
    def usable(cls, manifest: "Manifest") -> str:
        return not_installed("openvino")

    @classmethod
    def from_manifest(cls, manifest: "Manifest", name: str, options: Mapping[str, Any]) -> "OpenVINOBackend":
        """``options["openvino_hint"] == "throughput"`` and a batch > 1: the batch-1 graph, rows as requests."""
        stage, batch = manifest_stage(manifest, name, options)
        hint = options.get("openvino_hint") or "latency"
        rows = hint == "throughput" and batch > 1
        path = manifest.stage_file(name, options.get("precision") or "fp32", 1 if rows else batch,
                                   prefer=BY_NAME[cls.kind].int8_graph)
        return cls(stage, path, threads=options.get("threads"), pinning=cls.PINNING,
                   sha256=manifest.file_sha256(path), hint="throughput" if rows else "latency")

    def _open(self) -> None:
        ov_core = core()
        props = self.properties()
        try:
            compiled = ov_core.compile_model(str(self.path), "CPU", props)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with long C++ traces
            raise EngineError(f"{self.name}: OpenVINO cannot compile {self.path}: {error_text(exc)}") from None
        if "CACHE_DIR" in props:
            record(Path(props["CACHE_DIR"]))  # what it wrote (or read, verified) is what later opens check
        for what, got, specs in (("inputs", compiled.inputs, self.stage.inputs),
                                 ("outputs", compiled.outputs, self.stage.outputs)):
            names = sorted(port.get_any_name() for port in got)
            if names != sorted(s.name for s in specs):
                raise EngineError(f"{self.name}: {self.path.name} has {what} {names}, "
                                  f"the manifest says {sorted(s.name for s in specs)}")
        if self.rows > 1:
            # as many requests as OpenVINO's streams can run at once (its own advice for this compile)
            jobs = max(1, min(self.rows, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))))
            self._queue = import_openvino().AsyncInferQueue(compiled, jobs)
            self._outputs = [port.get_any_name() for port in compiled.outputs]
        else:
            self._request = compiled.create_infer_request()

    def _run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._queue is not None:
            return self._run_rows(feeds)
        # share_inputs: no copy of the inputs (the cached encoder features are ~28 MB at 256²);
        # share_outputs off (the default): copies, as the request's buffers are reused by its next call.
        result = self._request.infer({k: np.ascontiguousarray(v) for k, v in feeds.items()}, share_inputs=True)
        return {port.get_any_name(): value for port, value in result.items()}

    def _run_rows(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each row of ``feeds`` as its own request, ``jobs`` at a time; outputs stacked back in row order."""
        rows: list[dict[str, np.ndarray]] = [{} for _ in range(self.rows)]

        def done(request: Any, row: int) -> None:
            # copies: a request's output buffers are overwritten by the next row it runs
            rows[row] = {name: request.get_tensor(name).data.copy() for name in self._outputs}

        self._queue.set_callback(done)
        for i in range(self.rows):
            self._queue.start_async({k: np.ascontiguousarray(v[i:i + 1]) for k, v in feeds.items()}, i)
        self._queue.wait_all()
        return {name: np.concatenate([r[name] for r in rows]) for name in self._outputs}

    def _close(self) -> None:
        self._request = self._queue = None
