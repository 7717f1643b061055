"""Graph rewrites at export time that keep the math and run faster on CPUs.

**Narrow convolutions as space-to-depth convolutions.** The generator ends in a 7×7 convolution
from 64 channels to the picture's 3 at full resolution: 5 % of jam-256's MACs but 18 % of its
generator time in ONNX Runtime, because CPU convolution kernels compute output channels in blocks
of 8 or 16 (AVX2, AVX-512) and waste 13 of 16 lanes on 3 channels. With ``s = 2`` the same
convolution is computed on the input's 2×2 pixel blocks:

    Pad(k//2) → SpaceToDepth(2) → Conv(4·64 inputs, 4·3 = 12 outputs, ((k+1)/2)² taps) → DepthToSpace(2, CRD)

Output ``(c, 2I+a, 2J+b)`` of the original is output channel ``c·4 + 2a + b`` of the new
convolution at ``(I, J)``, whose weights are the original ones moved to the tap they multiply (and
zero where a tap falls outside the k×k kernel), so every output is the same sum of the same
products; only the order of the additions differs (≤ 1e-5 on jam-256's final conv). 12 output
channels fill most of a 16-lane block, at 1.3× the MACs. Measured on its own (jam-256's final conv,
2 threads, AVX-512 VNNI CPU): ~0.5–0.6× ONNX Runtime's time and ~0.6–0.7× OpenVINO's; the whole
generator ~0.9× on both (``benchmarks/fp32_rewrite.py``; docs/export.md).

Only the generator's and dense motion's graphs are rewritten (:data:`STAGES`), and in them only
convolutions that fit exactly: 2-D, one group, stride and dilation 1, an odd square kernel ≥ 5
with "same" padding, at most :data:`MAX_OUT_CHANNELS` outputs, and even input sizes that the
graph states.

**A convolution whose output is only subsampled is computed only where it is kept**
(:func:`subsampled_convs_to_strided`). The anti-alias downsampling of the region predictor and of
dense motion (``AntiAliasInterpolation2d``: a 13×13 Gaussian blur at full resolution, then every
4th row and column) computed 16 outputs for each one kept: 17 % of the region predictor's time and
9 % of dense motion's INT8 time on OpenVINO. ``Conv(stride 1) → Slice(steps s, from 0 to the end)``
becomes ``Conv(stride s)``: each kept output is the same sum of the same products, in the same order.

**A 3×3 convolution of a nearest-upsampled input runs on the input** (:func:`upsampled_convs_to_subpixel`).
Every up block of the hourglasses and of the generator is ``Resize(nearest, ×2) → Conv(3×3, pad 1)``:
of the 9 taps each output reads, several fall on the same input pixel, so each of the 4 output
phases (row and column parity) is a 2×2 convolution of the low-resolution input with the taps that
land on one pixel summed. ``Conv(2×2)`` per phase (pads on the side its taps reach) → ``Concat`` →
``DepthToSpace(2, DCR)``: 4/9 of the MACs, no upsampled tensor. On jam-256 the generator's two up
blocks are 9.7 of its 12 GMAC. The same products, with weights added before multiplying (float
rounding differs in the last bits).

**FP32 readers of a quantized tensor read the tensor itself** (:func:`float_readers_skip_qdq`, for
ONNX Runtime's U8S8 CPU graphs). ONNX Runtime's quantizer puts one QuantizeLinear/DequantizeLinear
pair on a tensor that a quantized convolution reads, and every other reader of that tensor — the
hourglass's FP32 skip Concats, the region head's copy of the input picture — reads the rounded copy
too, for nothing. Rewired so that only the quantized convolutions read the DequantizeLinear, jam-256's
dense motion in U8S8 went from 38.1 to 40.3 dB end to end against FP32 (16 calibration frames of
the example clip). Pairs on a quantized convolution's *output* are left as they are: ONNX Runtime
fuses a convolution into ``QLinearConv`` only when its output goes to one QuantizeLinear, which
FP32 readers of that output would break. The values the convolutions see are unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from jamsdk._lazy import require

if TYPE_CHECKING:
    import onnx

#: convolutions with at most this many output channels are worth rewriting (a 16-lane block)
MAX_OUT_CHANNELS = 4
#: stages whose narrow convolutions are rewritten: the generator (its final conv runs at full
#: resolution; ~0.9x the stage's time) and dense motion (its 1-channel occlusion head: 0.89x and
#: 0.94x the stage on OpenVINO, where INT8 dense motion keeps that head in FP32; ONNX Runtime FP32
#: 0.97x and 1.05x, i.e. no change; docs/export.md)
STAGES = ("generator", "dense_motion")
BLOCK = 2
#: attribute-free elementwise activations moved before the DepthToSpace (where runtimes fuse them)
ACTIVATIONS = ("Sigmoid", "Relu", "Tanh")


def _attrs(node) -> dict:
    onnx = require("onnx")
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def space_to_depth_weights(weight: np.ndarray, s: int = BLOCK) -> np.ndarray:
    """The weights of the space-to-depth form of a "same"-padded k×k convolution (see the module docstring).

    ``weight``: ``(O, C, k, k)``. Returns ``(O·s², C·s², m, m)`` with ``m = (k - 1 + s - 1) // s + 1``,
    input channels ordered as ONNX SpaceToDepth writes them (``(p·s + q)·C + c``) and output channels
    as DepthToSpace CRD reads them (``o·s² + a·s + b``).
    """
    out_c, in_c, k, _ = weight.shape
    m = (k - 1 + s - 1) // s + 1
    new = np.zeros((out_c * s * s, in_c * s * s, m, m), weight.dtype)
    for a in range(s):
        for b in range(s):
            for p in range(s):
                for q in range(s):
                    block = slice((p * s + q) * in_c, (p * s + q + 1) * in_c)
                    for mi in range(m):
                        u = s * mi + p - a
                        if not 0 <= u < k:
                            continue
                        for ni in range(m):
                            v = s * ni + q - b
                            if 0 <= v < k:
                                new[a * s + b::s * s, block, mi, ni] = weight[:, :, u, v]
    return new


def _fits(node, weight: np.ndarray, shape: list[int] | None) -> bool:
    at = _attrs(node)
    if weight.ndim != 4 or at.get("group", 1) != 1 or weight.shape[0] > MAX_OUT_CHANNELS:
        return False
    k = weight.shape[2]
    if weight.shape[3] != k or k < 5 or k % 2 == 0:
        return False
    if any(v != 1 for v in at.get("strides", [1, 1])) or any(v != 1 for v in at.get("dilations", [1, 1])):
        return False
    if at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or list(at.get("pads", [])) != [k // 2] * 4:
        return False
    return shape is not None and len(shape) == 4 and all(isinstance(d, int) and d > 0 and d % BLOCK == 0
                                                           for d in shape[2:])


def narrow_convs_to_space_to_depth(proto: "onnx.ModelProto") -> tuple["onnx.ModelProto", list[str]]:
    """``(rewritten copy, names of the rewritten Conv nodes)``; the input proto is left as it was."""
    onnx = require("onnx")
    from onnx import helper, numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    shapes = {}
    for vi in list(onnx.shape_inference.infer_shapes(proto).graph.value_info) + list(proto.graph.input):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    inits = {t.name: t for t in model.graph.initializer}
    uses: dict[str, int] = {}
    for n in model.graph.node:
        for name in n.input:
            uses[name] = uses.get(name, 0) + 1
    consumers: dict[str, list] = {}
    for n in model.graph.node:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    outputs = {o.name for o in model.graph.output}
    moved: set[int] = set()  # activations moved before their DepthToSpace
    done, nodes = [], []
    for node in model.graph.node:
        if id(node) in moved:
            continue
        weight_name = node.input[1] if node.op_type == "Conv" and len(node.input) > 1 else ""
        bias_name = node.input[2] if node.op_type == "Conv" and len(node.input) > 2 else ""
        private = (weight_name in inits and uses[weight_name] == 1
                   and (not bias_name or (bias_name in inits and uses[bias_name] == 1)))
        weight = numpy_helper.to_array(inits[weight_name]) if private else None
        if weight is None or not _fits(node, weight, shapes.get(node.input[0])):
            nodes.append(node)
            continue
        k, tag = weight.shape[2], node.name or node.output[0]
        new_w = space_to_depth_weights(weight)
        inits[weight_name].CopyFrom(numpy_helper.from_array(new_w, weight_name))
        if bias_name:
            bias = numpy_helper.to_array(inits[bias_name])
            inits[bias_name].CopyFrom(numpy_helper.from_array(np.repeat(bias, BLOCK * BLOCK), bias_name))
        # "same" padding k//2 on H (even) leaves H/s + k//2 block rows: exactly H/s outputs of m taps
        model.graph.initializer.append(numpy_helper.from_array(
            np.array([0, 0, k // 2, k // 2, 0, 0, k // 2, k // 2], np.int64), f"{tag}/pads"))
        nodes += [helper.make_node("Pad", [node.input[0], f"{tag}/pads"], [f"{tag}/padded"], name=f"{tag}/Pad"),
                  helper.make_node("SpaceToDepth", [f"{tag}/padded"], [f"{tag}/s2d"], name=f"{tag}/SpaceToDepth",
                                   blocksize=BLOCK),
                  helper.make_node("Conv", [f"{tag}/s2d", weight_name] + ([bias_name] if bias_name else []),
                                   [f"{tag}/blocks"], name=node.name, kernel_shape=list(new_w.shape[2:]))]
        out = node.output[0]
        after = consumers.get(out, [])
        if len(after) == 1 and after[0].op_type in ACTIVATIONS and out not in outputs:
            # an elementwise activation commutes with the pixel shuffle: before it, it fuses into the Conv
            act = after[0]
            moved.add(id(act))
            nodes += [helper.make_node(act.op_type, [f"{tag}/blocks"], [f"{tag}/act"], name=act.name),
                      helper.make_node("DepthToSpace", [f"{tag}/act"], list(act.output), name=f"{tag}/DepthToSpace",
                                       blocksize=BLOCK, mode="CRD")]
        else:
            nodes.append(helper.make_node("DepthToSpace", [f"{tag}/blocks"], list(node.output),
                                          name=f"{tag}/DepthToSpace", blocksize=BLOCK, mode="CRD"))
        done.append(node.name)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model, done


def _is_quantized_conv(node, dequantized: set[str]) -> bool:
    return node.op_type == "Conv" and len(node.input) > 1 and node.input[1] in dequantized


def float_readers_skip_qdq(proto: "onnx.ModelProto") -> tuple["onnx.ModelProto", int]:
    """``(copy, readers rewired)``: where a Q/DQ pair feeds a quantized Conv, its other readers read the FP32 tensor.

    A reader is rewired only when the pair also feeds a quantized convolution's activation input (so
    the pair stays, for that convolution) and the tensor is not itself a quantized convolution's
    output (whose fusion needs the pair as its only reader). See the module docstring for why.
    """
    onnx = require("onnx")

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    nodes = model.graph.node
    producer = {out: n for n in nodes for out in n.output}
    dequantized = {n.output[0] for n in nodes if n.op_type == "DequantizeLinear"}
    readers: dict[str, list] = {}
    for n in nodes:
        for name in n.input:
            readers.setdefault(name, []).append(n)
    count = 0
    for n in nodes:
        if n.op_type != "DequantizeLinear":
            continue
        quant = producer.get(n.input[0])
        if quant is None or quant.op_type != "QuantizeLinear":
            continue  # a constant's DequantizeLinear (weights): nothing to rewire
        source = producer.get(quant.input[0])
        if source is not None and _is_quantized_conv(source, dequantized):
            continue  # a quantized conv's output: its readers stay on the pair (fusion)
        out, users = n.output[0], readers.get(n.output[0], [])
        convs = [u for u in users if _is_quantized_conv(u, dequantized) and u.input[0] == out]
        if not convs:
            continue
        for user in users:
            if any(user is c for c in convs):
                continue
            for k, name in enumerate(user.input):
                if name == out:
                    user.input[k] = quant.input[0]
                    count += 1
    return model, count


def _constant_ints(name: str, inits: dict, producer: dict) -> list[int] | None:
    """The values of a constant int tensor (an initializer or a Constant node's), else None."""
    from onnx import helper, numpy_helper

    if name in inits:
        return [int(v) for v in numpy_helper.to_array(inits[name]).ravel()]
    node = producer.get(name)
    if node is not None and node.op_type == "Constant":
        value = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "value"), None)
        if value is not None:
            return [int(v) for v in numpy_helper.to_array(value).ravel()]
    return None


