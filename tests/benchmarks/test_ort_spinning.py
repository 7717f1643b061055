"""Smoke test of benchmarks/ort_spinning.py on the bundled demo model (the real run adds jam-256)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

# benchmarks/ is a folder of scripts, not a package: its modules import as top-level modules.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import ort_spinning  # noqa: E402


def test_demo_both_settings_and_only_the_setting_differs(tmp_path, capsys):
    js = tmp_path / "s.json"
    assert ort_spinning.main(["--models", "demo", "--rounds", "1", "--frames", "1", "--threads", "1",
                              "--json", str(js)]) == 0
    r = json.loads(js.read_text())["models"]["demo"]
    assert set(r["frame_ms"]) == {"off", "on"} and all(v > 0 for v in r["frame_ms"].values())
    assert r["off_over_on_frame"] == pytest.approx(r["frame_ms"]["off"] / r["frame_ms"]["on"])
    assert "**off / on**" in capsys.readouterr().out
    # the two Animators really differ in that one session option
    key = "session.intra_op.allow_spinning"
    folder = ort_spinning.model_folder("demo", tmp_path)
    for spinning, want in ((True, "1"), (False, "0")):
        anim = ort_spinning.open_animator(folder, spinning, 1)
        try:
            backend = next(b for b in anim._backends.values() if hasattr(b, "_session"))
            assert backend._session.get_session_options().get_session_config_entry(key) == want
        finally:
            anim.close()
