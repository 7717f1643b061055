"""Graph hygiene for TensorRT: what every exported graph must satisfy before it is written.

* opset of the default domain in 16–19 (GridSample needs 16; 20 renames its modes and TensorRT
  then samples nearest, NVIDIA/TensorRT#4646), and no other domain (no custom ops, no plugins);
* every op in :file:`trt103_ops.json` (what TensorRT 10.3, JetPack 6's version, parses natively;
  the file cites its sources) and none of :data:`FORBIDDEN_OPS`;
* every GridSample bilinear, zero padding, 4-D, with the model's ``align_corners``; every Resize
  in a mode TensorRT implements;
* static shapes everywhere (graph I/O and every inferred intermediate), shape-like inputs
  (Conv weights, axes) constant;
* graph inputs/outputs exactly the stage table's names, shapes and float32;
* ``onnx.checker`` with full shape/type inference;
* Q/DQ (INT8 graphs, :func:`qdq_problems`) as TensorRT's explicit quantization takes them:
  symmetric INT8 (INT8 zero points, all 0), constant positive scales, per-channel scales only on
  weights (axis 0, one per output channel of the Conv they feed), per-tensor activations.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jamsdk._lazy import require
from jamsdk.errors import EngineError
from jamsdk.stages import Stage

if TYPE_CHECKING:
    import onnx

ALLOWLIST_PATH = Path(__file__).with_name("trt103_ops.json")
OPSET_RANGE = (16, 19)
FORBIDDEN_OPS = {
    "Loop": "control flow (jamsdk graphs are straight-line)",
    "Scan": "control flow (jamsdk graphs are straight-line)",
    "If": "control flow (jamsdk graphs are straight-line)",
    "Inverse": "matrix inverse (only com.microsoft has it; use jamsdk.model.linalg2x2.inverse)",
    "Det": "determinant (not in TensorRT)",
    "Einsum": "einsum (restricted in TensorRT 10.3; write the products out)",
}
RESIZE_MODES = {"nearest", "linear"}
RESIZE_TRANSFORMS = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
RESIZE_NEAREST = {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"}
# (op, input index) that TensorRT needs as build-time constants.
CONSTANT_INPUTS = {("Conv", 1), ("Slice", 1), ("Slice", 2), ("Slice", 3), ("Slice", 4), ("Squeeze", 1),
                   ("Unsqueeze", 1), ("Reshape", 1), ("Expand", 1), ("Tile", 1), ("Pad", 1), ("Resize", 2),
                   ("Resize", 3), ("ReduceSum", 1), ("ReduceMean", 1), ("ReduceMax", 1), ("ReduceMin", 1)}


@lru_cache(maxsize=1)
def trt_ops() -> frozenset[str]:
    """Op types TensorRT 10.3 imports natively (from :file:`trt103_ops.json`)."""
    with open(ALLOWLIST_PATH, encoding="utf-8") as fh:
        return frozenset(json.load(fh)["ops"])


def skeleton(proto: "onnx.ModelProto", max_elements: int = 64) -> "onnx.ModelProto":
    """A copy whose large float initializers are graph inputs of the same type and shape.

    Type/shape inference and the checker only need the weights' shapes, and serialising 150 MB of
    weights for each check cost seconds per graph; small initializers (shapes, axes, scales) keep
    their values because inference reads them.
    """
    from onnx import TensorProto, helper

    out = type(proto)()
    out.CopyFrom(proto)
    keep, moved = [], []
    for t in out.graph.initializer:
        n = 1
        for d in t.dims:
            n *= d
        if t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16) and n > max_elements:
            moved.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
        else:
            keep.append(t)
    del out.graph.initializer[:]
    out.graph.initializer.extend(keep)
    out.graph.input.extend(moved)
    return out


def _attrs(node: "onnx.NodeProto") -> dict[str, Any]:
    from onnx import helper

    out = {}
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        out[a.name] = value.decode() if isinstance(value, bytes) else value
    return out


def graph_problems(proto: "onnx.ModelProto", stage: Stage, align_corners: bool,
                   opset: int | None = None, qdq_rules: bool = True) -> list[str]:
    """Every hygiene rule ``proto`` (a graph of ``stage``) breaks, as readable lines; empty when clean.

    ``qdq_rules=False`` skips TensorRT's Q/DQ rules (:func:`qdq_problems`), for ONNX Runtime's own
    INT8 form (``<stage>.int8-u8s8.onnx``), which TensorRT never gets.
    """
    require("onnx")  # a clear MissingDependencyError before the import below
    from onnx import TensorProto

    problems: list[str] = []
    graph = proto.graph

    versions = {o.domain: o.version for o in proto.opset_import}
    default = versions.get("", versions.get("ai.onnx"))
    if default is None:
        problems.append("no default-domain opset_import")
    elif not OPSET_RANGE[0] <= default <= OPSET_RANGE[1]:
        problems.append(f"opset {default} outside {OPSET_RANGE[0]}–{OPSET_RANGE[1]}")
    elif opset is not None and default != opset:
        problems.append(f"opset {default}, expected {opset}")
    others = sorted(d for d in versions if d not in ("", "ai.onnx"))
    if others:
        problems.append(f"custom opset domains {others}")
    if proto.functions:
        problems.append(f"local functions {[f.name for f in proto.functions]}")

    allowed = trt_ops()
    constants = {t.name for t in graph.initializer}
    constants |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    # A dequantized constant (INT8 weights) is a build-time constant for TensorRT too.
    constants |= {o for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in constants
                  for o in n.output}
    for node in graph.node:
        where = f"{node.op_type} node {node.name or '(unnamed)'}"
        if node.domain not in ("", "ai.onnx"):
            problems.append(f"{where}: custom domain {node.domain!r}")
            continue
        if node.op_type in FORBIDDEN_OPS:
            problems.append(f"{where}: forbidden — {FORBIDDEN_OPS[node.op_type]}")
        elif node.op_type not in allowed:
            problems.append(f"{where}: not supported natively by TensorRT 10.3")
        attrs = _attrs(node)
        if node.op_type == "GridSample":
            if attrs.get("mode", "bilinear") != "bilinear":
                problems.append(f"{where}: mode {attrs.get('mode')!r}, expected 'bilinear'")
            if attrs.get("padding_mode", "zeros") != "zeros":
                problems.append(f"{where}: padding_mode {attrs.get('padding_mode')!r}, expected 'zeros'")
            if bool(attrs.get("align_corners", 0)) != align_corners:
                problems.append(f"{where}: align_corners {attrs.get('align_corners', 0)}, "
                                f"the model uses {int(align_corners)}")
        if node.op_type == "Resize":
            if attrs.get("mode", "nearest") not in RESIZE_MODES:
                problems.append(f"{where}: mode {attrs.get('mode')!r} not in {sorted(RESIZE_MODES)}")
            if attrs.get("coordinate_transformation_mode", "half_pixel") not in RESIZE_TRANSFORMS:
                problems.append(f"{where}: coordinate_transformation_mode "
                                f"{attrs.get('coordinate_transformation_mode')!r} not supported")
            if attrs.get("mode", "nearest") == "nearest" and \
                    attrs.get("nearest_mode", "round_prefer_floor") not in RESIZE_NEAREST:
                problems.append(f"{where}: nearest_mode {attrs.get('nearest_mode')!r} not supported")
            if attrs.get("antialias", 0):
                problems.append(f"{where}: antialias is not supported")
        for i, name in enumerate(node.input):
            if name and (node.op_type, i) in CONSTANT_INPUTS and name not in constants:
                problems.append(f"{where}: input {i} ({name}) must be a constant")

    if qdq_rules and any(n.op_type in QDQ_OPS for n in graph.node):
        problems += qdq_problems(proto)

    # Graph I/O: exactly the stage table.
    def io(values) -> list[tuple[str, tuple, int]]:
        out = []
        for v in values:
            dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                         for d in v.type.tensor_type.shape.dim)
            out.append((v.name, dims, v.type.tensor_type.elem_type))
        return out

    for label, got, want in (("inputs", io(graph.input), stage.inputs), ("outputs", io(graph.output), stage.outputs)):
        expected = [(s.name, tuple(s.shape), TensorProto.FLOAT) for s in want]
        if got != expected:
            problems.append(f"graph {label} {_fmt(got)} differ from the stage table {_fmt(expected)}")

    # Full check, then static shapes for every intermediate.
    try:
        inferred = checked_inference(proto)
    except Exception as exc:  # noqa: BLE001 - several onnx error types
        problems.append(f"onnx checker: {type(exc).__name__}: {exc}")
        return problems
    dynamic = []
    for v in inferred.graph.value_info:
        t = v.type.tensor_type
        if not t.HasField("shape") or any(not d.HasField("dim_value") for d in t.shape.dim):
            dynamic.append(v.name)
    produced = {o for n in graph.node for o in n.output}
    typed = {v.name for v in inferred.graph.value_info} | {o.name for o in graph.output}
    untyped = sorted(produced - typed)
    if dynamic:
        problems.append(f"{len(dynamic)} tensors without a static shape, e.g. {dynamic[:3]}")
    if untyped:
        problems.append(f"{len(untyped)} tensors shape inference could not type, e.g. {untyped[:3]}")
    return problems


QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def qdq_problems(proto: "onnx.ModelProto") -> list[str]:
    """Every Q/DQ node that breaks TensorRT's explicit-quantization rules, as readable lines.

    TensorRT quantizes symmetrically to signed INT8 (zero point 0), with per-tensor scales on
    activations and per-channel scales on weights along the output-channel axis; scales must be
    build-time constants. INT32 biases (ONNX Runtime's default) are not INT8 and are refused.
    """
    from onnx import TensorProto, numpy_helper

    graph = proto.graph
    values = {t.name: t for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    values[n.output[0]] = a.t
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i, name in enumerate(n.input):
            consumers.setdefault(name, []).append((n, i))
    problems = []
    for node in graph.node:
        if node.op_type not in QDQ_OPS:
            continue
        where = f"{node.op_type} node {node.name or '(unnamed)'}"
        scale = values.get(node.input[1]) if len(node.input) > 1 else None
        zero = values.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if scale is None:
            problems.append(f"{where}: scale must be a constant")
            continue
        s = numpy_helper.to_array(scale)
        if scale.data_type != TensorProto.FLOAT or not (np.isfinite(s).all() and (s > 0).all()):
            problems.append(f"{where}: scale must be positive finite float32")
        if zero is None:
            problems.append(f"{where}: no constant zero point (TensorRT needs an INT8 zero point of 0)")
        elif zero.data_type != TensorProto.INT8:
            problems.append(f"{where}: zero point type {TensorProto.DataType.Name(zero.data_type)}, "
                            "TensorRT takes symmetric INT8 only")
        elif numpy_helper.to_array(zero).any():
            problems.append(f"{where}: zero point not 0 (asymmetric; TensorRT is symmetric only)")
        if node.op_type == "DequantizeLinear" and node.input[0] in values \
                and values[node.input[0]].data_type != TensorProto.INT8:
            dtype = TensorProto.DataType.Name(values[node.input[0]].data_type)
            problems.append(f"{where}: dequantizes a {dtype} constant (TensorRT dequantizes INT8)")
        if s.size <= 1:
            continue
        # Per-channel: only constant weights of a Conv, on the output-channel axis.
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        weight = values.get(node.input[0])
        users = consumers.get(node.output[0], [])
        if node.op_type != "DequantizeLinear" or weight is None:
            problems.append(f"{where}: per-channel scales on an activation (TensorRT: per-tensor only)")
        elif axis != 0 or not users or any(u.op_type != "Conv" or i != 1 for u, i in users):
            problems.append(f"{where}: per-channel weights must feed a Conv's weight input on axis 0, got axis {axis}")
        elif s.shape != (weight.dims[0],):
            problems.append(f"{where}: {s.size} scales for {weight.dims[0]} output channels")
    return problems


def checked_inference(proto: "onnx.ModelProto") -> "onnx.ModelProto":
    """``onnx.checker`` (full) and strict shape inference on the :func:`skeleton`; returns the inferred skeleton."""
    onnx = require("onnx")
    light = skeleton(proto)
    onnx.checker.check_model(light, full_check=True)
    return onnx.shape_inference.infer_shapes(light, strict_mode=True)


def check_graph(proto: "onnx.ModelProto", stage: Stage, align_corners: bool, opset: int | None = None,
                label: str = "", qdq_rules: bool = True) -> None:
    """Raise :class:`EngineError` listing every hygiene problem of ``proto`` (see :func:`graph_problems`)."""
    problems = graph_problems(proto, stage, align_corners, opset, qdq_rules)
    if problems:
        more = f" (+{len(problems) - 10} more)" if len(problems) > 10 else ""
        raise EngineError(f"{label or stage.name}: the exported graph is not TensorRT-clean: "
                          + "; ".join(problems[:10]) + more)


def op_counts(proto: "onnx.ModelProto") -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in proto.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))


def _fmt(items: list[tuple[str, tuple, int]]) -> str:
    return "[" + ", ".join(f"{n}{list(s)}:{t}" for n, s, t in items) + "]"
