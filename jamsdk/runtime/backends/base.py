"""The interface every inference backend implements (Polygraphy's template method).

:meth:`Backend.run` is the only public way to execute a stage: it checks the feeds against the
stage's tensor specs (names, dtypes, shapes: an :class:`~jamsdk.errors.InputError` names what was
expected and what came), then calls the backend's :meth:`Backend._run`. Backends therefore never
repeat the checks, and a backend stays small.

Beyond single stages, a backend class runs the Animator's plans (:mod:`jamsdk.runtime.plan`)
through :meth:`Backend.open_pipeline`: by default on the host, stage by stage through ``run``; a
backend whose tensors can stay on its device (TensorRT) returns a pipeline that keeps them there,
and may add helper graphs (:meth:`Backend.helper_backends`) for the per-pixel and region work.

Lifecycle: the constructor only records what to load, so nothing touches a GPU (or even reads a
file) until :meth:`Backend.open`; :meth:`Backend.close` (or leaving a ``with`` block) frees what
``open`` took. ``run`` on a backend that is not open raises :class:`~jamsdk.errors.EngineError`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

import numpy as np

from jamsdk.errors import EngineError, InputError
from jamsdk.runtime.plan import HostPipeline, Pipeline
from jamsdk.stages import Stage, TensorSpec, batched

if TYPE_CHECKING:
    from jamsdk.manifest import Manifest


def describe(array: Any) -> str:
    """``(1, 3, 64, 64) float32`` for arrays, the type name for anything else."""
    if isinstance(array, np.ndarray):
        return f"{tuple(array.shape)} {array.dtype}"
    return type(array).__name__


def check_feeds(stage: Stage, feeds: Mapping[str, Any]) -> None:
    """Raise InputError unless ``feeds`` has exactly the stage's inputs with their dtypes and shapes."""
    if not isinstance(feeds, Mapping):
        raise InputError(f"{stage.name}: feeds must be a dict of name → numpy array, got {type(feeds).__name__}")
    expected = [spec.name for spec in stage.inputs]
    missing = [n for n in expected if n not in feeds]
    unexpected = sorted(set(feeds) - set(expected))
    if missing or unexpected:
        raise InputError(f"{stage.name}: expected inputs {expected}, got {sorted(feeds)}"
                         + (f" (missing {missing})" if missing else "")
                         + (f" (unexpected {unexpected})" if unexpected else ""))
    for spec in stage.inputs:
        value = feeds[spec.name]
        if (not isinstance(value, np.ndarray) or value.dtype != np.dtype(spec.dtype)
                or tuple(value.shape) != tuple(spec.shape)):
            raise InputError(f"{stage.name}: input {spec.name!r}: expected {tuple(spec.shape)} {spec.dtype}, "
                             f"got {describe(value)}")


def manifest_stage(manifest: "Manifest", name: str, options: Mapping[str, Any]) -> tuple[Stage, int]:
    """Stage ``name`` as the manifest records it, at ``options["batch"]`` streams per call (default 1).

    What every backend's :meth:`Backend.from_manifest` starts from: the batch size picks the file too
    (:class:`~jamsdk.runtime.batch.StreamBatch` opens one backend per batched size).
    """
    entry = manifest.stage(name)
    batch = int(options.get("batch") or 1)
    return batched(Stage(name, entry.per, entry.inputs, entry.outputs), batch), batch


def spec_table(specs: tuple[TensorSpec, ...]) -> str:
    return ", ".join(f"{s.name}{list(s.shape)}" for s in specs)


class Backend:
    """One stage's graph or engine behind ``run(feeds) -> outputs``.

    Args:
        stage: the stage's name, inputs and outputs (from the model's manifest).
        path: the file this backend loads (an ONNX graph or a TensorRT plan).

    Subclasses set :attr:`kind` and :attr:`artifact`, and implement :meth:`_open`, :meth:`_run`
    and :meth:`_close`.
    """

    #: the key this backend is registered under (``"onnxruntime"``, ``"tensorrt"``)
    kind: ClassVar[str] = ""
    #: which file it loads: ``"onnx"`` or ``"engine"``
    artifact: ClassVar[str] = ""
    #: whether its pipeline keeps slots on a device (then only a plan's feeds and fetches cross)
    device_resident: ClassVar[bool] = False

    def __init__(self, stage: Stage, path: str | os.PathLike[str]):
        self.stage = stage
        self.path = Path(path)
        self._is_open = False

    @property
    def name(self) -> str:
        return self.stage.name

    @property
    def is_open(self) -> bool:
        return self._is_open

    def open(self) -> "Backend":
        """Load the artifact and take the resources (GPU memory, sessions). Idempotent."""
        if not self._is_open:
            if not self.path.is_file():
                raise EngineError(f"{self.name}: {self.artifact} file {self.path} does not exist")
            self._open()
            self._is_open = True
        return self

    def close(self) -> None:
        """Free what :meth:`open` took. Safe to call more than once."""
        if self._is_open:
            self._is_open = False
            self._close()

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the stage on ``feeds`` (name → array, exactly the stage's inputs) → outputs by name.

        The returned arrays belong to the caller (they are not overwritten by the next call).
        """
        if not self._is_open:
            raise EngineError(f"{self.name}: the {self.kind} backend is not open (call open() or use `with`)")
        check_feeds(self.stage, feeds)
        outputs = self._run(feeds)
        missing = [s.name for s in self.stage.outputs if s.name not in outputs]
        if missing:
            raise EngineError(f"{self.name}: the {self.artifact} {self.path.name} did not produce {missing}")
        return outputs

    def __enter__(self) -> "Backend":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a forgotten close() must not leak GPU memory for the process's life
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "open" if self._is_open else "closed"
        return f"<{type(self).__name__} {self.name} {self.path.name} ({state})>"

    # -- implemented by each backend ------------------------------------------------------------

    @classmethod
    def usable(cls, manifest: "Manifest") -> str:
        """Why this backend cannot run ``manifest``'s model here ("" when it can).

        Used by ``backend="auto"``; must be cheap and must not take GPU resources.
        """
        raise NotImplementedError

    @classmethod
    def machine_problem(cls) -> str:
        """Why this machine cannot run this backend at all, whatever the model ("" when it can).

        Asked before anything about a model folder when a backend is named explicitly, so that a
        machine without what the backend needs hears that first; must be cheap and take nothing.
        """
        return ""

    @classmethod
    def from_manifest(cls, manifest: "Manifest", name: str, options: Mapping[str, Any]) -> "Backend":
        """A (closed) backend for stage ``name`` of ``manifest``; picks the options it understands."""
        raise NotImplementedError

    @classmethod
    def helper_backends(cls, manifest: "Manifest", options: Mapping[str, Any]) -> dict[str, "Backend"]:
        """(Closed) backends for the folder's helper graphs this backend runs (default: none)."""
        return {}

    @classmethod
    def open_pipeline(cls, backends: Mapping[str, "Backend"], slots: Mapping[str, TensorSpec],
                      options: Mapping[str, Any]) -> Pipeline:
        """The executor of the Animator's plans over ``backends`` (open); default: on the host."""
        return HostPipeline(backends)

    def _open(self) -> None:
        raise NotImplementedError

    def _run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError
