"""``jamsdk animate`` / ``demo`` / ``build`` end to end on the tiny model (CPU)."""

import cv2
import numpy as np
import pytest
from rt_samples import driving_frames, source_image

from jamsdk.cli import main
from jamsdk.errors import InputError
from jamsdk.runtime.render import render_video
from jamsdk.video import read_frames
from jamsdk.video_write import write_video


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    write_video(d / "driving.mp4", driving_frames(8, size=80), fps=12)
    cv2.imwrite(str(d / "source.png"), source_image(100)[:, :, ::-1])
    return d


def test_animate_writes_a_video(tiny_jam, inputs, tmp_path, capsys):
    _, model_dir = tiny_jam
    out = tmp_path / "out.mp4"
    rc = main(["animate", "--model", str(model_dir), "--source", str(inputs / "source.png"),
               "--driving", str(inputs / "driving.mp4"), "--out", str(out), "--max-frames", "5", "--no-progress"])
    assert rc == 0
    video = read_frames(out)
    assert video.shape == (5, 64, 64, 3)
    assert video.std() > 1  # not a blank video
    printed = capsys.readouterr().out
    # The output size is said once, with why and how to get the driving frames' size (no separate note).
    assert printed.startswith(f"wrote {out}: 5 frames at 12 fps, 64×64 (the model's resolution; --output-size "
                              "crop: 80×80), onnxruntime, ") and printed.count("\n") == 1
    # The per-stage table only when asked for (it was 9 lines on every run).
    assert main(["animate", "--model", str(model_dir), "--source", str(inputs / "source.png"), "--driving",
                 str(inputs / "driving.mp4"), "--out", str(out), "--max-frames", "2", "--no-progress",
                 "--stats"]) == 0
    table = capsys.readouterr().out.splitlines()[1:]
    assert table[0].split()[:3] == ["stage", "count", "mean"] and any(r.startswith("generator ") for r in table)


def test_animate_gif_with_mode_and_fps(tiny_jam, inputs, tmp_path):
    _, model_dir = tiny_jam
    out = tmp_path / "out.gif"
    result = render_video(model_dir, inputs / "source.png", str(inputs / "driving.mp4"), out, mode="avd",
                          fps=5, show_progress=False)
    assert result.frames == 8 and result.fps == 5 and result.backend == "onnxruntime"
    assert read_frames(out).shape == (8, 64, 64, 3)


@pytest.mark.parametrize("content", [b"", b"definitely not a video"])
def test_empty_or_unreadable_video_loses_nothing(tiny_jam, inputs, tmp_path, content, capsys):
    _, model_dir = tiny_jam
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous result")
    with pytest.raises(InputError, match="bad.mp4"):
        render_video(model_dir, inputs / "source.png", str(bad), out, show_progress=False)
    rc = main(["animate", "--model", str(model_dir), "--source", str(inputs / "source.png"),
               "--driving", str(bad), "--out", str(out), "--no-progress"])
    assert rc == 2
    assert "jamsdk animate: error:" in capsys.readouterr().err
    assert out.read_bytes() == b"previous result"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4", "out.mp4"]  # no temporary left


