"""Losses, the VGG-19 loader and the random warps of the equivariance losses."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from jamsdk.config import load_model_config
from jamsdk.errors import CheckpointError
from jamsdk.model.jam import build_model
from jamsdk.model.linalg2x2 import matmul
from jamsdk.train.losses import (
    AvdObjective,
    ImagePyramid,
    PerceptualLoss,
    equivariance_losses,
    random_scale,
)
from jamsdk.train.train_config import TrainConfig
from jamsdk.train.transforms import RandomTPS
from jamsdk.train.vgg import NUM_LAYERS, Vgg19

torch.set_num_threads(1)

# torchvision vgg19: conv layers of `features` and their (out, in) channels.
_CONVS = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128), 12: (256, 256), 14: (256, 256),
          16: (256, 256), 19: (512, 256), 21: (512, 512), 23: (512, 512), 25: (512, 512), 28: (512, 512),
          30: (512, 512), 32: (512, 512), 34: (512, 512)}


def fake_torchvision_vgg19(path: Path, drop: str | None = None, extra: dict | None = None) -> dict:
    """A file laid out like torchvision's vgg19 ImageNet weights (random values, tiny classifier)."""
    gen = torch.Generator().manual_seed(123)
    state = {}
    for i, (cout, cin) in _CONVS.items():
        state[f"features.{i}.weight"] = torch.randn(cout, cin, 3, 3, generator=gen) * 0.01
        state[f"features.{i}.bias"] = torch.randn(cout, generator=gen) * 0.01
    # The real classifier is 4096 × 25088; its keys must be ignored whatever their shapes.
    state["classifier.0.weight"] = torch.zeros(8, 4)
    state["classifier.6.bias"] = torch.zeros(3)
    if drop:
        del state[drop]
    state.update(extra or {})
    torch.save(state, path)
    return state


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(load_model_config("tiny-jam")).eval()


# ---- VGG-19 -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("vgg") / "vgg19-dcbb9e9d.pth"
    return path, fake_torchvision_vgg19(path)


def test_vgg_loads_torchvision_state_dict(vgg_file):
    path, state = vgg_file
    vgg = Vgg19(path)
    assert vgg.pretrained
    for i in _CONVS:
        if i < NUM_LAYERS:
            assert torch.equal(vgg.features[i].weight, state[f"features.{i}.weight"])
            assert torch.equal(vgg.features[i].bias, state[f"features.{i}.bias"])
    assert not any(p.requires_grad for p in vgg.parameters())
    feats = vgg(torch.rand(1, 3, 32, 32))
    assert [f.shape[1:] for f in feats] == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 2, 2)]
    # The features are those of the loaded weights, not of the random fallback.
    assert not torch.allclose(feats[0], Vgg19(None)(torch.rand(1, 3, 32, 32))[0])


def test_vgg_first_slice_matches_manual_conv(vgg_file):
    path, state = vgg_file
    x = torch.rand(2, 3, 16, 16)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    want = torch.relu(torch.nn.functional.conv2d((x - mean) / std, state["features.0.weight"],
                                                 state["features.0.bias"], padding=1))
    torch.testing.assert_close(Vgg19(path)(x, depth=1)[0], want)


@pytest.mark.parametrize("case, match", [
    ("missing", "missing .*features.28.weight"),
    ("bn", "unexpected .*features.1.running_mean"),
    ("shape", "wrong shape .*features.0.weight"),
])
def test_vgg_rejects_files_that_do_not_fit(tmp_path, case, match):
    path = tmp_path / "w.pth"
    if case == "missing":
        fake_torchvision_vgg19(path, drop="features.28.weight")
    elif case == "bn":
        fake_torchvision_vgg19(path, extra={"features.1.running_mean": torch.zeros(64)})
    else:
        fake_torchvision_vgg19(path, extra={"features.0.weight": torch.zeros(64, 1, 3, 3)})
    with pytest.raises(CheckpointError, match=match):
        Vgg19(path)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_vgg_refuses_pickled_code_and_missing_files(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"features.0.weight": Evil()}, fh)
    with pytest.raises(CheckpointError, match="corrupt or not a torch checkpoint"):
        Vgg19(path)
    with pytest.raises(CheckpointError, match="no such file"):
        Vgg19(tmp_path / "absent.pth")


def test_random_vgg_is_deterministic_and_leaves_global_rng_alone():
    torch.manual_seed(5)
    before = torch.get_rng_state()
    a, b = Vgg19(None, seed=3), Vgg19(None, seed=3)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(a.features[28].weight, b.features[28].weight)
    assert not torch.equal(a.features[28].weight, Vgg19(None, seed=4).features[28].weight)


# ---- perceptual pyramid ----------------------------------------------------------------------


def test_pyramid_scales():
    pyr = ImagePyramid((1.0, 0.5, 0.25, 0.125))(torch.rand(2, 3, 64, 64))
    assert {s: tuple(v.shape[2:]) for s, v in pyr.items()} == {1.0: (64, 64), 0.5: (32, 32), 0.25: (16, 16),
                                                                 0.125: (8, 8)}


def test_perceptual_loss_zero_on_equal_images_and_grows_with_difference():
    loss = PerceptualLoss(Vgg19(None), (1.0, 0.5), (10.0,) * 5)
    x = torch.rand(2, 3, 32, 32)
    assert float(loss(x, x)) == 0.0
    small = float(loss((x + 0.02 * torch.randn_like(x)).clamp(0, 1), x))
    big = float(loss(torch.rand_like(x), x))
    assert 0 < small < big


def test_perceptual_loss_skips_unweighted_layers():
    vgg = Vgg19(None)
    calls = []
    vgg.features[28].register_forward_hook(lambda *a: calls.append(1))  # conv5_1, inside relu5_1's slice
    x = torch.rand(1, 3, 32, 32)
    PerceptualLoss(vgg, (1.0,), (10, 10, 10, 0, 0))(x, x)
    assert calls == []
    PerceptualLoss(vgg, (1.0,), (10, 10, 10, 10, 10))(x, x)
    assert len(calls) == 2


# ---- random warps -------------------------------------------------------------------------------


def test_identity_warp_is_exact():
    t = RandomTPS(2, 0.0, 0.0, 5)
    img = torch.rand(2, 3, 24, 24)
    torch.testing.assert_close(t.transform_frame(img), img, atol=1e-5, rtol=0)
    pts = torch.rand(2, 7, 2) * 2 - 1
    torch.testing.assert_close(t.warp_coordinates(pts), pts)
    torch.testing.assert_close(t.jacobian(pts), torch.eye(2).expand(2, 7, 2, 2))


def test_jacobian_matches_finite_differences():
    gen = torch.Generator().manual_seed(0)
    t = RandomTPS(3, 0.1, 0.05, 5, generator=gen)
    t.theta, t.control_weights = t.theta.double(), t.control_weights.double()
    t.control_points = t.control_points.double()
    pts = (torch.rand(3, 6, 2, dtype=torch.float64, generator=gen) * 1.6 - 0.8)
    jac = t.jacobian(pts)
    eps = 1e-6
    for axis in range(2):
        d = torch.zeros_like(pts)
        d[..., axis] = eps
        fd = (t.warp_coordinates(pts + d) - t.warp_coordinates(pts - d)) / (2 * eps)
        torch.testing.assert_close(jac[..., :, axis], fd, atol=1e-6, rtol=1e-6)


def test_frame_warp_moves_content_to_the_warped_coordinates():
    """A blob found at z in the warped frame sits at T(z) in the original (the convention the loss needs)."""
    s = 64
    gen = torch.Generator().manual_seed(1)
    t = RandomTPS(1, 0.08, 0.01, 5, generator=gen)
    from jamsdk.model.blocks import coordinate_grid

    grid = coordinate_grid(s, s)
    centre = torch.tensor([0.25, -0.2])
    img = torch.exp(-((grid - centre) ** 2).sum(-1) / (2 * 0.05**2)).expand(1, 3, s, s).contiguous()
    out = t.transform_frame(img)[0, 0]
    z = (out[..., None] * grid).sum((0, 1)) / out.sum()
    found = t.warp_coordinates(z.view(1, 1, 2)).view(2)
    assert torch.linalg.vector_norm(found - centre) < 0.01
    assert torch.linalg.vector_norm(z - centre) > 0.02  # the warp did move it


# ---- equivariance -----------------------------------------------------------------------------


def test_equivariance_is_zero_for_the_identity_warp(tiny):
    x = torch.rand(2, 3, 64, 64)
    regions = tiny.region_predictor(x)
    errs = equivariance_losses(tiny.region_predictor, x, regions, RandomTPS(2, 0.0, 0.0, 5), True)
    assert float(errs["shift"].detach()) < 1e-6
    assert float(errs["affine"].detach()) < 1e-4


def test_equivariance_gradients_are_finite(tiny):
    model = build_model(load_model_config("tiny-jam")).train()
    x = torch.rand(2, 3, 64, 64)
    regions = model.region_predictor(x)
    t = RandomTPS(2, 0.05, 0.005, 5, generator=torch.Generator().manual_seed(0))
    errs = equivariance_losses(model.region_predictor, x, regions, t, True)
    assert float(errs["shift"].detach()) > 0 and float(errs["affine"].detach()) > 0
    (errs["shift"] + errs["affine"]).backward()
    grads = [p.grad for p in model.region_predictor.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_equivariance_uses_the_closed_form_inverse(monkeypatch, tiny):
    def forbidden(*a, **k):
        raise AssertionError("torch.inverse must not be used")

    monkeypatch.setattr(torch, "inverse", forbidden)
    monkeypatch.setattr(torch.linalg, "inv", forbidden)
    x = torch.rand(2, 3, 64, 64)
    equivariance_losses(tiny.region_predictor, x, tiny.region_predictor(x), RandomTPS(2, 0.05, 0.005), True)


# ---- stage 2 ----------------------------------------------------------------------------------


def test_random_scale_scales_rows():
    params = {"shift": torch.rand(4, 3, 2), "affine": torch.rand(4, 3, 2, 2), "covar": torch.rand(4, 3, 2, 2)}
    out = random_scale(params, 0.25, torch.Generator().manual_seed(0))
    theta = out["shift"] / params["shift"]
    assert ((theta >= 0.75) & (theta <= 1.25)).all()
    assert torch.allclose(theta, theta[:, :1].expand_as(theta))  # one θ per sample
    torch.testing.assert_close(out["affine"], params["affine"] * theta[:, :, :, None])
    torch.testing.assert_close(out["covar"], matmul(out["affine"], out["affine"].transpose(-1, -2)))


def test_avd_objective_trains_only_the_avd_network():
    model = build_model(load_model_config("tiny-jam"))
    model.eval()
    model.avd.train()
    model.requires_grad_(False)
    model.avd.requires_grad_(True)
    obj = AvdObjective(model, TrainConfig(), torch.Generator().manual_seed(0))
    losses = obj(torch.rand(4, 3, 64, 64), torch.rand(4, 3, 64, 64))
    assert set(losses) == {"avd_shift", "avd_affine"}
    sum(losses.values()).backward()
    assert all(p.grad is None for n, p in model.named_parameters() if not n.startswith("avd."))
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.avd.parameters())


def test_ssim_and_pyramid_loss():
    from jamsdk.train.losses import PyramidLoss, ssim_map

    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 32, 32, generator=g)
    assert torch.allclose(ssim_map(a, a), torch.ones(2, 3, 32, 32), atol=1e-5)
    loss = PyramidLoss((1.0, 0.5), l1=10.0, ssim=10.0)
    assert float(loss(a, a)) == pytest.approx(0.0, abs=1e-5)
    near = (a + 0.02 * torch.rand(2, 3, 32, 32, generator=g)).clamp(0, 1)
    far = torch.rand(2, 3, 32, 32, generator=g)
    assert 0 < float(loss(near, a)) < float(loss(far, a))
    only_l1 = PyramidLoss((1.0,), l1=1.0, ssim=0.0)
    assert float(only_l1(far, a)) == pytest.approx(float((far - a).abs().mean()), rel=1e-6)
    x = far.clone().requires_grad_(True)
    loss(x, a).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_pyramid_reconstruction_builds_no_vgg(tmp_path):
    import dataclasses

    from jamsdk.errors import ConfigError
    from jamsdk.train.losses import PyramidLoss, ReconstructionObjective
    from jamsdk.train.train_config import replace, train_config_from_dict

    cfg = TrainConfig()
    cfg = replace(cfg, scales=(1.0, 0.5), loss=dataclasses.replace(cfg.loss, reconstruction="pyramid"))
    model = build_model(load_model_config("tiny-jam"))
    obj = ReconstructionObjective(model, None, cfg, 0.0)
    assert isinstance(obj.perceptual, PyramidLoss)
    losses = obj(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64))
    assert set(losses) == {"perceptual", "equivariance_shift", "equivariance_affine"}
    assert all(torch.isfinite(v) for v in losses.values())
    with pytest.raises(ConfigError, match="train.loss.reconstruction: expected one of"):
        train_config_from_dict({"loss": {"reconstruction": "lpips"}})
    with pytest.raises(ConfigError, match="train.loss.pyramid_ssim"):
        train_config_from_dict({"loss": {"pyramid_ssim": -1}})
