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
    assert info["fp32_rewrites"]["space_to_depth_convs"] == {"generator": ["/final/Conv"],
                                                             "dense_motion": ["/dense_motion/occlusion/Conv"]}
    # the anti-alias blurs of the region predictor and dense motion are computed only where kept
    assert info["fp32_rewrites"]["strided_convs"] == {"region_predictor": ["/region_predictor/down/Conv"],
                                                      "dense_motion": ["/dense_motion/down/Conv"]}
    for stage in ("region_predictor", "dense_motion"):
        down = [n for n in onnx.load(m.stage_file(stage, "fp32")).graph.node if n.name == f"/{stage}/down/Conv"][0]
        assert [a.ints for a in down.attribute if a.name == "strides"] == [[4, 4]]
    # every up block (nearest ×2, 3×3 conv) of the hourglasses and the generator runs on its input
    subpixel = info["fp32_rewrites"]["subpixel_convs"]
    assert sorted(subpixel) == ["dense_motion", "generator", "region_predictor"]
    for stage, names in subpixel.items():
        graph = onnx.load(m.stage_file(stage, "fp32")).graph
        assert names and all("up_blocks" in n for n in names)
        assert not any(n.op_type == "Resize" and "up_blocks" in n.name for n in graph.node)
    assert info["verify"] is not None
    ops = {n.op_type for n in onnx.load(m.stage_file("generator", "fp32")).graph.node}
    assert {"SpaceToDepth", "DepthToSpace"} <= ops
    ops16 = {n.op_type for n in onnx.load(m.stage_file("generator", "fp16")).graph.node}
    assert "SpaceToDepth" not in ops16  # the FP16 graph (TensorRT's) keeps the convolution as exported


# -- a convolution whose output is only subsampled: computed where kept (stride) --------------------

def _blur_graph(starts=(0, 0), steps=(4, 4), axes=(2, 3), ends=(2**63 - 1, 2**63 - 1), second_reader=False):
    w = np.full((3, 1, 5, 5), 1 / 25, np.float32)
    f = lambda name, v: numpy_helper.from_array(np.asarray(v, np.int64), name)  # noqa: E731
    inits = [numpy_helper.from_array(w, "W"), f("st", starts), f("en", ends), f("ax", axes), f("sp", steps)]
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], name="/down/Conv", group=3, kernel_shape=[5, 5],
                              pads=[2, 2, 2, 2]),
             helper.make_node("Slice", ["c", "st", "en", "ax", "sp"], ["y"], name="/Slice")]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if second_reader:
        nodes.append(helper.make_node("Relu", ["c"], ["r"], name="/relu"))
        outputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, None))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 18, 18])],
                          outputs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_subsampled_conv_becomes_strided_and_keeps_the_math():
    from jamsdk.export.rewrite import subsampled_convs_to_strided

    model = _blur_graph()
    new, done = subsampled_convs_to_strided(model)
    assert done == ["/down/Conv"] and [n.op_type for n in new.graph.node] == ["Conv"]
    assert [t.name for t in new.graph.initializer] == ["W"]  # the Slice's constants went with it
    x = RNG.random((1, 3, 18, 18), np.float32)
    want = run(model, x)
    assert want.shape == (1, 3, 5, 5)  # ceil(18 / 4): the strided conv gives the same count
    np.testing.assert_array_equal(run(new, x), want)  # the same sums in the same order
    assert [n.op_type for n in model.graph.node] == ["Conv", "Slice"]  # the input is untouched


@pytest.mark.parametrize("change", [dict(starts=(1, 0)), dict(steps=(4, 2)), dict(axes=(1, 2)),
                                    dict(ends=(16, 2**63 - 1)), dict(second_reader=True)])
def test_subsampling_that_is_not_a_stride_is_left_alone(change):
    """A slice from row 1, different steps, a channel axis, a cropped end, or the full output read elsewhere."""
    from jamsdk.export.rewrite import subsampled_convs_to_strided

    new, done = subsampled_convs_to_strided(_blur_graph(**change))
    assert done == [] and "Slice" in {n.op_type for n in new.graph.node}


# -- a 3×3 convolution of a nearest-upsampled input: 4 phase convolutions on the input ----------------

