"""Protocol helpers, limits and the light-import promise (no Ray needed)."""

import subprocess
import sys

import numpy as np
import pytest

from jamsdk.errors import InputError, MissingDependencyError
from jamsdk.serve.protocol import Limits, decode_image, encode_png


def test_png_round_trip_and_decode_errors():
    img = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    np.testing.assert_array_equal(decode_image(encode_png(img), Limits(), "frame 1"), img)
    with pytest.raises(InputError, match="frame 2: expected PNG or JPEG bytes, got 3 bytes"):
        decode_image(b"abc", Limits(), "frame 2")
    with pytest.raises(InputError, match="larger than the limit of 16 pixels"):
        decode_image(encode_png(img), Limits(max_side=16), "frame 3")
    with pytest.raises(InputError, match="max_streams"):
        Limits(max_streams=0)


def test_imports_stay_light():
    code = ("import sys, jamsdk.scale, jamsdk.scale.jobs, jamsdk.serve, jamsdk.serve.protocol, "
            "jamsdk.serve.client, jamsdk.runtime.batch\n"
            "from jamsdk.cli import build_parser; build_parser()\n"
            "print(','.join(m for m in ('ray', 'fastapi', 'websockets', 'torch', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_missing_ray_names_the_extra(monkeypatch):
    from jamsdk.scale._ray import require_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    with pytest.raises(MissingDependencyError, match=r'pip install "jamsdk\[ray\]"'):
        require_ray()
