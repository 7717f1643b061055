"""``jamsdk live --vcam`` with a stand-in ``pyvirtualcam`` module (no virtual camera device here)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from live_helpers import ASSETS, DRIVING

from jamsdk._lazy import install_command
from jamsdk.cli import main


def _fake_pyvirtualcam(fail: str | None = None) -> types.ModuleType:
    mod = types.ModuleType("pyvirtualcam")

    class PixelFormat:
        RGB = "RGB"
        BGR = "BGR"

    class Camera:
        instances: list["Camera"] = []

        def __init__(self, width, height, fps, *, fmt=PixelFormat.RGB, device=None, backend=None):
            if fail:
                raise RuntimeError(fail)
            self.width, self.height, self.fps, self.fmt = width, height, fps, fmt
            self.device = "/dev/video-standin"
            self.sent: list[np.ndarray] = []
            self.closed = False
            Camera.instances.append(self)

        def send(self, frame):
            assert frame.shape == (self.height, self.width, 3) and frame.dtype == np.uint8
            self.sent.append(frame.copy())

        def close(self):
            self.closed = True

    mod.PixelFormat, mod.Camera = PixelFormat, Camera
    return mod


def _live(*extra: str) -> list[str]:
    if not (ASSETS / "demo_model" / "manifest.json").is_file():
        pytest.skip("the bundled demo model is not in this checkout")
    return ["live", "--driving", str(DRIVING), "--port", "0", "--threads", "1", *extra]


def test_vcam_gets_every_frame_in_rgb_then_is_closed(monkeypatch, capsys):
    fake = _fake_pyvirtualcam()
    monkeypatch.setitem(sys.modules, "pyvirtualcam", fake)
    assert main(_live("--vcam", "--max-frames", "4", "--layout", "side-by-side")) == 0
    (cam,) = fake.Camera.instances
    assert (cam.width, cam.height, cam.fmt) == (768, 256, "RGB")
    assert cam.fps == pytest.approx(10.0)  # the example clip's own rate
    assert len(cam.sent) == 4 and cam.closed
    # RGB order: the source panel (left) is the example picture's pink background, red > blue
    corner = cam.sent[0][:20, :20].reshape(-1, 3).mean(0)
    assert corner[0] > corner[2]
    assert "virtual camera /dev/video-standin" in capsys.readouterr().out


def test_vcam_without_pyvirtualcam(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # import fails
    assert main(_live("--vcam", "--max-frames", "1")) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert install_command("vcam") in err


def test_vcam_without_a_device(monkeypatch, capsys):
    msg = "'v4l2loopback' backend: No v4l2 loopback device found at /dev/video[0-99]."
    monkeypatch.setitem(sys.modules, "pyvirtualcam", _fake_pyvirtualcam(fail=msg))
    assert main(_live("--vcam", "--max-frames", "1")) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--vcam: no virtual camera device could be opened" in err and "modprobe v4l2loopback" in err


def test_real_pyvirtualcam_without_a_device(capsys):
    """Where pyvirtualcam is installed but no device exists (as on this project's CI machine)."""
    real = pytest.importorskip("pyvirtualcam")
    try:
        real.Camera(width=64, height=64, fps=10).close()
    except RuntimeError:
        pass
    else:
        pytest.skip("a virtual camera device exists here")
    assert main(_live("--vcam", "--max-frames", "1")) == 2
    assert "no virtual camera device" in capsys.readouterr().err
