"""The Animator on ONNX Runtime against the PyTorch model it was exported from."""

import numpy as np
import pytest
from rt_samples import driving_frames, source_image, to_tensor

import jamsdk
from jamsdk.errors import InputError
from jamsdk.pixels import center_crop_resize

torch = pytest.importorskip("torch")

FRAMES = driving_frames(6)
SOURCE = source_image()


def reference(model, frames, mode):
    with torch.no_grad():
        return model.animate(to_tensor(SOURCE[None]), to_tensor(frames), mode=mode).numpy()


@pytest.mark.parametrize("mode", ["standard", "relative", "avd"])
def test_matches_pytorch_animation(tiny_jam, mode):
    model, model_dir = tiny_jam
    ref = reference(model, FRAMES, mode)
    with jamsdk.Animator(model_dir, mode=mode, threads=1) as anim:
        assert anim.backend == "onnxruntime"
        anim.set_source(SOURCE)
        got = np.concatenate([anim.run_tensor(x[None].numpy()) for x in to_tensor(FRAMES)])
        # The uint8 path: same frames in, the reference quantised the same way out.
        images = [anim.run(f) for f in FRAMES]
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)
    # frames differ from each other, so the comparison is not trivially of a constant output
    assert np.abs(ref[1:] - ref[:1]).max() > 0.05
    # run() continues the same stream (reference frame 0 kept), so it equals frames animated again
    ref_u8 = (np.clip(ref, 0, 1).transpose(0, 2, 3, 1) * 255 + 0.5).astype(np.uint8)
    for img, want in zip(images, ref_u8, strict=True):
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8
        assert np.abs(img.astype(int) - want.astype(int)).max() <= 1


@pytest.mark.parametrize("mode", ["relative", "avd"])
def test_mraa_shaped_model_without_background_stage(tiny_mraa, mode):
    model, model_dir = tiny_mraa
    ref = reference(model, FRAMES, mode)
    with jamsdk.Animator(model_dir, mode=mode, threads=1) as anim:
        assert "bg_motion" not in anim.manifest.stages
        anim.set_source(SOURCE)
        got = np.concatenate([anim.run_tensor(x[None].numpy()) for x in to_tensor(FRAMES)])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)


def test_fp16_graphs_within_fp16_tolerance(tiny_jam):
    model, model_dir = tiny_jam
    ref = reference(model, FRAMES, "relative")
    with jamsdk.Animator(model_dir, precision="fp16", threads=1) as anim:
        anim.set_source(SOURCE)
        got = np.concatenate([anim.run_tensor(x[None].numpy()) for x in to_tensor(FRAMES)])
    err = np.abs(got - ref)
    # ONNX Runtime's CPU computes FP16 graphs in FP32 on FP16-rounded tensors: a storage-only check
    assert err.mean() < 1e-3 and err.max() < 2e-2, (err.mean(), err.max())
    assert err.max() > 0  # really the FP16 graphs


def test_reset_makes_the_next_frame_the_reference(tiny_jam):
    model, model_dir = tiny_jam
    with jamsdk.Animator(model_dir, mode="relative", threads=1) as anim:
        anim.set_source(SOURCE)
        for f in FRAMES[:3]:
            anim.run_tensor(to_tensor(f[None]).numpy())
        anim.reset()
        got = np.concatenate([anim.run_tensor(to_tensor(f[None]).numpy()) for f in FRAMES[3:]])
    np.testing.assert_allclose(got, reference(model, FRAMES[3:], "relative"), atol=1e-4)
    # without the reset the reference would be frame 0, which gives a different animation
    assert np.abs(reference(model, FRAMES, "relative")[3:] - got).max() > 1e-3


def test_any_input_size_is_center_cropped_and_bgr_round_trips(tiny_jam):
    _, model_dir = tiny_jam
    rng = np.random.default_rng(0)
    big = [(rng.random((90, 150, 3)) * 255).astype(np.uint8) for _ in range(2)]
    with jamsdk.Animator(model_dir, threads=1) as a, \
            jamsdk.Animator(model_dir, threads=1, bgr=True, output_size="crop") as b:
        a.set_source(center_crop_resize(SOURCE, 64))
        b.set_source(SOURCE[:, :, ::-1])
        for f in big:
            want = a.run(center_crop_resize(f, 64))
            got = b.run(np.ascontiguousarray(f[:, :, ::-1]))
            assert got.shape == (90, 90, 3)  # "crop": the side of the input's centred square
            back = center_crop_resize(got[:, :, ::-1], 64)
            assert np.abs(back.astype(int) - want.astype(int)).mean() < 6