def test_bad_source_and_output_extension(tiny_jam, inputs, tmp_path):
    _, model_dir = tiny_jam
    (tmp_path / "broken.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(InputError, match="cannot decode"):
        render_video(model_dir, tmp_path / "broken.png", str(inputs / "driving.mp4"), tmp_path / "o.mp4",
                     show_progress=False)
    with pytest.raises(InputError, match="expected a .mp4"):
        render_video(model_dir, inputs / "source.png", str(inputs / "driving.mp4"), tmp_path / "o.webm",
                     show_progress=False)
    assert not (tmp_path / "o.mp4").exists()


def test_demo_without_bundled_model_is_a_clear_error(monkeypatch, tmp_path, capsys):
    import jamsdk.commands.demo as demo

    monkeypatch.setattr(demo, "DEMO_MODEL", tmp_path / "demo_model")
    rc = main(["demo", "--out", str(tmp_path / "demo.mp4")])
    assert rc == 2
    assert "bundled demo model is missing" in capsys.readouterr().err
    assert not (tmp_path / "demo.mp4").exists()


def test_demo_with_a_model(monkeypatch, tiny_jam, inputs, tmp_path):
    import jamsdk.commands.demo as demo

    monkeypatch.setattr(demo, "DEMO_MODEL", tiny_jam[1])
    monkeypatch.setattr(demo, "DEMO_SOURCE", inputs / "source.png")
    monkeypatch.setattr(demo, "DEMO_DRIVING", inputs / "driving.mp4")
    out = tmp_path / "demo.mp4"
    assert main(["demo", "--out", str(out), "--max-frames", "3", "--no-progress"]) == 0
    assert read_frames(out).shape == (3, 64, 64, 3)


def test_build_without_gpu_is_a_clear_error(tiny_jam, capsys):
    from jamsdk.runtime import _cuda

    if _cuda.gpu_info() is not None:
        pytest.skip("a GPU answers here; the gpu tests cover building")
    assert main(["build", "--model", str(tiny_jam[1])]) == 2
    assert "needs an NVIDIA GPU" in capsys.readouterr().err


def test_progress_counter_without_tqdm():
    import io

    from jamsdk.runtime.progress import progress

    stream = io.StringIO()
    with progress(3, desc="x", stream=stream, use_tqdm=False) as bar:
        for _ in range(3):
            bar.update(1)
    assert "x: 3/3 frames" in stream.getvalue()
    assert np.isfinite(float(stream.getvalue().split()[-2]))


@pytest.fixture()
def fresh_notice(monkeypatch):
    from jamsdk import bundled

    monkeypatch.setattr(bundled, "_notice_given", False)


def test_animate_without_model_runs_the_demo_model_and_says_so(fresh_notice, inputs, tmp_path, capsys):
    from jamsdk.bundled import DEMO_NOTICE

    wide = tmp_path / "wide.mp4"
    write_video(wide, [np.pad(f, ((0, 0), (10, 10), (0, 0))) for f in driving_frames(3, size=80)], fps=12)
    out = tmp_path / "new" / "folder" / "out.mp4"  # a missing folder is created
    rc = main(["animate", "--source", str(inputs / "source.png"), "--driving", str(wide), "--out", str(out),
               "--output-size", "crop", "--threads", "1", "--max-frames", "2", "--no-progress"])
    assert rc == 0
    assert read_frames(out).shape == (2, 80, 80, 3)  # the 100×80 frames' centred square, not the model's 128
    captured = capsys.readouterr()
    assert captured.out.startswith(f"wrote {out}: 2 frames at 12 fps, 80×80, onnxruntime")  # no size note
    err = captured.err.splitlines()
    assert f"jamsdk animate: note: {DEMO_NOTICE}" in err
    crop = [line for line in err if "100×80 (W×H)" in line]
    assert len(crop) == 1 and "centred 80×80 square" in crop[0] and "10 px each cut from the left and right" in crop[0] and "--fit pad" in crop[0]
    assert not any("source picture" in line for line in err)  # the 100×100 source is square


def test_animate_model_demo_and_output_size_n(fresh_notice, inputs, tmp_path, capsys):
    import json

    out = tmp_path / "out.gif"
    rc = main(["animate", "--model", "demo", "--source", str(inputs / "source.png"), "--driving",
               str(inputs / "driving.mp4"), "--out", str(out), "--output-size", "48", "--max-frames", "2",
               "--no-progress", "--json", str(tmp_path / "r.json")])
    assert rc == 0 and read_frames(out).shape == (2, 48, 48, 3)
    assert "note: demo model jam-demo-128" in capsys.readouterr().err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["model"] == "jam-demo-128" and report["size"] == [48, 48] and report["frames"] == 2


@pytest.mark.parametrize("value", ["0", "-3", "big", "1.5"])
def test_bad_output_size_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["animate", "--source", "s.png", "--driving", "d.mp4", "--out", "o.mp4", "--output-size", value])
    assert exit_info.value.code == 2 and "--output-size" in capsys.readouterr().err


