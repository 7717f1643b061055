"""The bundled demo model: name resolution and the once-per-process notice of its scope."""

from __future__ import annotations

import warnings

import pytest

from jamsdk import bundled
from jamsdk.bundled import DEMO_MODEL_DIR, DEMO_NOTICE, DemoModelWarning, is_demo, resolve_model
from jamsdk.errors import InputError


@pytest.fixture()
def fresh_notice(monkeypatch):
    """Forget that the notice was given (it is once per process)."""
    monkeypatch.setattr(bundled, "_notice_given", False)


def test_resolve_model_names_the_bundled_folder():
    assert resolve_model(None) == DEMO_MODEL_DIR
    assert resolve_model("demo") == DEMO_MODEL_DIR
    assert (DEMO_MODEL_DIR / "manifest.json").is_file()
    assert bundled.DEMO_CHECKPOINT.is_file()


def test_resolve_model_passes_paths_and_names_missing_ones(tmp_path):
    assert resolve_model(tmp_path) == tmp_path
    assert resolve_model(str(tmp_path)) == tmp_path
    with pytest.raises(InputError, match=r"nowhere.*does not exist"):
        resolve_model(tmp_path / "nowhere")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        resolve_model(tmp_path / "f.txt")


def test_is_demo(tmp_path):
    assert is_demo(None) and is_demo("demo") and is_demo(DEMO_MODEL_DIR)
    assert is_demo(DEMO_MODEL_DIR / ".." / "demo_model")
    assert not is_demo(tmp_path)


def test_notice_says_what_and_how_in_one_line():
    assert "\n" not in DEMO_NOTICE and len(DEMO_NOTICE) <= 130  # every run prints it: short (was 330)
    for words in ("jam-demo-128", "cartoon", "convert-mraa", "export", "train"):
        assert words in DEMO_NOTICE


def test_warn_if_demo_once_per_process(fresh_notice, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not bundled.warn_if_demo(tmp_path)
        assert bundled.warn_if_demo(DEMO_MODEL_DIR)
        assert bundled.warn_if_demo("demo")
    notes = [w for w in caught if issubclass(w.category, DemoModelWarning)]
    assert len(notes) == 1 and str(notes[0].message) == DEMO_NOTICE


def test_animator_on_demo_warns_once(fresh_notice):
    pytest.importorskip("onnxruntime")
    from jamsdk.runtime.animator import Animator

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Animator("demo", backend="onnxruntime") as anim:
            assert anim.manifest.model_dir.resolve() == DEMO_MODEL_DIR
        with Animator(DEMO_MODEL_DIR, backend="onnxruntime"):
            pass
    notes = [w for w in caught if issubclass(w.category, DemoModelWarning)]
    assert len(notes) == 1
    assert notes[0].filename == __file__  # points at the caller's line, not at jamsdk


def test_the_model_is_recognised_by_content_not_by_folder(tmp_path):
    import json
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(DEMO_MODEL_DIR, copy)
    assert is_demo(copy) and not bundled.is_bundled_folder(copy)  # the note goes with it; build may write here
    other = tmp_path / "other"
    shutil.copytree(DEMO_MODEL_DIR, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["export"]["checkpoint_sha256"] = "0" * 64  # exported from some other checkpoint
    (other / "manifest.json").write_text(json.dumps(manifest))
    assert not is_demo(other)


@pytest.mark.slow
def test_a_re_export_of_demo_pt_elsewhere_carries_the_note(fresh_notice, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from jamsdk.export.pipeline import export_checkpoint
    from jamsdk.runtime.animator import Animator

    export_checkpoint(bundled.DEMO_CHECKPOINT, tmp_path / "mine", precision="fp32", log=lambda _line: None)
    assert is_demo(tmp_path / "mine")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Animator(tmp_path / "mine", backend="onnxruntime", threads=1):
            pass
    assert [str(w.message) for w in caught if issubclass(w.category, DemoModelWarning)] == [DEMO_NOTICE]
