"""Exact graph rewrites: the narrow final convolution as a space-to-depth convolution."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from jamsdk.export.rewrite import narrow_convs_to_space_to_depth, space_to_depth_weights
from jamsdk.manifest import load_manifest

RNG = np.random.default_rng(3)


def conv_graph(k=7, cin=8, size=16, cout=3, bias=True, act="Sigmoid", stride=1, pads=None):
    w = (RNG.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)  # unit-scale outputs
    inits = [numpy_helper.from_array(w, "W")]
    if bias:
        inits.append(numpy_helper.from_array(RNG.standard_normal(cout).astype(np.float32), "B"))
    out = (size - 1) // stride + 1
    nodes = [helper.make_node("Conv", ["x", "W"] + (["B"] if bias else []), ["c" if act else "y"], name="/final/Conv",
                              kernel_shape=[k, k], pads=pads or [k // 2] * 4, strides=[stride, stride])]
    if act:
        nodes.append(helper.make_node(act, ["c"], ["y"], name="/act"))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, size, size])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, out, out])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def run(model, x):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


@pytest.mark.parametrize("k,cin,size,cout,bias,act", [(7, 8, 16, 3, True, "Sigmoid"), (5, 4, 12, 2, False, None),
                                                      (9, 6, 20, 4, True, "Relu"), (7, 64, 32, 3, True, "Sigmoid")])
def test_rewrite_keeps_the_math(k, cin, size, cout, bias, act):
    model = conv_graph(k, cin, size, cout, bias, act)
    new, done = narrow_convs_to_space_to_depth(model)
    onnx.checker.check_model(new)
    assert done == ["/final/Conv"]
    ops = [n.op_type for n in new.graph.node]
    assert ops[:3] == ["Pad", "SpaceToDepth", "Conv"] and ops[-1] == "DepthToSpace"
    if act:
        assert ops[3] == act  # moved before the pixel shuffle, next to its Conv
    conv = next(n for n in new.graph.node if n.op_type == "Conv")
    w = numpy_helper.to_array(next(t for t in new.graph.initializer if t.name == conv.input[1]))
    assert w.shape == (4 * cout, 4 * cin, (k + 1) // 2, (k + 1) // 2)
    x = RNG.standard_normal((1, cin, size, size)).astype(np.float32)
    want, got = run(model, x), run(new, x)
    assert np.abs(got - want).max() <= 1e-5 * max(1.0, float(np.abs(want).max()))
    assert len(model.graph.node) == (2 if act else 1)  # the input graph is untouched


@pytest.mark.parametrize("change", [dict(cout=5), dict(k=3), dict(stride=2), dict(size=15),
                                    dict(pads=[2, 2, 2, 2])])
def test_convs_that_do_not_fit_are_left_alone(change):
    model = conv_graph(**change)
    new, done = narrow_convs_to_space_to_depth(model)
    assert done == [] and [n.op_type for n in new.graph.node] == [n.op_type for n in model.graph.node]


def test_weights_land_on_the_taps_they_multiply():
    w = np.arange(1 * 1 * 3 * 3, dtype=np.float32).reshape(1, 1, 3, 3) + 1
    new = space_to_depth_weights(w)
    # output phase (a, b) = (0, 0), input phase (p, q) = (0, 0): taps u = 2m, v = 2n
    assert new.shape == (4, 4, 2, 2)
    np.testing.assert_array_equal(new[0, 0], [[w[0, 0, 0, 0], w[0, 0, 0, 2]], [w[0, 0, 2, 0], w[0, 0, 2, 2]]])
    assert (new != 0).sum() == 4 * 9  # each of the 4 output phases uses each of the 9 weights once


def test_exported_fp32_generator_is_rewritten_and_verified(exported):
    """The ``exported`` folders were written with --verify: their FP32 graphs matched PyTorch at 1e-4."""
    m = load_manifest(exported.out)
    info = m.data["export"]
    assert info["fp32_rewrites"]["space_to_depth_convs"] == {"generator": ["/final/Conv"]}
    ops = {n.op_type for n in onnx.load(m.stage_file("dense_motion", "fp32")).graph.node}
    assert "SpaceToDepth" not in ops  # its occlusion head fits, but the rewrite did not pay there
    assert info["verify"] is not None
    ops = {n.op_type for n in onnx.load(m.stage_file("generator", "fp32")).graph.node}
    assert {"SpaceToDepth", "DepthToSpace"} <= ops
    ops16 = {n.op_type for n in onnx.load(m.stage_file("generator", "fp16")).graph.node}
    assert "SpaceToDepth" not in ops16  # the FP16 graph (TensorRT's) keeps the convolution as exported
