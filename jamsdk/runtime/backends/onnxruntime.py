"""ONNX Runtime backend: one InferenceSession per stage graph (CPU by default)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from jamsdk._lazy import not_installed, require
from jamsdk.backend_registry import BY_NAME
from jamsdk.errors import EngineError, InputError
from jamsdk.runtime.backends.base import Backend, manifest_stage
from jamsdk.stages import Stage

if TYPE_CHECKING:
    from jamsdk.manifest import Manifest

CPU = ("CPUExecutionProvider",)
#: tried in this order by ``providers="auto"`` (only those the installed onnxruntime has)
ACCELERATED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def resolve_providers(providers: str | Sequence[str] | None) -> list[str]:
    """``None``/``"cpu"`` → CPU only; ``"auto"`` → the installed ones of :data:`ACCELERATED`; else as given."""
    if providers is None or providers == "cpu":
        return list(CPU)
    available = require("onnxruntime").get_available_providers()
    if providers == "auto":
        return [p for p in ACCELERATED if p in available]
    chosen = [providers] if isinstance(providers, str) else list(providers)
    absent = [p for p in chosen if p not in available]
    if absent:
        raise InputError(f"onnxruntime providers {absent} are not installed (available: {available})")
    return chosen


def session_options(options: Any, spinning: bool = False) -> Any:
    """``options`` (an ``onnxruntime.SessionOptions``) with intra-op spinning set; see :class:`OnnxRuntimeBackend`."""
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return options


class OnnxRuntimeBackend(Backend):
    """Runs a stage's ONNX graph with onnxruntime.

    Args:
        stage: the stage's tensor specs.
        path: the ``.onnx`` file.
        providers: execution providers (see :func:`resolve_providers`); CPU by default.
        threads: intra-op threads (None: onnxruntime's default, one per core).
        spinning: let idle intra-op threads spin-wait for work (onnxruntime's default). Off here:
            every stage is its own session with its own thread pool, so a pool spinning after its
            stage ran takes cores from the next stage — on a 2-core CPU jam-256 streamed 1.4× faster
            without it (README, "ONNX Runtime thread pools"). Turn it on for one stage run alone.
    """

    kind = "onnxruntime"
    artifact = "onnx"

    def __init__(self, stage: Stage, path: str | os.PathLike[str],
                 providers: str | Sequence[str] | None = None, threads: int | None = None, spinning: bool = False):
        super().__init__(stage, path)
        self.providers = providers
        self.threads = threads
        self.spinning = spinning
        self._session: Any = None

    @classmethod
    def usable(cls, manifest: "Manifest") -> str:
        return not_installed("onnxruntime")

    @classmethod
    def from_manifest(cls, manifest: "Manifest", name: str, options: Mapping[str, Any]) -> "OnnxRuntimeBackend":
        stage, batch = manifest_stage(manifest, name, options)
        providers = options.get("providers")
        # INT8 on the CPU provider alone: the graph the export timed fastest on the CPU (int8_cpu).
        cpu_only = providers in (None, "cpu") or (not isinstance(providers, str) and list(providers) == list(CPU))
        path = manifest.stage_file(name, options.get("precision") or "fp32", batch,
                                   prefer=BY_NAME[cls.kind].int8_graph if cpu_only else None)
        return cls(stage, path, providers=providers, threads=options.get("threads"))

    def _open(self) -> None:
        ort = require("onnxruntime")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # onnxruntime's warnings are not actionable for users
        if self.threads:
            options.intra_op_num_threads = int(self.threads)
        session_options(options, self.spinning)
        try:
            session = ort.InferenceSession(str(self.path), options, providers=resolve_providers(self.providers))
        except InputError:
            raise
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... on bad files
            raise EngineError(f"{self.name}: cannot load {self.path}: {str(exc).strip()[:300]}") from None
        for what, got, specs in (("inputs", session.get_inputs(), self.stage.inputs),
                                 ("outputs", session.get_outputs(), self.stage.outputs)):
            if sorted(t.name for t in got) != sorted(s.name for s in specs):
                raise EngineError(f"{self.name}: {self.path.name} has {what} {sorted(t.name for t in got)}, "
                                  f"the manifest says {sorted(s.name for s in specs)}")
        self._session = session

    def _run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [s.name for s in self.stage.outputs]
        return dict(zip(names, self._session.run(names, dict(feeds)), strict=True))

    def _close(self) -> None:
        self._session = None
