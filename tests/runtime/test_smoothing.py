"""One-Euro smoothing of driving regions: exactness on still input, measured noise reduction, lag."""

from __future__ import annotations

import numpy as np
import pytest

from jamsdk.errors import InputError
from jamsdk.runtime.smoothing import RegionSmoother

K = 10


def _params(rng: np.random.Generator, k: int = K) -> dict[str, np.ndarray]:
    a = rng.normal(0, 0.2, (1, k, 2, 2)).astype(np.float32) + np.eye(2, dtype=np.float32) * 0.3
    return {"shift": rng.uniform(-0.6, 0.6, (1, k, 2)).astype(np.float32),
            "affine": a, "covar": np.einsum("bkij,bklj->bkil", a, a).astype(np.float32)}


def _noisy(base: dict[str, np.ndarray], rng: np.random.Generator, sigma: float) -> dict[str, np.ndarray]:
    out = {k: (v + rng.normal(0, sigma, v.shape)).astype(np.float32) for k, v in base.items()}
    out["covar"] = np.einsum("bkij,bklj->bkil", out["affine"], out["affine"]).astype(np.float32)
    return out


def test_still_input_is_returned_bit_for_bit():
    base = _params(np.random.default_rng(0))
    sm = RegionSmoother(4.0)
    for _ in range(50):
        out = sm({k: v.copy() for k, v in base.items()})
        for key in base:
            assert out[key].dtype == base[key].dtype
            np.testing.assert_array_equal(out[key], base[key])


def test_off_passes_the_same_arrays_through():
    base = _params(np.random.default_rng(1))
    out = RegionSmoother(0)(base)
    assert all(out[k] is base[k] for k in base)


def test_noise_on_a_still_driver_is_reduced():
    rng = np.random.default_rng(2)
    base = _params(rng)
    # ≈ the demo model's region noise on a still driver with pixel noise (benchmarks/smoothing.py)
    seq = [_noisy(base, rng, 0.0005) for _ in range(300)]
    sm = RegionSmoother(4.0)
    out = [sm(p) for p in seq]

    def jitter(frames):  # RMS frame-to-frame change of the shifts, after the filter settled
        s = np.stack([f["shift"] for f in frames[50:]])
        return float(np.sqrt((np.diff(s, axis=0) ** 2).mean()))

    ratio = jitter(seq) / jitter(out)
    # An exponential filter with the still α = 1/5 divides the RMS frame-to-frame change of white
    # noise by √((2−α)/α²) ≈ 6.7; the speed term opens the filter a little on noise (4.7 here).
    assert ratio > 3.0, ratio
    # the filtered shifts stay near the truth (no drift)
    assert np.abs(np.mean([f["shift"] for f in out[50:]], 0) - base["shift"]).max() < 0.0005
    # covar blended with the same weight: still symmetric positive definite
    c = out[-1]["covar"]
    np.testing.assert_allclose(c, np.swapaxes(c, -1, -2), atol=1e-7)
    assert (np.linalg.eigvalsh(c) > 0).all()


def test_a_moving_driver_is_followed_with_little_lag():
    rng = np.random.default_rng(3)
    base = _params(rng)
    sm = RegionSmoother(4.0)
    speed = 0.01  # normalised units per frame: the demo clip's median region speed
    outs, ins = [], []
    for t in range(60):
        p = {k: v.copy() for k, v in base.items()}
        p["shift"] = p["shift"] + speed * t
        ins.append(p["shift"])
        outs.append(sm(p)["shift"])
    lag_frames = float(np.mean(ins[-1] - outs[-1])) / speed
    # a plain exponential filter with the still α (1/5) would lag 4 frames; the speed term cuts it
    assert 0 <= lag_frames < 1.0, lag_frames  # 0.27 here


def test_reset_makes_the_next_frame_pass_through():
    rng = np.random.default_rng(4)
    a, b = _params(rng), _params(rng)
    sm = RegionSmoother(3.0)
    sm(a)
    assert not np.array_equal(sm(b)["shift"], b["shift"])
    sm.reset()
    np.testing.assert_array_equal(sm(b)["shift"], b["shift"])


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "x", None, True])
def test_bad_strength(bad):
    with pytest.raises(InputError, match="smoothing: expected a number ≥ 0"):
        RegionSmoother(bad)


# --- through the Animator, with the bundled demo model ------------------------------------------


def _clip(frame: np.ndarray, n: int, noise: float, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(frame.astype(np.float32) + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)
            if noise else frame.copy() for _ in range(n)]


def test_still_clip_is_unchanged_by_smoothing(demo_model, demo_source, demo_frames):
    from jamsdk.runtime.animator import Animator

    clip = _clip(demo_frames[5], 6, 0)
    results = {}
    for s in (0.0, 3.0):
        with Animator(demo_model, backend="onnxruntime", threads=1, smoothing=s) as anim:
            anim.set_source(demo_source)
            results[s] = [anim.run(f) for f in clip]
    for a, b in zip(results[0.0], results[3.0]):
        np.testing.assert_array_equal(a, b)


def test_smoothing_reduces_output_jitter_and_resets(demo_model, demo_source, demo_frames):
    from jamsdk.runtime.animator import Animator

    clip = _clip(demo_frames[5], 14, 6.0, seed=1)  # a still driver seen through sensor noise
    jitter = {}
    for s in (0.0, 4.0):
        with Animator(demo_model, backend="onnxruntime", threads=1, smoothing=s) as anim:
            anim.set_source(demo_source)
            anim.keep_regions = True
            outs = np.stack([anim.run(f).astype(np.float32) for f in clip])
            jitter[s] = float(np.abs(np.diff(outs[4:], axis=0)).mean())
            if s:
                raw = anim._backends["region_predictor"].run({"image": _model_input(anim, clip[0])})
                anim.reset()
                anim.run(clip[0])  # after reset the first frame passes unfiltered
                np.testing.assert_array_equal(anim.last_regions["driving"]["shift"], raw["shift"])
                anim.run(clip[1])
                anim.set_source(demo_source)
                anim.run(clip[0])  # so does the first after a new source
                np.testing.assert_array_equal(anim.last_regions["driving"]["shift"], raw["shift"])
    assert jitter[0.0] / jitter[4.0] > 1.5, jitter


def _model_input(anim, frame):
    from jamsdk.runtime.frames import to_model_input

    return to_model_input(frame, anim.image_size)


@pytest.mark.parametrize("smoothing", [2.0, 0.0])  # 0: set_reference feeds the device's relative step
def test_device_pipeline_smooths_records_and_takes_references_like_onnxruntime(tiny_jam, tmp_path, monkeypatch,
                                                                            smoothing):
    """The smoothing/region host steps and set_reference on the TensorRT device path (CUDA stand-in)."""
    from cuda_standin import install, make_engine_dir
    from rt_samples import driving_frames, source_image

    from jamsdk.runtime.animator import Animator

    install(monkeypatch)
    engines = make_engine_dir(tiny_jam[1], tmp_path / "model")
    frames = driving_frames(6)
    results = []
    for folder, backend in ((engines, "tensorrt"), (tiny_jam[1], "onnxruntime")):
        with Animator(folder, backend=backend, threads=1, smoothing=smoothing, cuda_graph=True) as anim:
            anim.set_source(source_image())
            outs = [anim.run(frames[0]), anim.run(frames[1])]
            anim.keep_regions = True  # a different plan (and CUDA graph) from here on
            outs += [anim.run(frames[2]), anim.run(frames[3])]
            regions = anim.last_regions["transferred"]["shift"].copy()
            anim.keep_regions = False
            anim.set_reference(frames[4])  # written into the device's reference slots
            outs += [anim.run(frames[4]), anim.run(frames[5])]
            results.append((np.stack(outs), regions))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