def test_float_frames_and_output_sizes(tiny_jam):
    _, model_dir = tiny_jam
    with jamsdk.Animator(model_dir, threads=1, output_size=96) as anim:
        anim.set_source(SOURCE.astype(np.float32) / 255)
        out = anim.run(FRAMES[0].astype(np.float64) / 255)
        assert out.shape == (96, 96, 3) and out.dtype == np.uint8


def test_stats_and_lifecycle(tiny_jam):
    _, model_dir = tiny_jam
    anim = jamsdk.Animator(model_dir, threads=1)
    with pytest.raises(InputError, match="set_source"):
        anim.run(FRAMES[0])
    anim.set_source(SOURCE)
    for f in FRAMES[:4]:
        anim.run(f)
    stats = anim.stats()
    for key in ("region_predictor", "dense_motion", "generator", "frame", "preprocess", "postprocess"):
        assert stats[key]["count"] == 4
        assert 0 < stats[key]["p50_ms"] <= stats[key]["p90_ms"]
        assert stats[key]["mean_ms"] > 0
    assert stats["generator_encoder"]["count"] == 1 and stats["source"]["count"] == 1
    assert "avd" not in stats  # relative mode never runs the avd stage
    assert stats["frame"]["mean_ms"] >= stats["generator"]["mean_ms"]
    table = anim.stats_table().splitlines()
    assert table[0].split() == ["stage", "count", "mean", "ms", "p50", "ms", "p90", "ms"]
    rows = {line.split()[0]: line.split()[1:] for line in table[1:]}
    assert set(rows) == set(stats) and rows["generator"][0] == "4"
    assert float(rows["generator"][2]) == pytest.approx(stats["generator"]["p50_ms"], abs=1e-3)
    anim.close()
    anim.close()  # twice is fine
    with pytest.raises(InputError, match="closed"):
        anim.run(FRAMES[0])


def test_lazy_top_level_export():
    from jamsdk.runtime.animator import Animator

    assert jamsdk.Animator is Animator


def test_new_source_mid_stream_gets_its_own_movement_scale(tiny_jam):
    """set_source keeps the driving reference but recomputes the relative mode's movement scale:
    the stream then animates the new source exactly as a fresh Animator given the same reference."""
    _, model_dir = tiny_jam
    first, second = SOURCE, center_crop_resize(source_image(128, seed=7)[16:80, 40:104], 64)
    with jamsdk.Animator(model_dir, mode="relative", threads=1) as anim, \
            jamsdk.Animator(model_dir, mode="relative", threads=1) as fresh:
        anim.set_source(first)
        anim.run(FRAMES[0])  # the reference, with the first source's scale
        anim.run(FRAMES[2])
        anim.set_source(second)
        got = [anim.run(f) for f in FRAMES[3:]]
        fresh.set_source(second)
        fresh.run(FRAMES[0])
        want = [fresh.run(f) for f in FRAMES[3:]]
        # the two sources' scales really differ, so keeping the old one would show
        from jamsdk.runtime import regions

        scales = [regions.relative_scale(a._source, a._initial) for a in (fresh,)]
        anim.set_source(first)
        assert abs(float(regions.relative_scale(anim._source, anim._initial)) - float(scales[0])) > 0.05
    assert all(np.array_equal(g, w) for g, w in zip(got, want))


def test_onnxruntime_pools_do_not_spin_unless_asked(tiny_jam):
    """Each stage is its own session: an idle pool spinning would take the next stage's cores."""
    from jamsdk.manifest import load_manifest
    from jamsdk.runtime.backends.onnxruntime import OnnxRuntimeBackend

    key = "session.intra_op.allow_spinning"
    m = load_manifest(tiny_jam[1])
    with OnnxRuntimeBackend.from_manifest(m, "generator", {"threads": 2}) as b:
        assert b._session.get_session_options().get_session_config_entry(key) == "0"
    e = m.stage("generator")
    from jamsdk.stages import Stage

    with OnnxRuntimeBackend(Stage("generator", e.per, e.inputs, e.outputs), m.stage_file("generator"),
                            threads=2, spinning=True) as b:
        assert b._session.get_session_options().get_session_config_entry(key) == "1"