def _upconv_graph(mode="nearest", nearest_mode="floor", scales=(1, 1, 2, 2), kernel=3, pads=1, group=1,
                  second_reader=False, bias=True, scales_as_constant=False, cin=4, cout=6, size=5):
    w = RNG.standard_normal((cout, cin // group, kernel, kernel)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "W")] + ([numpy_helper.from_array(RNG.standard_normal(cout).astype(np.float32),
                                                                          "B")] if bias else [])
    scale_node = []
    if scales_as_constant:
        scale_node = [helper.make_node("Constant", [], ["sc"], name="/Constant",
                                       value=numpy_helper.from_array(np.asarray(scales, np.float32)))]
    else:
        inits.append(numpy_helper.from_array(np.asarray(scales, np.float32), "sc"))
    nodes = scale_node + [
        helper.make_node("Resize", ["x", "", "sc"], ["u"], name="/up/Resize", mode=mode,
                         coordinate_transformation_mode="asymmetric", nearest_mode=nearest_mode),
        helper.make_node("Conv", ["u", "W"] + (["B"] if bias else []), ["y"], name="/up/conv/Conv",
                         kernel_shape=[kernel, kernel], pads=[pads] * 4, group=group)]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if second_reader:
        nodes.append(helper.make_node("Relu", ["u"], ["r"], name="/relu"))
        outputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, None))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, cin, size, size + 2])],
                          outputs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("bias, constant", [(True, False), (False, True)])
def test_upsampled_conv_runs_on_the_input_with_the_same_math(bias, constant):
    from jamsdk.export.rewrite import upsampled_convs_to_subpixel

    model = _upconv_graph(bias=bias, scales_as_constant=constant)
    new, done = upsampled_convs_to_subpixel(model)
    assert done == ["/up/conv/Conv"]
    ops = [n.op_type for n in new.graph.node]
    assert ops == ["Conv"] * 4 + ["Concat", "DepthToSpace"]  # no Resize, and its scales are gone too
    assert {t.name for t in new.graph.initializer} == {f"{w}/phase{a}{b}" for w in ["W"] + (["B"] if bias else [])
                                                       for a in "01" for b in "01"}
    x = RNG.standard_normal((2, 4, 5, 7)).astype(np.float32)
    want = run(model, x)
    assert want.shape == (2, 6, 10, 14)
    np.testing.assert_allclose(run(new, x), want, rtol=0, atol=2e-5)  # weights summed first: last bits only


@pytest.mark.parametrize("change", [dict(mode="linear"), dict(nearest_mode="round_prefer_ceil"),
                                    dict(scales=(1, 1, 3, 3)), dict(scales=(1, 1, 2, 1)), dict(kernel=5, pads=2),
                                    dict(pads=0), dict(group=2), dict(second_reader=True)])
def test_upsampling_that_is_not_a_repeat_or_a_conv_that_does_not_fit_is_left_alone(change):
    """Bilinear or ceil-rounded upsampling, other scales, other kernels/pads/groups, the upsampled tensor read elsewhere."""
    from jamsdk.export.rewrite import upsampled_convs_to_subpixel

    new, done = upsampled_convs_to_subpixel(_upconv_graph(**change))
    assert done == [] and "Resize" in {n.op_type for n in new.graph.node}


# -- FP32 readers of a quantized tensor read the tensor (ONNX Runtime's U8S8 CPU graphs) -------------

