"""The helper graphs (jamsdk.runtime.helpers): what TensorRT runs instead of the host's numpy.

Each must compute exactly what its host twin computes (frames.to_model_input after the crop,
frames.to_image, regions.relative_params), and use only ops TensorRT 10.3 runs natively.
"""

import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest

from jamsdk.export.checks import FORBIDDEN_OPS, graph_problems, trt_ops
from jamsdk.errors import ManifestError
from jamsdk.manifest import load_manifest
from jamsdk.runtime import regions
from jamsdk.runtime.frames import to_image
from jamsdk.runtime.helpers import HELPERS, helper_graphs, helper_table, load_helpers

S, K = 16, 5
GRAPHS = helper_graphs(S, K)


def _run(name, **feeds):
    session = ort.InferenceSession(GRAPHS[name].SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


@pytest.mark.parametrize("name", HELPERS)
def test_tensorrt_ops_only_and_static_shapes(name):
    proto = GRAPHS[name]
    assert {n.op_type for n in proto.graph.node} <= trt_ops()
    assert not {n.op_type for n in proto.graph.node} & set(FORBIDDEN_OPS)
    stage = helper_table(S, K)[name]
    # graph_problems checks float32 I/O (stages); the helpers' uint8/int32 I/O is checked below instead
    assert [p for p in graph_problems(proto, stage, False, 17) if not p.startswith("graph ")] == []
    dtypes = {1: "float32", 2: "uint8", 6: "int32"}
    for values, specs in ((proto.graph.input, stage.inputs), (proto.graph.output, stage.outputs)):
        assert [(v.name, tuple(d.dim_value for d in v.type.tensor_type.shape.dim),
                 dtypes[v.type.tensor_type.elem_type]) for v in values] == \
               [(s.name, tuple(s.shape), s.dtype) for s in specs]


@pytest.mark.parametrize("bgr", [False, True])
def test_pixels_match_the_host(bgr):
    rng = np.random.default_rng(0)
    order = np.array([2, 1, 0] if bgr else [0, 1, 2], np.int32)
    frame = rng.integers(0, 256, (1, S, S, 3), dtype=np.uint8)
    image = frame[0].astype(np.float32) * np.float32(1.0 / 255.0)
    want = np.ascontiguousarray((image[:, :, ::-1] if bgr else image).transpose(2, 0, 1)[None])
    np.testing.assert_array_equal(_run("preprocess", frame=frame, channel_order=order)[0], want)
    pred = rng.uniform(-0.3, 1.3, (1, 3, S, S)).astype(np.float32)
    pred[0, 0, 0, :4] = [0.5 / 255, 1.5 / 255, 254.5 / 255, 1.0]  # near the rounding ties and the ends
    got = _run("postprocess", prediction=pred, channel_order=order)[0]
    np.testing.assert_array_equal(got[0], to_image(pred, S, bgr))


def test_relative_matches_the_numpy_twin():
    rng = np.random.default_rng(1)

    def params():
        return {"shift": rng.normal(size=(1, K, 2)).astype(np.float32),
                "covar": rng.normal(size=(1, K, 2, 2)).astype(np.float32),
                "affine": rng.normal(size=(1, K, 2, 2)).astype(np.float32)}

    s, d, i = params(), params(), params()
    i["affine"][0, 0] = 0.0  # singular: the determinant guard
    i["affine"][0, 1] = [[1e-20, 0], [0, -1e-20]]  # tiny negative determinant
    scale = np.float32(1.37)
    want = regions.relative_params(s, d, i, scale)
    shift, affine = _run("relative", source_shift=s["shift"], source_affine=s["affine"], driving_shift=d["shift"],
                         driving_affine=d["affine"], initial_shift=i["shift"], initial_affine=i["affine"],
                         scale=np.array([scale], np.float32))
    np.testing.assert_array_equal(shift, want["shift"])
    np.testing.assert_array_equal(affine, want["affine"])  # bit for bit, singular rows included


def test_manifest_entries(tiny_jam, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(tiny_jam[1], folder)
    assert sorted(load_helpers(load_manifest(folder))) == sorted(HELPERS)
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    data["helpers"]["relative"]["outputs"][0]["shape"] = [1, 3, 2]
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="helpers.relative: tensors differ"):
        load_helpers(load_manifest(folder))
    data["helpers"]["relative"]["file"] = "../relative.onnx"
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="plain name inside the model folder"):
        load_helpers(load_manifest(folder))
    del data["helpers"]
    path.write_text(json.dumps(data))
    assert load_helpers(load_manifest(folder)) == {}  # exported before helper graphs: the host path
