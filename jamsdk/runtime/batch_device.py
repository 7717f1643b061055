"""StreamBatch on TensorRT: a chunk of B streams is one plan on the device pipeline.

:class:`~jamsdk.runtime.batch.StreamBatch` uses this when its backend is TensorRT and the folder
has helper-graph engines. Slots (device buffers of :class:`~jamsdk.runtime.backends.trt_pipeline.DevicePipeline`):

* per stream ``s<id>/…``: the source picture, its region params and generator features, the
  relative reference (``initial_*``, ``scale``): written once per ``add_stream``/``set_source``
  (and reference), freed by ``remove_stream``;
* per chunk position ``p<i>/…``: the uint8 crop, the model-space frame, the prediction and the
  uint8 result, and in relative mode the region params the ``relative`` helper reads and writes
  for the stream at that position (its source's and its reference's, copied in) (the helper graphs
  are batch-1 engines);
* per batch size ``b<B>/…``: the batched engines' tensors.

A chunk: device copies of each stream's tensors into its position (its rows of the batched tensors,
its relative params) where that position held another stream or another version of it before;
H2D of each stream's uint8 crop, ``preprocess`` per position, device copies of rows into the
batched tensors, the batched engines, ``relative`` per position in relative mode, ``postprocess``
per position, D2H of each uint8 result and **one** sync. The first chunk of a stream after
``add_stream``/``reset`` brings that frame's region params to the host once (the relative
reference's scale needs a convex hull): one more sync then.

Every engine and every copy of the chunk's plan is bound to position and batch slots only, never to
a stream's own slots: the copies from a stream's slots are issued before the plan, plainly. So the
pipeline's execution contexts and CUDA graphs depend on the batch size and the entry and exit, not on
which stream sits where (a plan keyed by stream identity would hold a context per (stream, position)
and a graph per arrangement of streams seen): at most one context per stage and size, one per
helper and position, and at most three graphs per size and entry/exit (a steady chunk, and the two
halves around the reference's host step).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from jamsdk.runtime import regions
from jamsdk.runtime.plan import Plan, Step, copy_step
from jamsdk.runtime.stream_state import StreamState
from jamsdk.stages import TensorSpec

if TYPE_CHECKING:
    from jamsdk.runtime.backends.base import Backend

K = regions.PARAM_NAMES
#: the ``relative`` helper's per-stream inputs, copied into each position's slots (``p<i>/…``)
RELATIVE_INPUTS = ("source_shift", "source_affine", "initial_shift", "initial_affine", "scale")


def _spec(slot: str, spec: TensorSpec) -> TensorSpec:
    return TensorSpec(slot, tuple(spec.shape), spec.dtype)


def _nbytes(spec: TensorSpec) -> int:
    return int(np.prod(spec.shape, dtype=np.int64)) * np.dtype(spec.dtype).itemsize


class DeviceBatch:
    """The device side of a StreamBatch (see the module docstring).

    Args:
        backends: open backends by ``(stage, batch size)``, the per-source stages at size 1.
        helpers: the open ``preprocess``, ``postprocess`` (and ``relative``) helper backends.
        sizes: the batch sizes (1 included).
        mode, use_bg_motion, has_bg_motion, bgr: as the StreamBatch's.
        options: the backend options (``cuda_graph`` …).
    """

    def __init__(self, backends: Mapping[tuple[str, int], "Backend"], helpers: Mapping[str, "Backend"],
                 sizes: Sequence[int], mode: str, use_bg_motion: bool, has_bg_motion: bool, bgr: bool,
                 options: Mapping[str, Any]):
        self.mode, self.use_bg_motion, self.has_bg_motion = mode, use_bg_motion, has_bg_motion
        self.sizes = tuple(sizes)
        self.engines: dict[str, Backend] = {f"{name}@b{b}": be for (name, b), be in backends.items()}
        self.engines.update(helpers)
        st = {name: be.stage for name, be in self.engines.items()}
        self.stages = st
        rp, enc = st["region_predictor@b1"], st["generator_encoder@b1"]
        self.features = tuple(s.name for s in enc.outputs)
        spec_of = {s.name: s for s in rp.inputs + rp.outputs}
        self.stream_specs = {"source": spec_of["image"], **{f"source_{k}": spec_of[k] for k in K},
                             **{f: s for f, s in ((s.name, s) for s in enc.outputs)}}
        if mode == "relative":
            rel = {s.name: s for s in st["relative"].inputs}
            self.stream_specs.update(initial_shift=rel["initial_shift"], initial_affine=rel["initial_affine"],
                                     scale=rel["scale"])
        slots: dict[str, TensorSpec] = {}
        pre, post = {s.name: s for s in st["preprocess"].inputs + st["preprocess"].outputs}, \
            {s.name: s for s in st["postprocess"].inputs + st["postprocess"].outputs}
        slots["channel_order"] = _spec("channel_order", pre["channel_order"])
        for name, spec in (("source", spec_of["image"]), *((f"source_{k}", spec_of[k]) for k in K)):
            slots[f"enc/{name}"] = _spec(f"enc/{name}", spec)
        for s in enc.outputs:
            slots[f"enc/{s.name}"] = _spec(f"enc/{s.name}", s)
        for i in range(max(self.sizes)):
            for name, spec in (("frame_u8", pre["frame"]), ("driving", pre["image"]),
                               ("prediction", post["prediction"]), ("result_u8", post["frame"])):
                slots[f"p{i}/{name}"] = _spec(f"p{i}/{name}", spec)
            if mode == "relative":
                rel = {s.name: s for s in st["relative"].inputs + st["relative"].outputs}
                for k in ("shift", "affine"):
                    slots[f"p{i}/frame_{k}"] = _spec(f"p{i}/frame_{k}", rel[f"driving_{k}"])
                    slots[f"p{i}/driving_{k}"] = _spec(f"p{i}/driving_{k}", rel[k])
                for name in RELATIVE_INPUTS:
                    slots[f"p{i}/{name}"] = _spec(f"p{i}/{name}", rel[name])
        for b in self.sizes:
            for name, tensor_slots in self._batch_bindings(b).items():
                tensors = {s.name: s for s in st[name].inputs + st[name].outputs}
                for tensor, slot in tensor_slots.items():
                    slots[slot] = _spec(slot, tensors[tensor])
        from jamsdk.runtime.backends.tensorrt import TensorRTBackend

        self.pipe = TensorRTBackend.open_pipeline(self.engines, slots, options)
        self.specs = slots
        self.pipe.write("channel_order", np.array([2, 1, 0] if bgr else [0, 1, 2], np.int32))
        if has_bg_motion and not use_bg_motion:
            for b in self.sizes:
                self.pipe.write(f"b{b}/bg_params", np.repeat(np.eye(3, dtype=np.float32)[None], b, axis=0))
        self.prefixes: dict[int, str] = {}  # id(StreamState) → its slot prefix
        self.versions: dict[str, int] = {}  # slot prefix → how often its source was written
        self.ref_versions: dict[str, int] = {}  # slot prefix → how often its reference (or scale) was written
        # What was already gathered where, so that a chunk copies a stream's tensors only when they
        # changed: (size, row) → (prefix, version) of the source rows of the batched tensors;
        # ("source", position) / ("reference", position) → (prefix, version) of the relative params.
        self.rows: dict[tuple[Any, int], tuple[str, int]] = {}
        self._next = 0

    def _batch_bindings(self, b: int) -> dict[str, dict[str, str]]:
        """Stage (at size ``b``) → tensor → slot, for the batched engines of a chunk."""
        p = f"b{b}/"
        moved = {k: p + ("frame_" if (self.mode == "standard" or k == "covar") else "driving_") + k for k in K}
        out = {f"region_predictor@b{b}": {"image": p + "driving", **{k: p + f"frame_{k}" for k in K}}}
        if self.mode == "avd":
            out[f"avd@b{b}"] = {"source_shift": p + "source_shift", "source_affine": p + "source_affine",
                                "driving_shift": p + "frame_shift", "driving_affine": p + "frame_affine",
                                **{k: p + f"driving_{k}" for k in K}}
            moved = {k: p + f"driving_{k}" for k in K}
        if self.use_bg_motion:
            out[f"bg_motion@b{b}"] = {"source": p + "source", "driving": p + "driving", "bg_params": p + "bg_params"}
        dm = {"source": p + "source", **{f"source_{k}": p + f"source_{k}" for k in K},
              **{f"driving_{k}": moved[k] for k in K}, "optical_flow": p + "optical_flow",
              "occlusion_map": p + "occlusion_map"}
        if self.has_bg_motion:
            dm["bg_params"] = p + "bg_params"
        out[f"dense_motion@b{b}"] = dm
        out[f"generator@b{b}"] = {"source": p + "source", **{f: p + f for f in self.features},
                                  "optical_flow": p + "optical_flow", "occlusion_map": p + "occlusion_map",
                                  "prediction": p + "prediction"}
        return out

    def _step(self, name: str, bindings: Mapping[str, str]) -> Step:
        ins = {s.name for s in self.stages[name].inputs}
        return Step(name, {t: s for t, s in bindings.items() if t in ins},
                    {t: s for t, s in bindings.items() if t not in ins})

    # -- sources ------------------------------------------------------------------------------------

    def encode(self, source: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The per-source stages on the device: ``(region params, features)`` as host arrays."""
        plan = Plan("encode", (
            Step("region_predictor@b1", {"image": "enc/source"}, {k: f"enc/source_{k}" for k in K}),
            Step("generator_encoder@b1", {"source": "enc/source"}, {f: f"enc/{f}" for f in self.features}),
        ), feeds=("enc/source",),
            fetches=tuple(f"enc/source_{k}" for k in K) + tuple(f"enc/{f}" for f in self.features))
        out = self.pipe.run(plan, {"enc/source": source})
        return {k: out[f"enc/source_{k}"] for k in K}, {f: out[f"enc/{f}"] for f in self.features}

    def attach(self, st: StreamState) -> None:
        """Give a stream its device slots and write its source (and reference) there."""
        prefix = f"s{self._next}/"
        self._next += 1
        self.pipe.add_slots({prefix + n: _spec(prefix + n, s) for n, s in self.stream_specs.items()})
        self.prefixes[id(st)] = prefix
        self.write_source(st)

    def detach(self, st: StreamState) -> None:
        prefix = self.prefixes.pop(id(st), None)
        if prefix is not None:
            self.pipe.drop_slots(prefix + n for n in self.stream_specs)
            self.versions.pop(prefix, None)
            self.ref_versions.pop(prefix, None)
            self.rows = {k: v for k, v in self.rows.items() if v[0] != prefix}

    def write_source(self, st: StreamState) -> None:
        """The stream's source tensors (and, with a reference, its scale) into its slots: once per source, one sync."""
        prefix, src = self.prefixes[id(st)], st.source
        self.versions[prefix] = self.versions.get(prefix, 0) + 1
        arrays = {prefix + "source": src.image, **{prefix + f"source_{k}": src.params[k] for k in K},
                  **{prefix + f: src.features[f] for f in self.features}}
        if self.mode == "relative" and st.initial is not None:
            st.scale = regions.relative_scale(src.params, st.initial)
            arrays[prefix + "scale"] = np.array([st.scale], np.float32)
            self.ref_versions[prefix] = self.ref_versions.get(prefix, 0) + 1
        self.pipe.write_many(arrays)

    # -- chunks -------------------------------------------------------------------------------------

    def run_chunk(self, items: list[tuple[StreamState, str, np.ndarray]], exit: str) -> list[np.ndarray]:
        """One chunk: ``(stream, entry, array)`` per position, entry ``frame_u8`` ((1, S, S, 3) uint8) or
        ``driving`` ((1, 3, S, S) float32); ``exit`` ``result_u8`` or ``prediction``. One sync (two
        when a stream takes its relative reference)."""
        b = len(items)
        p = f"b{b}/"
        steps: list[Step] = []
        feeds: dict[str, np.ndarray] = {}
        row = {name: _nbytes(self.specs[f"p0/{name}"]) for name in ("driving", "prediction")}
        prefixes = [self.prefixes[id(st)] for st, _, _ in items]
        gathers = self._gathers(items, prefixes, b)
        for i, (st, entry, array) in enumerate(items):
            feeds[f"p{i}/{entry}"] = array
            if entry == "frame_u8":
                steps.append(Step("preprocess", {"frame": f"p{i}/frame_u8", "channel_order": "channel_order"},
                                  {"image": f"p{i}/driving"}))
            steps.append(copy_step(f"p{i}/driving", p + "driving", 0, i * row["driving"], row["driving"]))
        bind = self._batch_bindings(b)
        steps.append(self._step(f"region_predictor@b{b}", bind[f"region_predictor@b{b}"]))
        if self.use_bg_motion:
            steps.append(self._step(f"bg_motion@b{b}", bind[f"bg_motion@b{b}"]))
        if self.mode == "avd":
            steps.append(self._step(f"avd@b{b}", bind[f"avd@b{b}"]))
        elif self.mode == "relative":
            if any(st.initial is None for st, _, _ in items):
                steps.append(self._reference_step(items, b))
            for i in range(b):
                for k in ("shift", "affine"):
                    n = _nbytes(self.specs[f"p{i}/frame_{k}"])
                    steps.append(copy_step(p + f"frame_{k}", f"p{i}/frame_{k}", i * n, 0, n))
                steps.append(Step("relative", {
                    "driving_shift": f"p{i}/frame_shift", "driving_affine": f"p{i}/frame_affine",
                    **{name: f"p{i}/{name}" for name in RELATIVE_INPUTS}},
                    {"shift": f"p{i}/driving_shift", "affine": f"p{i}/driving_affine"}))
                for k in ("shift", "affine"):
                    n = _nbytes(self.specs[f"p{i}/driving_{k}"])
                    steps.append(copy_step(f"p{i}/driving_{k}", p + f"driving_{k}", 0, i * n, n))
        steps.append(self._step(f"dense_motion@b{b}", bind[f"dense_motion@b{b}"]))
        steps.append(self._step(f"generator@b{b}", bind[f"generator@b{b}"]))
        for i in range(b):
            steps.append(copy_step(p + "prediction", f"p{i}/prediction", i * row["prediction"], 0, row["prediction"]))
            if exit == "result_u8":
                steps.append(Step("postprocess", {"prediction": f"p{i}/prediction", "channel_order": "channel_order"},
                                  {"frame": f"p{i}/result_u8"}))
        fetches = tuple(f"p{i}/{exit}" for i in range(b))
        for i in range(b):
            for key in ((b, i), ("source", i), ("reference", i)):
                self.rows.pop(key, None)  # unknown until the chunk has run
        for src, dst, at, to, n in gathers:
            self.pipe.copy(src, dst, at, to, n)  # plainly, before the plan: they name a stream's own slots
        out = self.pipe.run(Plan(f"chunk@b{b}", tuple(steps), tuple(feeds), fetches), feeds)
        for i, pre in enumerate(prefixes):
            self.rows[(b, i)] = (pre, self.versions[pre])
            if self.mode == "relative":
                self.rows[("source", i)] = (pre, self.versions[pre])
                self.rows[("reference", i)] = (pre, self.ref_versions.get(pre, 0))
        return [out[f] for f in fetches]

    def _gathers(self, items: list[tuple[StreamState, str, np.ndarray]], prefixes: list[str],
                 b: int) -> list[tuple[str, str, int, int, int]]:
        """The copies of streams' own tensors into their positions that this chunk needs:
        ``(source slot, destination slot, source offset, destination offset, bytes)``."""
        p = f"b{b}/"
        out = []
        for i, ((st, _, _), pre) in enumerate(zip(items, prefixes)):
            source = (pre, self.versions[pre])
            if self.rows.get((b, i)) != source:  # this row of the batched tensors holds another source
                for name in ("source", *(f"source_{k}" for k in K), *self.features):
                    n = _nbytes(self.stream_specs[name])
                    out.append((pre + name, p + name, 0, i * n, n))
            if self.mode != "relative":
                continue
            if self.rows.get(("source", i)) != source:
                for name in ("source_shift", "source_affine"):
                    out.append((pre + name, f"p{i}/{name}", 0, 0, -1))
            # (a stream that takes its reference in this chunk gets it from the host step instead)
            reference = (pre, self.ref_versions.get(pre, 0))
            if st.initial is not None and self.rows.get(("reference", i)) != reference:
                for name in ("initial_shift", "initial_affine", "scale"):
                    out.append((pre + name, f"p{i}/{name}", 0, 0, -1))
        return out

    def _reference_step(self, items: list[tuple[StreamState, str, np.ndarray]], b: int) -> Step:
        """Host step: streams without a reference take this frame's region params (and their scale).

        A stream at several positions (a clip's frames) takes its reference from its first position;
        every position of it then reads that reference.
        """
        p = f"b{b}/"
        takers = {id(st) for st, _, _ in items if st.initial is None}
        outputs = {}
        for i, (st, _, _) in enumerate(items):
            if id(st) in takers:
                pre = self.prefixes[id(st)]
                for name in ("initial_shift", "initial_affine", "scale"):
                    outputs[pre + name] = pre + name
                    outputs[f"p{i}/{name}"] = f"p{i}/{name}"

        def take(slots: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            out: dict[str, np.ndarray] = {}
            for i, (st, _, _) in enumerate(items):
                if id(st) not in takers:
                    continue
                pre = self.prefixes[id(st)]
                if st.initial is None:  # its first position in the chunk: the reference frame
                    st.initial = {k: np.array(slots[p + f"frame_{k}"][i:i + 1]) for k in K}
                    st.scale = regions.relative_scale(st.source.params, st.initial)
                    self.ref_versions[pre] = self.ref_versions.get(pre, 0) + 1
                    out.update({pre + "initial_shift": st.initial["shift"],
                                pre + "initial_affine": st.initial["affine"],
                                pre + "scale": np.array([st.scale], np.float32)})
                out.update({f"p{i}/initial_shift": out[pre + "initial_shift"],
                            f"p{i}/initial_affine": out[pre + "initial_affine"], f"p{i}/scale": out[pre + "scale"]})
            return out

        return Step("reference", {p + f"frame_{k}": p + f"frame_{k}" for k in K}, outputs, host=take)

    def close(self) -> None:
        pipe, self.pipe = self.pipe, None
        if pipe is not None:
            pipe.close()

