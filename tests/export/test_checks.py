"""Hygiene rules on hand-built graphs (each rule must catch what it is for) and the FP16 converter."""

from __future__ import annotations

import json
import re

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import jamsdk.export.fp16 as fp16
from jamsdk.errors import EngineError
from jamsdk.export.checks import ALLOWLIST_PATH, check_graph, graph_problems, trt_ops
from jamsdk.export.fp16 import to_mixed_fp16
from jamsdk.stages import Stage, TensorSpec

STAGE = Stage("warp", "frame", (TensorSpec("x", (1, 2, 4, 4)), TensorSpec("grid", (1, 4, 4, 2))),
              (TensorSpec("y", (1, 2, 4, 4)),))


def warp_graph(mode="bilinear", align_corners=0, opset=17, x_dims=(1, 2, 4, 4), extra_nodes=(), domain_opsets=()):
    node = helper.make_node("GridSample", ["x", "grid"], ["y"], mode=mode, padding_mode="zeros",
                            align_corners=align_corners, name="/GridSample")
    graph = helper.make_graph([node, *extra_nodes], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_dims)),
                               helper.make_tensor_value_info("grid", TensorProto.FLOAT, [1, 4, 4, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])])
    opsets = [helper.make_opsetid("", opset), *[helper.make_opsetid(d, v) for d, v in domain_opsets]]
    return helper.make_model(graph, opset_imports=opsets)


def test_clean_graph_passes():
    assert graph_problems(warp_graph(), STAGE, align_corners=False, opset=17) == []


@pytest.mark.parametrize("kwargs, match", [
    ({"mode": "nearest"}, "mode 'nearest', expected 'bilinear'"),
    ({"align_corners": 1}, "align_corners 1, the model uses 0"),
    ({"opset": 15}, "opset 15 outside 16–19"),
    ({"x_dims": ("B", 2, 4, 4)}, "graph inputs .* differ from the stage table"),
])
def test_rule_violations_are_reported(kwargs, match):
    dims = kwargs.pop("x_dims", (1, 2, 4, 4))
    problems = graph_problems(warp_graph(x_dims=dims, **kwargs), STAGE, align_corners=False)
    assert any(re.search(match, p) for p in problems), problems


def test_opset_20_grid_sample_modes_are_refused():
    # GridSample-20 spells bilinear "linear", which TensorRT's importer reads as nearest.
    problems = graph_problems(warp_graph(mode="linear", opset=20), STAGE, align_corners=False)
    assert any("opset 20" in p for p in problems) and any("mode 'linear'" in p for p in problems)


def test_forbidden_custom_and_unsupported_ops():
    extra = [
        helper.make_node("Inverse", ["grid"], ["inv"], domain="com.microsoft", name="inv"),
        helper.make_node("Unique", ["x"], ["u"], name="uniq"),
        helper.make_node("Einsum", ["x", "x"], ["e"], equation="ij,ij->ij", name="ein"),
    ]
    model = warp_graph(extra_nodes=extra, domain_opsets=[("com.microsoft", 1)])
    problems = " | ".join(graph_problems(model, STAGE, align_corners=False))
    assert "custom opset domains ['com.microsoft']" in problems
    assert "Inverse node inv: custom domain 'com.microsoft'" in problems
    assert "Unique node uniq: not supported natively by TensorRT 10.3" in problems
    assert "Einsum node ein: forbidden" in problems
    with pytest.raises(EngineError, match="not TensorRT-clean"):
        check_graph(model, STAGE, align_corners=False)


def test_loop_is_refused():
    body = helper.make_graph([helper.make_node("Identity", ["c"], ["c_out"])], "body",
                             [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                              helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                             [helper.make_tensor_value_info("c_out", TensorProto.BOOL, [])])
    loop = helper.make_node("Loop", ["", "cond"], [], body=body, name="loop")
    model = warp_graph(extra_nodes=[helper.make_node("Constant", [], ["cond"], name="c",
                                                     value=numpy_helper.from_array(np.array(True))), loop])
    assert any("Loop node loop: forbidden" in p for p in graph_problems(model, STAGE, align_corners=False))


def test_allowlist_file_cites_its_sources_and_covers_the_model_ops():
    data = json.loads(ALLOWLIST_PATH.read_text())
    assert data["tensorrt"] == "10.3" and any("onnx-tensorrt" in s for s in data["sources"])
    ops = trt_ops()
    assert {"Conv", "GridSample", "Resize", "Softmax", "BatchNormalization", "Cast", "Where", "Sign"} <= ops
    assert not {"Inverse", "Det", "Unique", "NonMaxSuppressionX"} & ops


def _body_graph():
    """conv (body) → softmax (island) with an FP16 scope name, like the exporter's graphs."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((3, 2, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="/body/conv/Conv"),
             helper.make_node("Relu", ["c"], ["r"], name="/body/Relu"),
             helper.make_node("Softmax", ["r"], ["y"], axis=1, name="/Softmax")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_fp16_converter_keeps_islands_fp32(monkeypatch):
    monkeypatch.setitem(fp16.FP16_BODIES, "toy", ("/body/",))
    full = _body_graph()
    half = to_mixed_fp16(full, "toy")
    inits = {t.name: t.data_type for t in half.graph.initializer}
    assert list(inits.values()) == [TensorProto.FLOAT16]
    ops = [n.op_type for n in half.graph.node]
    assert ops == ["Cast", "Conv", "Relu", "Cast", "Softmax"]  # cast in, FP16 body, cast out, FP32 softmax
    assert [n.attribute[0].i for n in half.graph.node if n.op_type == "Cast"] == [TensorProto.FLOAT16,
                                                                                  TensorProto.FLOAT]
    assert half.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert half.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    x = np.random.default_rng(1).random((1, 2, 4, 4), dtype=np.float32)
    a = ort.InferenceSession(full.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    b = ort.InferenceSession(half.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert b.dtype == np.float32 and np.abs(a - b).max() < 5e-3


def test_fp16_converter_refuses_when_no_body_node_matches():
    with pytest.raises(EngineError, match="no node matched the FP16 body"):
        to_mixed_fp16(_body_graph(), "generator")


def test_fp16_graph_output_from_body_keeps_its_name_and_float32(monkeypatch):
    monkeypatch.setitem(fp16.FP16_BODIES, "toy", ("/body/",))
    model = _body_graph()
    del model.graph.node[1:]  # the body conv writes the graph output itself
    model.graph.node[0].output[0] = "y"
    half = to_mixed_fp16(model, "toy")
    assert [o.name for o in half.graph.output] == ["y"]
    assert half.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    last = half.graph.node[-1]
    assert last.op_type == "Cast" and list(last.output) == ["y"] and last.attribute[0].i == TensorProto.FLOAT