#: the stages whose INT8 graphs are quantized from the sub-pixel form too: the generator only.
#: OpenVINO ran the quantized sub-pixel hourglasses far from FP32 (jam-256 dense motion 17.6 dB,
#: region predictor 25.2 dB end to end, where ONNX Runtime ran the same graphs at 45.9 dB), so theirs
#: are quantized from the FP32 graphs as they are before that rewrite (same maths); the generator's
#: sub-pixel INT8 graph stayed at 59.9 dB on OpenVINO.
SUBPIXEL_INT8 = frozenset({"generator"})


def _replace_nodes(model: "onnx.ModelProto", nodes: list) -> None:
    """``model``'s nodes become ``nodes``; constants (initializers, Constant nodes) nothing reads any more go."""
    outputs = {o.name for o in model.graph.output}
    used = {name for n in nodes for name in n.input} | outputs
    nodes = [n for n in nodes if n.op_type != "Constant" or any(o in used for o in n.output)]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    for t in [t for t in model.graph.initializer if t.name not in used]:
        model.graph.initializer.remove(t)


def _indexed_copy(onnx: Any, proto: "onnx.ModelProto") -> tuple:
    """``(copy, its nodes, initializers by name, producer of each tensor, readers of each tensor, graph
    output names)``: what the rewrites below look a Conv's neighbours up in."""
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    nodes = model.graph.node
    inits = {t.name: t for t in model.graph.initializer}
    producer = {out: n for n in nodes for out in n.output}
    readers: dict[str, list] = {}
    for n in nodes:
        for name in n.input:
            readers.setdefault(name, []).append(n)
    return model, nodes, inits, producer, readers, {o.name for o in model.graph.output}