def test_fit_pad_keeps_everything_and_the_source_aspect(tiny_jam, inputs, tmp_path, capsys):
    wide_source = tmp_path / "wide.png"
    cv2.imwrite(str(wide_source), np.pad(source_image(100), ((0, 0), (25, 25), (0, 0)), mode="edge")[:, :, ::-1])
    tall = tmp_path / "tall.mp4"
    write_video(tall, [np.pad(f, ((10, 10), (0, 0), (0, 0))) for f in driving_frames(3, size=80)], fps=12)
    out = tmp_path / "out.mp4"
    rc = main(["animate", "--model", str(tiny_jam[1]), "--source", str(wide_source), "--driving", str(tall),
               "--out", str(out), "--fit", "pad", "--output-size", "150", "--no-progress"])
    assert rc == 0
    video = read_frames(out)
    assert video.shape == (3, 100, 150, 3)  # the 150×100 source's aspect: the 150² square without the padding
    captured = capsys.readouterr()
    assert "150×100" in captured.out
    err = captured.err
    assert "the source picture: 150×100 (W×H), padded to a square" in err and "cut" not in err
    assert main(["animate", "--model", str(tiny_jam[1]), "--source", str(wide_source), "--driving", str(tall),
                 "--out", str(out), "--max-frames", "1", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "the source picture: 150×100 (W×H), only the centred 100×100 square" in err and "--fit pad" in err
    assert "the driving frames: 80×100 (W×H)" in err and "cut from the top and bottom" in err


def test_tensorrt_on_a_machine_without_a_gpu_says_so_first(monkeypatch, inputs, tmp_path, capsys):
    # No GPU and no driver, whatever this machine has; the bundled folder has no engines either,
    # but the machine is what the user must hear about (a build command could not run here).
    from jamsdk.runtime import _cuda, cudaenv

    monkeypatch.setattr(_cuda, "_probe", lambda: (None, "no CUDA binding imports"))
    monkeypatch.setattr(cudaenv, "driver_cuda_version", lambda: (None, "none found (libcuda.so.1 does not load)"))
    out = tmp_path / "out.mp4"
    assert main(["animate", "--backend", "tensorrt", "--source", str(inputs / "source.png"),
                 "--driving", str(inputs / "driving.mp4"), "--out", str(out), "--no-progress"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert errors == ["jamsdk animate: error: backend 'tensorrt' cannot run on this machine: no usable NVIDIA GPU "
                      "(no NVIDIA driver: none found (libcuda.so.1 does not load)); backend 'onnxruntime' (or "
                      "'auto') runs here"]
    assert not out.exists()


def test_no_engines_on_a_gpu_machine_names_a_build_that_works(monkeypatch, tiny_jam):
    # A GPU answers but the folder has no engines: then the build command is the advice, and for
    # the bundled folder it builds into a copy (build refuses to write into the installed package).
    from jamsdk.bundled import DEMO_MODEL_DIR
    from jamsdk.errors import ManifestError
    from jamsdk.manifest import load_manifest
    from jamsdk.runtime.backends import TensorRTBackend

    monkeypatch.setattr(TensorRTBackend, "machine_problem", classmethod(lambda cls: ""))
    from jamsdk.runtime.animator import Animator

    with pytest.raises(ManifestError, match="no engines built yet; build them where they will run: jamsdk build "
                                            r"--model demo --out demo-engines \(then run it with --model demo-engines\)"):
        Animator(DEMO_MODEL_DIR, backend="tensorrt")
    _, model_dir = tiny_jam
    with pytest.raises(ManifestError, match=f"jamsdk build --model {model_dir}$"):
        load_manifest(model_dir).engine_file("generator")


def test_a_still_picture_as_driving_input_is_refused(tiny_jam, inputs, tmp_path, capsys):
    # Swapped options: the picture where the video belongs would make a one-frame "animation".
    _, model_dir = tiny_jam
    out = tmp_path / "out.mp4"
    assert main(["animate", "--model", str(model_dir), "--source", str(inputs / "source.png"),
                 "--driving", str(inputs / "source.png"), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"--driving {inputs / 'source.png'}: expected a video" in err and "got a still picture" in err
    assert "swap --source and --driving" in err and err.count("\n") == 1
    assert not out.exists()


def test_notes_say_what_was_chosen_and_what_is_written(tiny_jam, tmp_path, capsys):
    # A wide picture padded and shown side by side, --best-frame, and driving frames larger than the model.
    _, model_dir = tiny_jam
    cv2.imwrite(str(tmp_path / "wide.png"), source_image(100)[:, :80][:, :, ::-1].repeat(2, axis=1))
    write_video(tmp_path / "big.mp4", driving_frames(5, size=160), fps=10)
    assert main(["animate", "--model", str(model_dir), "--source", str(tmp_path / "wide.png"), "--driving",
                 str(tmp_path / "big.mp4"), "--out", str(tmp_path / "o.mp4"), "--fit", "pad", "--layout",
                 "side-by-side", "--best-frame", "--no-progress"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: ")]
    assert any("padded to a square" in n and "side-by-side panels show the padded squares" in n for n in notes)
    assert not any("keeps its aspect ratio" in n for n in notes)  # three square panels are written
    best = [n for n in notes if n.startswith("note: --best-frame: the reference is driving frame ")]
    assert len(best) == 1 and int(best[0].split("driving frame ")[1].split()[0]) in range(1, 6)
    assert not any("resolution" in n for n in notes)  # said once, with the result (below)
    assert read_frames(tmp_path / "o.mp4").shape[1:3] == (64, 192)


def _jamsdk(*argv: str) -> "subprocess.CompletedProcess":
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "jamsdk", *argv], capture_output=True, text=True, timeout=300)


def test_library_output_is_hidden_unless_verbose(inputs, tmp_path):
    # FFmpeg (inside OpenCV) reports a broken MP4 on its own before jamsdk's error about the same file.
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    argv = ("animate", "--source", str(inputs / "source.png"), "--driving", str(tmp_path / "broken.mp4"),
            "--out", str(tmp_path / "o.mp4"), "--no-progress")
    quiet = _jamsdk(*argv)
    assert quiet.returncode == 2
    assert quiet.stderr.splitlines() == [f"jamsdk animate: error: {tmp_path / 'broken.mp4'}: cannot open (corrupt, "
                                         "empty or unsupported video)"], quiet.stderr
    loud = _jamsdk(*argv, "--verbose")
    assert loud.returncode == 2 and loud.stderr.splitlines()[-1] == quiet.stderr.splitlines()[-1]
    assert len(loud.stderr.splitlines()) > 1, loud.stderr  # what was hidden is there with --verbose


def test_a_clean_demo_run_prints_only_jamsdk_lines(tmp_path):
    proc = _jamsdk("demo", "--out", str(tmp_path / "demo.mp4"), "--no-progress", "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    foreign = [line for line in proc.stderr.splitlines() if not line.startswith(("jamsdk demo: note: ", "note: "))]
    assert foreign == [], proc.stderr
    assert proc.stdout.startswith(f"wrote {tmp_path / 'demo.mp4'}: 40 frames")


def test_a_missing_camera_is_reported_as_one(inputs, tmp_path, capsys):
    # Was "camera 7: cannot open (corrupt, empty or unsupported video)".
    rc = main(["animate", "--source", str(inputs / "source.png"), "--driving", "7", "--out",
               str(tmp_path / "o.mp4"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "camera 7 does not open: no camera at index 7 here" in err and "corrupt" not in err, err
    assert not (tmp_path / "o.mp4").exists()
    # The neighbour: a broken video file is still called corrupt.
    (tmp_path / "7.mp4").write_bytes(b"not a video")
    with pytest.raises(InputError, match="7.mp4: cannot open \\(corrupt"):
        render_video("demo", inputs / "source.png", str(tmp_path / "7.mp4"), tmp_path / "o.mp4", show_progress=False)
