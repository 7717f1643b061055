"""Exported tiny models (tiny-jam and tiny-mraa): files, graph hygiene, FP16 islands, parity."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto

from jamsdk.config import load_model_config
from jamsdk.export.checks import FORBIDDEN_OPS, graph_problems, trt_ops
from jamsdk.export.fp16 import FP16_BODIES
from jamsdk.export.samples import synthetic_clip
from jamsdk.manifest import load_manifest
from jamsdk.runtime.helpers import HELPERS, load_helpers
from jamsdk.stages import stage_table

PRECISIONS = ("fp32", "fp16")


def graphs(exported):
    """(stage, precision, Stage, ModelProto) for every graph of the folder."""
    m = load_manifest(exported.out)
    table = stage_table(m.model, m.image_size, with_avd=m.has_avd)
    for name, stage in table.items():
        for precision in PRECISIONS:
            yield name, precision, stage, onnx.load(m.stage_file(name, precision))


def test_folder_has_every_stage_in_both_precisions(exported):
    cfg = load_model_config(exported.config)
    table = stage_table(cfg, with_avd=True)
    expected = {"manifest.json"} | {f"{n}.onnx" for n in table} | {f"{n}.fp16.onnx" for n in table}
    expected |= {f"{n}.onnx" for n in HELPERS}  # pixel and region helper graphs for TensorRT's device path
    assert {p.name for p in exported.out.iterdir()} == expected
    assert sorted(load_helpers(load_manifest(exported.out))) == sorted(HELPERS)
    m = load_manifest(exported.out)  # hashes verified
    assert list(m.stages) == list(table)
    assert ("bg_motion" in m.stages) == (cfg.bg_motion.bg_type != "zero")
    assert m.has_avd and m.modes == ("standard", "relative", "avd")
    assert m.precisions == ("fp32", "fp16") and m.opset == 17 and m.image_size == cfg.image_size
    assert m.data["export"]["verify"]["ok"] is True


def test_graph_io_is_the_stage_table(exported):
    for name, precision, stage, proto in graphs(exported):
        def io(values):
            return [(v.name, tuple(d.dim_value for d in v.type.tensor_type.shape.dim), v.type.tensor_type.elem_type)
                    for v in values]
        want_in = [(s.name, s.shape, TensorProto.FLOAT) for s in stage.inputs]
        want_out = [(s.name, s.shape, TensorProto.FLOAT) for s in stage.outputs]
        assert io(proto.graph.input) == want_in, (name, precision)
        assert io(proto.graph.output) == want_out, (name, precision)


def test_graph_hygiene(exported):
    cfg = load_model_config(exported.config)
    allowed = trt_ops()
    for name, precision, stage, proto in graphs(exported):
        where = f"{name} {precision}"
        assert graph_problems(proto, stage, cfg.align_corners, 17) == [], where
        # The same rules spelled out here, so a bug in graph_problems cannot hide a bad graph.
        assert [(o.domain, o.version) for o in proto.opset_import] == [("", 17)], where
        ops = {n.op_type for n in proto.graph.node}
        assert ops <= allowed, (where, ops - allowed)
        assert not ops & set(FORBIDDEN_OPS), where
        assert all(n.domain == "" for n in proto.graph.node), where
        for node in proto.graph.node:
            if node.op_type == "GridSample":
                attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
                assert attrs["mode"] == b"bilinear" and attrs["padding_mode"] == b"zeros", where
                assert attrs["align_corners"] == int(cfg.align_corners), where
        inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
        for v in inferred.graph.value_info:
            dims = v.type.tensor_type.shape.dim
            assert all(d.HasField("dim_value") and d.dim_value > 0 for d in dims), (where, v.name)


def test_fp32_graphs_are_simplified(exported):
    import onnxsim

    for name, precision, _, proto in graphs(exported):
        if precision == "fp32":
            again, ok = onnxsim.simplify(proto)
            assert ok and len(again.graph.node) == len(proto.graph.node), name


def _tensor_types(proto):
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    types = {v.name: v.type.tensor_type.elem_type
             for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
    types.update({t.name: t.data_type for t in proto.graph.initializer})
    return types


def test_fp16_body_and_fp32_islands(exported):
    for name, precision, _, proto in graphs(exported):
        if precision != "fp16":
            continue
        types = _tensor_types(proto)
        nodes = proto.graph.node
        body = [n for n in nodes if n.op_type == "Conv" and n.name.startswith(FP16_BODIES[name])]
        assert all(types[n.input[1]] == TensorProto.FLOAT16 for n in body), name
        if FP16_BODIES[name]:
            assert body and any(n.op_type == "Cast" for n in nodes), name
        # Islands: these ops read and write float32 in every stage.
        for node in nodes:
            if node.op_type in ("GridSample", "Softmax", "Exp", "Sqrt", "Reciprocal", "Sign", "ReduceSum"):
                assert all(types[i] == TensorProto.FLOAT for i in node.input if types.get(i) in (1, 10)), \
                    (name, node.name)
                assert all(types[o] == TensorProto.FLOAT for o in node.output), (name, node.name)
            if node.op_type == "Conv" and not node.name.startswith(FP16_BODIES[name]):
                assert types[node.input[1]] == TensorProto.FLOAT, (name, node.name)  # region/mask/occlusion heads
    half = onnx.load(load_manifest(exported.out).stage_file("generator", "fp16"))
    convs = [n for n in half.graph.node if n.op_type == "Conv"]
    assert convs and all(_tensor_types(half)[n.input[1]] == TensorProto.FLOAT16 for n in convs)


def test_every_stage_matches_pytorch(exported):
    report = exported.result.verify
    assert report.ok, [f"{c.what}: {c.value}" for c in report.failures]
    per_stage = [c for c in report.checks if " fp32 random " in c.what or " fp32 sample " in c.what]
    outputs = sum(len(s.outputs) for s in stage_table(exported.model.cfg, with_avd=True).values())
    assert len(per_stage) == 2 * outputs
    assert max(c.value for c in per_stage) <= 1e-4
    assert any("max|Δ|" in line for line in exported.log)  # the per-output lines are printed


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_end_to_end_reproduces_animate(exported):
    """region predictor → dense motion → generator in ONNX Runtime = JamModel.animate (standard mode)."""
    m = load_manifest(exported.out)
    rp, enc, dm, gen = (_session(m.stage_file(n)) for n in
                        ("region_predictor", "generator_encoder", "dense_motion", "generator"))
    source, driving = synthetic_clip(m.image_size, 5, seed=3)
    src_np = source.numpy()
    src = dict(zip(("shift", "covar", "affine"), rp.run(None, {"image": src_np})))
    feats = {o.name: v for o, v in zip(enc.get_outputs(), enc.run(None, {"source": src_np}))}
    frames = []
    for t in range(driving.shape[0]):
        drv = dict(zip(("shift", "covar", "affine"), rp.run(None, {"image": driving[t:t + 1].numpy()})))
        feeds = {"source": src_np, **{f"source_{k}": v for k, v in src.items()},
                 **{f"driving_{k}": v for k, v in drv.items()}}
        if "bg_motion" in m.stages:
            feeds["bg_params"] = np.eye(3, dtype=np.float32)[None]
        flow, occlusion = dm.run(None, feeds)
        (frame,) = gen.run(None, {"source": src_np, **feats, "optical_flow": flow, "occlusion_map": occlusion})
        frames.append(frame)
    got = np.concatenate(frames)
    want = exported.model.animate(source, driving, "standard").numpy()
    assert np.abs(got - want).max() <= 1e-4
    # Not a degenerate model: the frames vary over the picture and follow the driving motion.
    assert want.std() > 0.05 and np.abs(want[0] - want[-1]).max() > 0.05


def test_fp16_psnr_over_the_clip(exported):
    psnr = exported.result.verify.fp16_psnr
    print(f"{exported.config}: FP16 vs FP32 PSNR {psnr:.1f} dB")
    assert psnr >= 40.0


@pytest.mark.parametrize("name", ["region_predictor", "dense_motion", "generator"])
def test_fp16_graph_runs_close_to_fp32(exported, name):
    from jamsdk.export.samples import random_feeds

    m = load_manifest(exported.out)
    stage = stage_table(m.model, with_avd=True)[name]
    feeds = {k: v.numpy() for k, v in random_feeds(stage, torch.Generator().manual_seed(5)).items()}
    full = _session(m.stage_file(name, "fp32")).run(None, feeds)
    half = _session(m.stage_file(name, "fp16")).run(None, feeds)
    for a, b in zip(full, half):
        assert b.dtype == np.float32 and np.isfinite(b).all()
        assert np.abs(a - b).max() <= 2e-2 * max(1.0, float(np.abs(a).max()))
