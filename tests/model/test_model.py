"""Module output shapes and value ranges for the JAM and MRAA-shaped configs."""

import pytest
import torch

from jamsdk.config import load_model_config
from jamsdk.errors import InputError
from jamsdk.model import build_model
from jamsdk.model.blocks import SCSE, BottleneckResBlock2d, Hourglass
from jamsdk.model.jam import movement_scale_torch
from jamsdk.stages import feature_shapes, stage_table


def check_params(p, b, k):
    assert p["shift"].shape == (b, k, 2)
    assert p["covar"].shape == (b, k, 2, 2)
    assert p["affine"].shape == (b, k, 2, 2)
    for v in p.values():
        assert torch.isfinite(v).all()
    # Covariances are symmetric PSD, and affine·affineᵀ rebuilds them (PCA square root).
    c = p["covar"]
    assert torch.allclose(c, c.transpose(-1, -2))
    assert (torch.linalg.eigvalsh(c) > -1e-7).all()
    a = p["affine"]
    assert torch.allclose(a @ a.transpose(-1, -2), c, atol=1e-6)


@pytest.mark.parametrize("name", ["tiny-jam", "tiny-mraa", "jam-256", "mraa-256"])
def test_forward_shapes_and_ranges(name):
    torch.manual_seed(0)
    cfg = load_model_config(name)
    model = build_model(cfg).eval()
    s, k = cfg.image_size, cfg.num_regions
    src, drv = torch.rand(2, 3, s, s), torch.rand(2, 3, s, s)
    with torch.no_grad():
        out = model(src, drv)
    h = s // 4
    assert out["prediction"].shape == (2, 3, s, s)
    assert 0 <= out["prediction"].min() and out["prediction"].max() <= 1
    assert out["optical_flow"].shape == (2, h, h, 2)
    assert out["occlusion_map"].shape == (2, 1, h, h)
    assert 0 <= out["occlusion_map"].min() and out["occlusion_map"].max() <= 1
    heat = out["driving_regions"]["heatmap"]
    assert torch.allclose(heat.sum(dim=(2, 3)), torch.ones(2, k), atol=1e-5)
    check_params(out["source_regions"], 2, k)
    check_params(out["driving_regions"], 2, k)
    # shift is a heatmap mean: inside the [-1, 1] frame.
    assert out["driving_regions"]["shift"].abs().max() <= 1
    # Encoder features have the shapes the stage table promises.
    feats = model.generator.encode(src[:1])
    assert [tuple(f.shape) for f in feats] == feature_shapes(cfg)
    assert set(stage_table(cfg)) >= {"region_predictor", "generator_encoder", "dense_motion", "generator"}


def test_mraa_config_has_mraa_parameter_counts():
    # MRAA_FACTS §13: mgif256 generator 45,575,391; region predictor 14,146,728; AVD 2,290,620.
    model = build_model(load_model_config("mraa-256"))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(model.region_predictor) == 14_146_728
    assert count(model.generator) + count(model.dense_motion) == 45_575_391
    assert count(model.dense_motion) == 37_730_268
    assert count(model.avd) == 2_290_620
    assert count(model.bg_motion) == 0


def test_jam_config_uses_attention_and_dilation():
    model = build_model(load_model_config("jam-256"))
    assert any(isinstance(m, SCSE) for m in model.region_predictor.modules())
    assert any(isinstance(m, SCSE) for m in model.dense_motion.modules())
    blocks = [m for m in model.generator.bottleneck if isinstance(m, BottleneckResBlock2d)]
    assert len(blocks) == 6
    assert [b.conv2.dilation[0] for b in blocks] == [1, 2, 5, 1, 2, 5]
    assert all(b.attention is not None for b in blocks)


def test_identity_motion_reproduces_source_through_warps():
    # Same image as source and driving: region params are identical, every sparse motion is the
    # identity, so the flow is the identity grid and the deformed source equals the source.
    torch.manual_seed(0)
    cfg = load_model_config("tiny-mraa")
    model = build_model(cfg).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        p = model.region_predictor(x)
        motion = model.dense_motion(x, p, p)
    from jamsdk.model.blocks import coordinate_grid

    assert torch.allclose(motion["optical_flow"][0], coordinate_grid(16, 16), atol=1e-5)