def subsampled_convs_to_strided(proto: "onnx.ModelProto") -> tuple["onnx.ModelProto", list[str]]:
    """``(rewritten copy, names of the Conv nodes made strided)``: ``Conv → Slice(::s, ::s)`` as ``Conv(stride s)``.

    Only where it is exact: a 2-D Conv with strides and dilations 1 (no ``auto_pad``) whose only
    reader is a Slice of its spatial axes (2, 3 or -2, -1) starting at 0, running to the end and
    stepping by the same ``s`` ≥ 1 on both; the Slice goes, its output is the Conv's.
    """
    onnx = require("onnx")
    from onnx import helper

    model, nodes, inits, producer, readers, outputs = _indexed_copy(onnx, proto)
    dropped, done = set(), []
    for conv in nodes:
        if conv.op_type != "Conv" or conv.output[0] in outputs or len(readers.get(conv.output[0], [])) != 1:
            continue
        sl = readers[conv.output[0]][0]
        at = _attrs(conv)
        if sl.op_type != "Slice" or len(sl.input) < 5 or at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") \
                or any(v != 1 for v in at.get("strides", [1, 1])) or any(v != 1 for v in at.get("dilations", [1, 1])) \
                or len(at.get("kernel_shape", [])) != 2:
            continue
        starts, ends, axes, steps = (_constant_ints(name, inits, producer) for name in sl.input[1:5])
        if None in (starts, ends, axes, steps) or sorted(a % 4 for a in axes) != [2, 3] or starts != [0, 0] \
                or min(ends) < 2**31 - 1 or len(set(steps)) != 1 or steps[0] < 1:
            continue
        kept = [a for a in conv.attribute if a.name != "strides"]
        del conv.attribute[:]
        conv.attribute.extend(kept + [helper.make_attribute("strides", [steps[0], steps[0]])])
        conv.output[0] = sl.output[0]
        dropped.add(id(sl))
        done.append(conv.name)
    _replace_nodes(model, [n for n in nodes if id(n) not in dropped])  # the Slices' constants go too
    return model, done


