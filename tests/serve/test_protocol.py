"""Protocol helpers, limits and the light-import promise (no Ray needed)."""

import re
import subprocess
import sys

import numpy as np
import pytest

from jamsdk._lazy import install_command
from jamsdk.errors import InputError, MissingDependencyError
from jamsdk.serve.protocol import Limits, decode_image, encode_png


def test_png_round_trip_and_decode_errors():
    img = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    np.testing.assert_array_equal(decode_image(encode_png(img), Limits(), "frame 1"), img)
    with pytest.raises(InputError, match="frame 2: cannot decode as a picture: expected PNG, JPEG.* got 3 bytes"):
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
    with pytest.raises(MissingDependencyError, match=re.escape(install_command("ray"))):
        require_ray()


# -- hostile pictures, without Ray: the decoding function the replicas run ------------------------

def _png_declaring(width: int, height: int, size: int = 1_200_000) -> bytes:
    """A real PNG header declaring width × height, then ``size`` bytes of a (truncated) zlib stream."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * (size * 50), 9)[:size]
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def test_declared_size_is_refused_before_decoding(monkeypatch):
    import time
    import tracemalloc

    import cv2

    bomb = _png_declaring(20000, 20000)
    decoded = []
    real = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda *a: decoded.append(1) or real(*a))
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="frame 9: 20000x20000 is larger than the limit of 4096 pixels per side"):
        decode_image(bomb, Limits(), "frame 9")
    with pytest.raises(InputError, match=r"4000x4000 = 16,000,000 pixels is over the limit of 1,000,000"):
        decode_image(_png_declaring(4000, 4000, 1000), Limits(max_pixels=1_000_000), "frame 10")
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert decoded == []  # OpenCV never saw the bytes
    assert seconds < 0.5 and peak < 20 << 20  # microseconds and a copy of the message, not 1.2 GB


def test_message_bytes_and_malformed_headers():
    lim = Limits(max_message_bytes=1000)
    with pytest.raises(InputError, match="frame 1: 1001 bytes is over the limit of 1000 bytes"):
        decode_image(b"\x89PNG" + b"\x00" * 997, lim, "frame 1")
    with pytest.raises(InputError, match="frame 2: cannot decode as a picture: its PNG header is cut short"):
        decode_image(b"\x89PNG\r\n\x1a\n\x00\x00", Limits(), "frame 2")
    with pytest.raises(InputError, match="frame 3: cannot decode as a picture: expected PNG, JPEG"):
        decode_image(b"P6\n20000 20000\n255\n", Limits(), "frame 3")  # PPM: OpenCV would decode it
    with pytest.raises(InputError, match="frame 4: expected a binary message"):
        decode_image("text", Limits(), "frame 4")
    with pytest.raises(InputError, match="max_pixels"):
        Limits(max_pixels=0)


def test_inbox_keeps_at_most_max_pending_and_answers_drops_in_place():
    import asyncio

    from jamsdk.serve.inbox import Closed, Inbox

    async def scenario():
        box = Inbox(max_pending=2)
        box.put("bytes", 0, b"source", droppable=False)
        for seq in range(1, 101):  # a flood of 100 frames while nothing is taken
            box.put("bytes", seq, bytes(1000))
        assert box.waiting == 2 and box.dropped == 99  # the source (never dropped) and the newest frame
        assert (await box.get())[:3] == ["bytes", 0, b"source"]
        assert (await box.get())[:3] == ["dropped", 1, 99]  # one note for the run of dropped frames
        assert (await box.get())[1] == 100
        for seq in range(101, 104):
            box.put("bytes", seq, bytes(10))
        assert [(await box.get())[:3] for _ in range(3)] == [["dropped", 101, 1], ["bytes", 102, bytes(10)],
                                                             ["bytes", 103, bytes(10)]]
        box.end("gone")
        with pytest.raises(Closed, match="gone"):
            await box.get()
        return sum(len(i[2]) for i in box.items if isinstance(i[2], bytes))

    assert asyncio.run(scenario()) == 0


def test_serve_beyond_loopback_needs_a_token_or_the_opt_out():
    import os

    env = {k: v for k, v in os.environ.items() if k != "JAMSDK_TOKEN"}
    r = subprocess.run([sys.executable, "-m", "jamsdk", "serve", "--host", "0.0.0.0", "--port", "0"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--host 0.0.0.0: beyond this machine a token is required" in lines[0], r.stderr
    r = subprocess.run([sys.executable, "-m", "jamsdk", "serve", "--host", "0.0.0.0", "--token", "short"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "--token: expected at least 16" in r.stderr
