"""Stage wrappers and single-stage export: signatures, other opsets, inputs a model does not read."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnxruntime as ort
import pytest
import torch

from jamsdk.config import load_model_config
from jamsdk.errors import EngineError
from jamsdk.export.checks import graph_problems
from jamsdk.export.samples import random_feeds
from jamsdk.export.torch2onnx import STAGE_WRAPPERS, export_stage, stage_module
from jamsdk.model.jam import build_model
from jamsdk.stages import stage_table


def _export_and_run(model, stage, opset=17):
    feeds = random_feeds(stage, torch.Generator().manual_seed(0))
    proto = export_stage(model, stage, [feeds[s.name] for s in stage.inputs], opset)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {k: v.numpy() for k, v in feeds.items()})
    with torch.no_grad():
        want = stage_module(model, stage)(*[feeds[s.name] for s in stage.inputs])
    want = want if isinstance(want, tuple) else (want,)
    return proto, max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want))


def test_every_stage_of_the_table_has_a_wrapper():
    cfg = load_model_config("tiny-jam")
    assert set(stage_table(cfg, with_avd=True)) == set(STAGE_WRAPPERS)


@pytest.mark.parametrize("opset", [16, 19])
def test_other_supported_opsets(opset):
    torch.manual_seed(0)
    cfg = load_model_config("tiny-mraa")
    model = build_model(cfg).eval()
    stage = stage_table(cfg)["generator"]
    proto, diff = _export_and_run(model, stage, opset)
    assert graph_problems(proto, stage, cfg.align_corners, opset) == []
    assert diff <= 1e-4


def test_inputs_the_model_does_not_read_stay_in_the_signature():
    # Without skips the generator reads neither the source image nor the finer features; the
    # TorchScript exporter drops such inputs, and the graph must still have the table's inputs.
    torch.manual_seed(0)
    base = load_model_config("tiny-mraa")
    cfg = dataclasses.replace(base, generator=dataclasses.replace(base.generator, skips=False))
    model = build_model(cfg).eval()
    stage = stage_table(cfg)["generator"]
    proto, diff = _export_and_run(model, stage)
    assert [i.name for i in proto.graph.input] == [s.name for s in stage.inputs]
    assert graph_problems(proto, stage, cfg.align_corners, 17) == []
    assert diff <= 1e-4


def test_refuses_opset_20_and_wrong_input_count():
    cfg = load_model_config("tiny-mraa")
    model = build_model(cfg).eval()
    stage = stage_table(cfg)["generator_encoder"]
    with pytest.raises(EngineError, match="opset 20 is not supported"):
        export_stage(model, stage, [torch.rand(1, 3, 64, 64)], opset=20)
    with pytest.raises(EngineError, match="expected 1 example inputs, got 2"):
        export_stage(model, stage, [torch.rand(1, 3, 64, 64)] * 2)