def _qdq_graph():
    """x → Q/DQ → quantized Conv; the same DQ also read by an FP32 Concat; the Conv's output Q/DQ read by
    Relu and by a second quantized Conv."""
    f = lambda name, v: numpy_helper.from_array(np.asarray(v), name)  # noqa: E731
    w = RNG.integers(-100, 100, (4, 2, 1, 1)).astype(np.int8)
    inits = [f("s", np.float32(0.02)), f("z", np.uint8(128)), f("wq", w), f("ws", np.float32(0.01)),
             f("wz", np.int8(0)), f("s2", np.float32(0.05))]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="xq"),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="xd"),
             helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], name="wd"),
             helper.make_node("Conv", ["xd", "wd"], ["c"], name="/conv/Conv"),
             helper.make_node("QuantizeLinear", ["c", "s2", "z"], ["cq"], name="cq"),
             helper.make_node("DequantizeLinear", ["cq", "s2", "z"], ["cd"], name="cd"),
             helper.make_node("Relu", ["cd"], ["r"], name="/relu"),
             helper.make_node("DequantizeLinear", ["wq2", "ws", "wz"], ["wd2"], name="wd2"),
             helper.make_node("Conv", ["cd", "wd2"], ["c2"], name="/conv2/Conv"),
             helper.make_node("Concat", ["r", "xd", "c2"], ["y"], name="/concat", axis=1)]
    inits.append(f("wq2", RNG.integers(-100, 100, (2, 4, 1, 1)).astype(np.int8)))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 4, 4])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_float_readers_of_a_quantized_tensor_read_the_tensor():
    from jamsdk.export.rewrite import float_readers_skip_qdq

    model = _qdq_graph()
    new, count = float_readers_skip_qdq(model)
    nodes = {n.name: n for n in new.graph.node}
    assert count == 1 and list(nodes["/concat"].input) == ["r", "x", "c2"]  # the FP32 reader takes the FP32 tensor
    assert list(nodes["/conv/Conv"].input)[0] == "xd"  # the quantized conv still reads the pair
    # the neighbour: a quantized conv's output pair read by an FP32 Relu and a quantized conv stays
    assert list(nodes["/relu"].input) == ["cd"] and list(nodes["/conv2/Conv"].input)[0] == "cd"
    assert [n.input for n in model.graph.node if n.name == "/concat"][0] == ["r", "xd", "c2"]  # input untouched
    x = RNG.random((1, 2, 4, 4), np.float32)
    got, before = run(new, x), run(model, x)
    np.testing.assert_array_equal(got[:, 4:6], x)  # exact: no rounding on the FP32 path
    assert np.abs(before[:, 4:6] - x).max() > 1e-3  # (before: the rounded copy)
    np.testing.assert_array_equal(got[:, :4], before[:, :4])  # the quantized paths as before
    np.testing.assert_array_equal(got[:, 6:], before[:, 6:])


def test_cpu_u8s8_graphs_read_fp32_where_no_quantized_conv_reads(int8_dir):
    """In the U8S8 graphs no FP32 op reads a rounded copy of a tensor that is not a quantized conv's
    output, and ONNX Runtime still fuses every quantized convolution into a QLinearConv."""
    import os
    import tempfile

    from jamsdk.config import CONFIG_DIR
    from jamsdk.export.calibration import StageChain, load_calibration
    from jamsdk.export.int8 import conv_counts, quantize_stage

    out, _ = int8_dir
    m = load_manifest(out)
    clip = load_calibration(CONFIG_DIR.parent / "assets" / "example_driving.mp4", m.image_size, 2)
    files = {n: m.stage_file(n) for n in ("region_predictor", "generator_encoder", "dense_motion", "generator")}
    record: dict = {}
    StageChain(files, 1).animate(clip.source, clip.calibration, record)
    for stage in ("region_predictor", "dense_motion", "generator"):
        proto = quantize_stage(files[stage], stage, record[stage], "u8s8")
        nodes = proto.graph.node
        producer = {o: n for n in nodes for o in n.output}
        dequantized = {n.output[0] for n in nodes if n.op_type == "DequantizeLinear"}
        conv_out = {n.output[0] for n in nodes if n.op_type == "Conv" and n.input[1] in dequantized}
        rounded_inputs = {n.output[0] for n in nodes if n.op_type == "DequantizeLinear"
                          and producer.get(n.input[0]) is not None and producer[n.input[0]].op_type == "QuantizeLinear"
                          and producer[n.input[0]].input[0] not in conv_out}
        fp32_readers = [n.name for n in nodes for name in n.input if name in rounded_inputs
                        and not (n.op_type == "Conv" and n.input[1] in dequantized)]
        assert fp32_readers == [], (stage, fp32_readers[:3])
        quantized, _ = conv_counts(proto)
        opts = ort.SessionOptions()
        with tempfile.TemporaryDirectory() as tmp:
            opts.optimized_model_filepath = os.path.join(tmp, "opt.onnx")
            ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
            fused = sum(n.op_type == "QLinearConv" for n in onnx.load(opts.optimized_model_filepath).graph.node)
        assert quantized > 3 and fused == quantized, (stage, fused, quantized)
