"""A frame's work as data: steps that read and write named slots, and the host executor.

The Animator describes what a source or a frame needs as a :class:`Plan`: an ordered list of
:class:`Step` s, each a stage (or helper graph) whose tensors are bound *by name* to slots (the
output slot of one step is the input slot of the next), or a host step (numpy on the host, e.g.
the relative mode's reference or motion smoothing). A backend's pipeline executes plans:

* :class:`HostPipeline` (every backend; ONNX Runtime uses it): slots are numpy arrays on the
  host, stage steps call :meth:`Backend.run <jamsdk.runtime.backends.base.Backend.run>`.
* the TensorRT backend's device pipeline (``backends/trt_pipeline.py``): slots are device
  buffers allocated once, stage steps are engines bound to those buffers, and only the plan's
  feeds, fetches and host-step inputs/outputs cross between host and device.

So the Animator's logic exists once; only where the slots live differs.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Iterable, Mapping, Protocol

import numpy as np

from jamsdk.errors import EngineError
from jamsdk.stages import Stage, TensorSpec

HostFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
Timer = Callable[[str], ContextManager[None]]


@dataclass(frozen=True)
class Step:
    """One step of a plan.

    Args:
        name: the stage or helper graph it runs (a label for host steps).
        inputs: stage tensor name → slot (host steps: slot → slot, the slots it reads).
        outputs: stage tensor name → slot (host steps: the slots it writes).
        host: for a host step, ``fn({slot: array}) -> {slot: array}``.
        stat: the :meth:`Animator.stats` key the host executor times it under (None: untimed).
        copy: for a copy step (:func:`copy_step`), ``(source offset, destination offset, bytes)``
            between the slots ``inputs["src"]`` and ``outputs["dst"]``: gathers rows into a batch.
    """

    name: str
    inputs: Mapping[str, str]
    outputs: Mapping[str, str]
    host: HostFn | None = field(default=None, compare=False)
    stat: str | None = None
    copy: tuple[int, int, int] | None = None


def copy_step(src: str, dst: str, src_offset: int = 0, dst_offset: int = 0, nbytes: int | None = None) -> Step:
    """A step that copies ``nbytes`` (None: the whole source slot) between two slots, on the device where they live.

    ``nbytes=None`` is resolved by the executor from the source slot's size.
    """
    return Step("copy", {"src": src}, {"dst": dst}, copy=(src_offset, dst_offset, -1 if nbytes is None else nbytes))


@dataclass(frozen=True)
class Plan:
    """Steps in order, the slots the caller feeds per run and the slots it fetches back.

    ``name`` is for messages only; executors key what they cache (contexts, CUDA graphs) on the
    steps themselves, so plans built per frame, or variants that add host steps, stay correct.
    """

    name: str
    steps: tuple[Step, ...]
    feeds: tuple[str, ...]
    fetches: tuple[str, ...]

    def segments(self) -> list[tuple[tuple[Step, ...], Step | None]]:
        """``[(engine steps, the host step after them or None), …]``: what runs between host round trips."""
        out: list[tuple[tuple[Step, ...], Step | None]] = []
        run: list[Step] = []
        for step in self.steps:
            if step.host is None:
                run.append(step)
            else:
                out.append((tuple(run), step))
                run = []
        out.append((tuple(run), None))
        return out


def stage_plan(key: str, stage: Stage) -> Plan:
    """One stage alone as a plan: its tensors bound to slots ``<key>/<tensor>``, inputs fed, outputs fetched.

    For a stage run outside a chain (a backend's own ``run``, StreamBatch without helper engines):
    several such plans share one pipeline, each stage under its own ``key``.
    """
    ins = {s.name: f"{key}/{s.name}" for s in stage.inputs}
    outs = {s.name: f"{key}/{s.name}" for s in stage.outputs}
    return Plan(key, (Step(key, ins, outs),), feeds=tuple(ins.values()), fetches=tuple(outs.values()))


def slot_specs(plans: Iterable[Plan], stages: Mapping[str, Stage],
               extra: Mapping[str, TensorSpec] = {}) -> dict[str, TensorSpec]:
    """Shape and dtype of every slot the plans use, from the stage tensors bound to it.

    Every slot must be bound to at least one stage tensor (host-step slots included), and all
    tensors bound to one slot must agree; anything else is a bug in the plan.
    """
    specs: dict[str, TensorSpec] = {k: TensorSpec(k, v.shape, v.dtype) for k, v in extra.items()}
    used: set[str] = set()
    for plan in plans:
        for step in plan.steps:
            if step.host is not None or step.copy is not None:
                used.update(step.inputs.values())
                used.update(step.outputs.values())
                continue
            stage = stages[step.name]
            tensors = {s.name: s for s in stage.inputs + stage.outputs}
            bound = {**step.inputs, **step.outputs}
            if set(bound) != set(tensors):
                raise EngineError(f"plan {plan.name}: step {step.name} binds {sorted(bound)}, "
                                  f"the stage has {sorted(tensors)}")
            for tensor, slot in bound.items():
                spec = tensors[tensor]
                have = specs.get(slot)
                if have is not None and (tuple(have.shape), have.dtype) != (tuple(spec.shape), spec.dtype):
                    raise EngineError(f"plan {plan.name}: slot {slot!r} is {have.shape} {have.dtype} and "
                                      f"{spec.shape} {spec.dtype}")
                specs[slot] = TensorSpec(slot, tuple(spec.shape), spec.dtype)
        used.update(plan.feeds)
        used.update(plan.fetches)
    unbound = sorted(used - set(specs))
    if unbound:
        raise EngineError(f"slots {unbound} are not bound to any stage tensor")
    return specs


class StageRunner(Protocol):
    """What the host executor needs of a stage: ``run(feeds) -> outputs`` by tensor name.

    :class:`~jamsdk.runtime.backends.base.Backend` is one (it validates the feeds, then runs).
    Plans sit below the backends, so they name this shape rather than importing the base class.
    """

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class Pipeline:
    """Executes plans over slots that persist between runs (per-source features stay where they are)."""

    #: True when slots live on a device (results can be handed out without a copy)
    on_device = False

    def write(self, slot: str, array: np.ndarray) -> None:
        """Set a slot that persists (source tensors, settings); synchronous."""
        raise NotImplementedError

    def write_many(self, arrays: Mapping[str, np.ndarray]) -> None:
        """:meth:`write` for several slots (a device pipeline waits once for all of them)."""
        for slot, array in arrays.items():
            self.write(slot, array)

    def run(self, plan: Plan, feeds: Mapping[str, np.ndarray], time: Timer | None = None) -> dict[str, np.ndarray]:
        """Run ``plan`` with ``feeds`` (its ``feeds`` slots) → its ``fetches`` slots as host arrays (caller's)."""
        raise NotImplementedError

    def run_device(self, plan: Plan, feeds: Mapping[str, np.ndarray], keep: str,
                   time: Timer | None = None) -> Any:
        """Like :meth:`run` but hand out slot ``keep`` on the device (device pipelines only)."""
        raise EngineError("this backend keeps no tensors on a device")

    def close(self) -> None:
        """Free what the pipeline holds. Safe to call twice."""


class HostPipeline(Pipeline):
    """Slots as host numpy arrays; stage steps run through each stage's backend (validate, then ``_run``)."""

    def __init__(self, backends: Mapping[str, StageRunner]):
        self.backends = backends
        self.slots: dict[str, np.ndarray] = {}

    def write(self, slot: str, array: np.ndarray) -> None:
        self.slots[slot] = np.array(array, order="C", copy=True)

    def run(self, plan: Plan, feeds: Mapping[str, np.ndarray], time: Timer | None = None) -> dict[str, np.ndarray]:
        slots = self.slots
        slots.update(feeds)
        for step in plan.steps:
            timed = time(step.stat) if (time is not None and step.stat) else contextlib.nullcontext()
            if step.copy is not None:  # a new array: results handed out earlier stay as they were
                src, dst = slots[step.inputs["src"]], np.array(slots[step.outputs["dst"]], order="C")
                start, at, n = step.copy
                n = src.nbytes - start if n < 0 else n
                if start + n > src.nbytes or at + n > dst.nbytes:
                    raise EngineError(f"copy of {n} bytes from {step.inputs['src']}+{start} to "
                                      f"{step.outputs['dst']}+{at} overruns a slot")
                dst.reshape(-1).view(np.uint8)[at:at + n] = np.ascontiguousarray(src).reshape(-1).view(np.uint8)[
                    start:start + n]
                slots[step.outputs["dst"]] = dst
                continue
            if step.host is not None:
                out = step.host({s: slots[s] for s in step.inputs.values()})
                slots.update({s: out[s] for s in step.outputs.values()})
                continue
            with timed:
                result = self.backends[step.name].run({t: slots[s] for t, s in step.inputs.items()})
            for tensor, slot in step.outputs.items():
                slots[slot] = result[tensor]
        return {s: slots[s] for s in plan.fetches}

    def close(self) -> None:
        self.slots.clear()

