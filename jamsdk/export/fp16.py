"""FP32 stage graph → mixed-precision graph: an FP16 convolutional body, explicit FP32 islands.

TensorRT ≥ 10.12 deprecates (and 11 removes) the "allow FP16" builder flag in favour of strongly
typed networks, whose precision is the graph's own. So the FP16 variant carries its precision in
the ONNX: FP16 initializers and tensors in the body, a ``Cast`` wherever a tensor crosses between
the body and an FP32 island, float32 graph inputs and outputs. A strongly typed build then needs
no precision flags and runs exactly these types.

The body is chosen by module scope (the TorchScript exporter names nodes ``/<module path>/<Op>``),
per stage, in :data:`FP16_BODIES`: the dense-motion hourglass, the generator's
encoder/bottleneck/decoder convolutions and the background encoder. Everything else is an FP32
island, and why:

* the whole region predictor. Its heads are precision-critical anyway (the softmax with
  temperature 0.1 turns a logit error ε into 10·ε; the moments sum over the whole heatmap; the
  closed-form 2×2 PCA meets covariance determinants ≈ 6e-6, below FP16's smallest normal 6.1e-5),
  and an FP16 hourglass was measured to be too much as well: its rounding moves covariances by
  ~1.4e-4, which rotates the PCA axes of near-isotropic regions, and frames came out at 34–41 dB
  PSNR against FP32 (jam-256, trained-like weights, the demo's example clip) instead of 67 dB with
  the stage in FP32. It is the smallest per-frame stage (22 of 586 ms per frame for MRAA mgif256 on
  CPU, MRAA_FACTS §13), and FasterLivePortrait keeps its motion extractor in FP32 for the same
  reason (DEPLOY_FACTS §2.3);
* dense motion: the Gaussian heatmaps and the 2×2 inverses (same determinants), the sparse
  motions (grid coordinates: FP16 spacing near ±1 is 4.9e-4, ≈ 0.06 px at 256 px), the deformed
  source's GridSample, the mask/occlusion heads and softmax, and the final flow;
* generator: every warp (flow resize, GridSample, occlusion blend) and the final sigmoid;
* AVD network (a small MLP whose outputs are region geometry) and the background transform's
  last linear layer.

Graphs built here pass ``onnx.checker`` and strict shape inference (every op's types agree).
The converter in onnxruntime.transformers.float16 was not used: it rounds every tensor between
two blocked nodes to FP16 and back (so "FP32" islands would still see FP16 intermediates), and
onnxconverter-common's produces graphs ONNX Runtime rejects (ENV_FACTS §7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import numpy as np

from jamsdk._lazy import require
from jamsdk.errors import EngineError

if TYPE_CHECKING:
    import onnx

# Node-name prefixes (module scopes) of each stage's FP16 body. Generator stages call the
# generator's methods rather than the module itself, so their scopes start below "generator".
FP16_BODIES: dict[str, tuple[str, ...]] = {
    "region_predictor": (),  # all FP32: see the module docstring
    "generator_encoder": ("/first/", "/down_blocks."),
    "generator": ("/bottleneck/", "/up_blocks.", "/final/"),
    "dense_motion": ("/dense_motion/hourglass/",),
    "bg_motion": ("/bg_motion/encoder/",),
    "avd": (),
}

# Ops that may run in FP16 inside a body; anything else there (Cast, Shape, …) stays as exported.
FP16_OPS = frozenset({
    "Add", "AveragePool", "BatchNormalization", "Clip", "Concat", "Conv", "Div", "Flatten", "Gemm",
    "GlobalAveragePool", "Identity", "LeakyRelu", "MatMul", "MaxPool", "Mul", "Pad", "ReduceMean",
    "Relu", "Reshape", "Resize", "Sigmoid", "Slice", "Squeeze", "Sub", "Tanh", "Transpose", "Unsqueeze",
})

# Inputs that ONNX types as float whatever the data type (Resize's roi and scales).
FLOAT_ONLY_INPUTS = {"Resize": (1, 2)}

_FP16_MAX = float(np.finfo(np.float16).max)


def fp16_node_names(proto: "onnx.ModelProto", scopes: Iterable[str]) -> set[str]:
    """Names of the nodes that run in FP16: eligible ops whose scope is one of ``scopes``."""
    scopes = tuple(scopes)
    return {n.name for n in proto.graph.node
            if n.op_type in FP16_OPS and n.domain in ("", "ai.onnx") and n.name.startswith(scopes)}


def to_mixed_fp16(proto: "onnx.ModelProto", stage_name: str) -> "onnx.ModelProto":
    """The mixed-precision copy of the FP32 graph ``proto`` of stage ``stage_name``.

    Raises:
        EngineError: the stage has a body but no node matched it (the exporter's node names
            changed), or the result fails ONNX's checks.
    """
    onnx = require("onnx")
    from onnx import TensorProto, helper, numpy_helper

    scopes = FP16_BODIES.get(stage_name, ())
    half_nodes = fp16_node_names(proto, scopes)
    if scopes and not half_nodes:
        raise EngineError(f"{stage_name}: no node matched the FP16 body scopes {scopes}; "
                          "the exporter's node names changed (update jamsdk.export.fp16.FP16_BODIES)")

    from jamsdk.export.checks import checked_inference

    out = onnx.ModelProto()
    out.CopyFrom(proto)
    graph = out.graph
    inferred = checked_inference(proto).graph
    elem_type = {vi.name: vi.type.tensor_type.elem_type
                 for vi in [*inferred.value_info, *inferred.input, *inferred.output]}
    initializers = {t.name: t for t in graph.initializer}
    for t in graph.initializer:
        elem_type[t.name] = t.data_type
    constants = {n.output[0]: n for n in graph.node if n.op_type == "Constant" and len(n.output) == 1}
    graph_outputs = {o.name for o in graph.output}

    new_nodes: list = []
    new_inits: list = []
    # versions[tensor][dtype] = the name under which the tensor exists in that dtype
    versions: dict[str, dict[int, str]] = {}

    def constant_array(name: str) -> np.ndarray | None:
        if name in initializers:
            return numpy_helper.to_array(initializers[name])
        node = constants.get(name)
        if node is not None:
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
        return None

    def get(name: str, dtype: int) -> str:
        have = versions.setdefault(name, {TensorProto.FLOAT: name})
        if dtype in have:
            return have[dtype]
        value = constant_array(name) if dtype == TensorProto.FLOAT16 else None
        if value is not None:  # a constant: store it in FP16 rather than casting at run time
            new_name = f"{name}__fp16"
            half = np.clip(value, -_FP16_MAX, _FP16_MAX).astype(np.float16)
            new_inits.append(numpy_helper.from_array(half, new_name))
        else:
            (src,) = have.values()  # the tensor exists in the other dtype only
            new_name = f"{name}__{'fp16' if dtype == TensorProto.FLOAT16 else 'fp32'}"
            new_nodes.append(helper.make_node("Cast", [src], [new_name], to=dtype, name=f"{new_name}_cast"))
        have[dtype] = new_name
        return new_name

    for original in graph.node:
        node = onnx.NodeProto()
        node.CopyFrom(original)  # the graph's own node list is replaced below
        half = node.name in half_nodes
        want = TensorProto.FLOAT16 if half else TensorProto.FLOAT
        skip = FLOAT_ONLY_INPUTS.get(node.op_type, ()) if half else ()
        for i, name in enumerate(node.input):
            if not name or i in skip or elem_type.get(name) != TensorProto.FLOAT:
                continue
            node.input[i] = get(name, want)
        new_nodes.append(node)
        for i, name in enumerate(node.output):
            if elem_type.get(name) != TensorProto.FLOAT:
                continue
            if not half:
                versions[name] = {TensorProto.FLOAT: name}
                continue
            half_name = f"{name}__fp16"
            node.output[i] = half_name
            versions[name] = {TensorProto.FLOAT16: half_name}
            if name in graph_outputs:  # graph outputs stay float32 under their own name
                new_nodes.append(helper.make_node("Cast", [half_name], [name], to=TensorProto.FLOAT,
                                                  name=f"{name}_cast"))
                versions[name][TensorProto.FLOAT] = name

    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(new_inits)
    del graph.value_info[:]
    _drop_unused(graph)
    try:
        checked_inference(out)
    except Exception as exc:  # noqa: BLE001 - onnx raises several checker/inference error types
        raise EngineError(f"{stage_name}: the FP16 graph is invalid ({type(exc).__name__}: {exc})") from exc
    return out


def _drop_unused(graph) -> None:
    # Constants replaced by FP16 initializers are left without readers; drop them and their data.
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    nodes = [n for n in graph.node if n.op_type != "Constant" or any(o in used for o in n.output)]
    inits = [t for t in graph.initializer if t.name in used]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(inits)


def precision_summary(proto: "onnx.ModelProto") -> dict[str, int]:
    """Counts for the log: FP16 convs, all convs and Cast nodes of a (mixed-precision) graph."""
    from onnx import TensorProto

    half_inits = {t.name for t in proto.graph.initializer if t.data_type == TensorProto.FLOAT16}
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    return {"conv": len(convs), "conv_fp16": sum(1 for n in convs if n.input[1] in half_inits),
            "cast": sum(1 for n in proto.graph.node if n.op_type == "Cast")}
