"""`export --batch-sizes`: per-frame stages exported for B streams per call, side by side."""

import pytest

from jamsdk.errors import InputError
from jamsdk.export.batched import batched_file, parse_batch_sizes
from jamsdk.manifest import load_manifest
from jamsdk.stages import batched, stage_table

onnx = pytest.importorskip("onnx")


def test_parse_batch_sizes():
    assert parse_batch_sizes("8,2, 4,2") == (2, 4, 8)
    assert parse_batch_sizes("1") == ()  # batch 1 is always exported
    assert parse_batch_sizes("") == ()
    with pytest.raises(InputError, match="comma-separated whole numbers"):
        parse_batch_sizes("2,four")
    with pytest.raises(InputError, match="1–64"):
        parse_batch_sizes("0,2")


def test_batched_graphs_have_static_batched_shapes(tiny_batched):
    man = load_manifest(tiny_batched)
    table = stage_table(man.model, man.image_size, with_avd=man.has_avd)
    per_frame = [n for n, st in table.items() if st.per == "frame"]
    assert sorted(man.batched) == sorted(per_frame)
    for name in per_frame:
        for b in (2, 4):
            path = man.stage_file(name, "fp32", b)
            assert path.name == batched_file(name, b, "fp32")
            graph = onnx.load(str(path), load_external_data=False).graph
            want = batched(table[name], b)
            got = [(i.name, tuple(d.dim_value for d in i.type.tensor_type.shape.dim)) for i in graph.input]
            assert got == [(s.name, s.shape) for s in want.inputs]
            assert all(s.shape[0] == b for s in want.inputs + want.outputs)