def test_animation_modes_run_and_differ():
    torch.manual_seed(0)
    cfg = load_model_config("tiny-jam")
    model = build_model(cfg).eval()
    src = torch.rand(1, 3, 64, 64)
    drv = torch.rand(3, 3, 64, 64)
    outs = {m: model.animate(src, drv, mode=m) for m in ("standard", "relative", "avd")}
    for v in outs.values():
        assert v.shape == (3, 3, 64, 64) and torch.isfinite(v).all()
    for a, b in (("standard", "relative"), ("standard", "avd"), ("relative", "avd")):
        assert (outs[a][1:] - outs[b][1:]).abs().max() > 1e-4, (a, b)
    with torch.no_grad():
        s = model.region_predictor(src)
        d0, d = model.region_predictor(drv[:1]), model.region_predictor(drv[2:3])
        # Relative mode on the reference frame: the source's own params, i.e. the source keeps its pose.
        rel0 = model.transfer_params(s, d0, d0, "relative", 1.0)
        assert torch.allclose(rel0["shift"], s["shift"]) and torch.allclose(rel0["affine"], s["affine"], atol=1e-5)
        # On another frame: MRAA's formulas, written out in float64 (A_d · A_d0⁻¹ · A_s, in that order).
        rel = model.transfer_params(s, d, d0, "relative", 0.7)
        f64 = {k: {n: v.double() for n, v in p.items()} for k, p in (("s", s), ("d", d), ("d0", d0))}
        shift = f64["s"]["shift"] + (f64["d"]["shift"] - f64["d0"]["shift"]) * 0.7
        affine = f64["d"]["affine"] @ torch.linalg.inv(f64["d0"]["affine"]) @ f64["s"]["affine"]
        wrong_order = f64["s"]["affine"] @ torch.linalg.inv(f64["d0"]["affine"]) @ f64["d"]["affine"]
        assert torch.allclose(rel["shift"].double(), shift, atol=1e-5)
        assert torch.allclose(rel["affine"].double(), affine, atol=1e-4)
        assert (affine - wrong_order).abs().max() > 1e-2  # the check above can tell the orders apart
        assert (rel["shift"] - s["shift"]).abs().max() > 1e-3  # and the frame really moved the regions
        assert torch.equal(rel["covar"], d["covar"])
        assert model.transfer_params(s, d, d0, "standard") is d
        # animate() takes the first driving frame as the reference and the scale from it
        scale = movement_scale_torch(s["shift"], d0["shift"])
        frame2 = model.animate_frame(src, s, model.transfer_params(s, d, d0, "relative", scale))["prediction"]
    assert torch.allclose(outs["relative"][2:3], frame2, atol=1e-6)
    with pytest.raises(InputError, match="mode"):
        model.transfer_params(s, d, d0, "sideways")


def test_bad_image_shape_is_a_typed_error():
    model = build_model(load_model_config("tiny-mraa"))
    with pytest.raises(InputError, match=r"expected a \(B, 3, 64, 64\) tensor, got \(1, 3, 32, 32\)"):
        model(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))


def test_hourglass_attention_placement():
    for place, enc, dec in [("none", 0, 0), ("decoder", 0, 3), ("encoder", 3, 0), ("both", 3, 3)]:
        hg = Hourglass(4, 3, 3, 16, attention=place)
        assert sum(isinstance(m, SCSE) for m in hg.encoder.modules()) == enc
        assert sum(isinstance(m, SCSE) for m in hg.decoder.modules()) == dec


def test_scse_gates():
    torch.manual_seed(0)
    m = SCSE(8, 2)
    x = torch.rand(2, 8, 5, 5)
    y = m(x)
    assert y.shape == x.shape
    # Each gate lies in (0, 1), so the output is between 0 and 2·x.
    assert (y >= 0).all() and (y <= 2 * x + 1e-6).all()