#: output phase → for each of its 2 taps (row or column), the 3×3 taps that land on that input pixel
_PHASE_TAPS = {0: ((0,), (1, 2)), 1: ((0, 1), (2,))}


def subpixel_weights(weight: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """``{(a, b): (O, C, 2, 2)}``: the 2×2 kernel of output phase (row a, column b) of a 3×3 convolution
    (``weight`` ``(O, C, 3, 3)``, pad 1) applied after a nearest ×2 upsampling (see the module docstring)."""
    out = {}
    for a in (0, 1):
        for b in (0, 1):
            k = np.zeros(weight.shape[:2] + (2, 2), weight.dtype)
            for tr, rows in enumerate(_PHASE_TAPS[a]):
                for tc, cols in enumerate(_PHASE_TAPS[b]):
                    k[:, :, tr, tc] = weight[:, :, list(rows)][:, :, :, list(cols)].sum(axis=(2, 3))
            out[(a, b)] = k
    return out


def _nearest_x2(node, inits: dict, producer: dict) -> bool:
    """A Resize that repeats each pixel 2×2 (nearest, asymmetric, rounding down, scales 1, 1, 2, 2)."""
    from onnx import helper, numpy_helper

    at = _attrs(node)
    if node.op_type != "Resize" or at.get("mode") not in (b"nearest", "nearest") \
            or at.get("coordinate_transformation_mode") not in (b"asymmetric", "asymmetric") \
            or at.get("nearest_mode", b"round_prefer_floor") not in (b"floor", "floor", b"round_prefer_floor",
                                                                     "round_prefer_floor") \
            or len(node.input) != 3 or not node.input[2]:
        return False
    name = node.input[2]
    if name in inits:
        scales = numpy_helper.to_array(inits[name])
    elif name in producer and producer[name].op_type == "Constant":
        value = next((helper.get_attribute_value(a) for a in producer[name].attribute if a.name == "value"), None)
        scales = numpy_helper.to_array(value) if value is not None else None
    else:
        return False
    return scales is not None and [float(v) for v in scales.ravel()] == [1.0, 1.0, 2.0, 2.0]


def upsampled_convs_to_subpixel(proto: "onnx.ModelProto") -> tuple["onnx.ModelProto", list[str]]:
    """``(rewritten copy, names of the rewritten Conv nodes)``: ``Resize(nearest ×2) → Conv(3×3)`` as 4
    phase convolutions on the Resize's input (see the module docstring).

    Only where it is exact: the Resize of :func:`_nearest_x2`, read only by the Conv; the Conv 2-D,
    3×3, pads 1, stride and dilation 1, one group, its weights (and bias) constants of its own.
    """
    onnx = require("onnx")
    from onnx import helper, numpy_helper

    model, nodes, inits, producer, readers, outputs = _indexed_copy(onnx, proto)
    replace: dict[int, list] = {}
    dropped: set[int] = set()
    done = []
    for conv in nodes:
        if conv.op_type != "Conv" or len(conv.input) < 2:
            continue
        up = producer.get(conv.input[0])
        at = _attrs(conv)
        weight_name, bias_name = conv.input[1], (conv.input[2] if len(conv.input) > 2 else "")
        private = all(name in inits and len(readers.get(name, [])) == 1 for name in (weight_name, bias_name) if name)
        if up is None or not _nearest_x2(up, inits, producer) or len(readers[up.output[0]]) != 1 \
                or up.output[0] in outputs or not private or list(at.get("kernel_shape", [])) != [3, 3] \
                or list(at.get("pads", [])) != [1, 1, 1, 1] or at.get("group", 1) != 1 \
                or any(v != 1 for v in at.get("strides", [1, 1])) or any(v != 1 for v in at.get("dilations", [1, 1])):
            continue
        weight = numpy_helper.to_array(inits[weight_name])
        if weight.ndim != 4:
            continue
        bias = numpy_helper.to_array(inits[bias_name]) if bias_name else None
        tag = conv.name or conv.output[0]
        new_nodes, phases = [], []
        for (a, b), k in subpixel_weights(weight).items():
            # each phase its own constants: a quantizer scales a conv's bias by that conv's weight scales
            names = [f"{weight_name}/phase{a}{b}"] + ([f"{bias_name}/phase{a}{b}"] if bias_name else [])
            model.graph.initializer.extend(numpy_helper.from_array(v, n) for v, n in zip((k, bias), names))
            phases.append(f"{tag}/phase{a}{b}")
            new_nodes.append(helper.make_node("Conv", [up.input[0]] + names, [phases[-1]], name=f"{tag}/phase{a}{b}",
                                              kernel_shape=[2, 2], pads=[1 - a, 1 - b, a, b]))
        # phase (a, b) is channel block 2a + b: DepthToSpace DCR puts block (a, b) at row 2i+a, column 2j+b
        new_nodes += [helper.make_node("Concat", phases, [f"{tag}/phases"], name=f"{tag}/Concat", axis=1),
                      helper.make_node("DepthToSpace", [f"{tag}/phases"], list(conv.output),
                                       name=f"{tag}/DepthToSpace", blocksize=2, mode="DCR")]
        replace[id(conv)] = new_nodes
        dropped.add(id(up))
        done.append(conv.name)
    kept = [new for n in nodes if id(n) not in dropped for new in replace.get(id(n), [n])]
    _replace_nodes(model, kept)  # the 3×3 weights and the Resizes' scales go too
    return model, done


def fp32_form(proto: "onnx.ModelProto", stage: Any, align_corners: bool, opset: int, label: str,
              enabled: bool = True, subpixel: bool = True) -> tuple["onnx.ModelProto", dict[str, list[str]]]:
    """The FP32 graph jamsdk writes for ``proto`` (stage ``stage``) and what was rewritten (kind → Conv
    names): when ``enabled``, subsampled convolutions made strided and, with ``subpixel``, those of
    upsampled inputs in their sub-pixel form (every stage) and, in the stages of :data:`STAGES`,
    narrow ones in their space-to-depth form; a rewritten graph is checked again.

    The INT8 graphs of the stages outside :data:`SUBPIXEL_INT8` are quantized from this form without
    ``subpixel``."""
    if not enabled:
        return proto, {}
    from jamsdk.export.checks import check_graph

    done: dict[str, list[str]] = {}
    rewritten, strided = subsampled_convs_to_strided(proto)
    if strided:
        done["strided_convs"] = strided
    if subpixel:
        rewritten, phased = upsampled_convs_to_subpixel(rewritten)
        if phased:
            done["subpixel_convs"] = phased
    if stage.name in STAGES:
        rewritten, narrow = narrow_convs_to_space_to_depth(rewritten)
        if narrow:
            done["space_to_depth_convs"] = narrow
    if done:
        check_graph(rewritten, stage, align_corners, opset, label)
    return rewritten, done
