"""A batch row with a hostile picture fails alone, refused before decoding (no Ray needed: the
actor's row function is called directly)."""

import struct
import time
import zlib
from pathlib import Path

import numpy as np

from jamsdk.bundled import resolve_model
from jamsdk.video_write import write_video


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    body = zlib.compress(b"\0" * 50_000_000, 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


class _Bundle:  # the model as an actor sees it: a folder on its own node
    def folder(self) -> Path:
        return resolve_model("demo")


def test_row_with_a_picture_over_the_pixel_limit_fails_alone(tmp_path, monkeypatch):
    import hashlib

    import ray

    from jamsdk.scale.actor import RowAnimator

    # The actor asks Ray where it runs; outside an actor that would start a local Ray.
    monkeypatch.setattr(ray, "get_runtime_context", lambda: type("C", (), {"get_node_id": lambda self: "node"})())
    monkeypatch.setattr(ray.util, "get_node_ip_address", lambda: "127.0.0.1")
    monkeypatch.setenv("JAMSDK_MAX_PIXELS", "1000")  # the actor's argument wins; restored after the test
    bomb = _png_declaring(20000, 20000)
    driving = tmp_path / "d.mp4"
    rng = np.random.default_rng(0)
    write_video(driving, [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)], fps=5)
    clip = {"": driving.read_bytes()}
    good = (Path(__file__).resolve().parents[2] / "jamsdk" / "assets" / "example_source.png").read_bytes()
    actor = RowAnimator(_Bundle(), backend="onnxruntime", threads=1, max_pixels=50_000_000)
    try:
        t0 = time.perf_counter()
        bad = actor.animate({"index": 1, "source": "bomb.png", "driving": "d.mp4", "out": "bad.mp4",
                             "mode": "relative"}, bomb, hashlib.sha256(bomb).hexdigest(), clip)
        assert time.perf_counter() - t0 < 30  # refused from the header, not decoded (1.2 GB, seconds)
        assert bad["status"] == "failed" and "20000x20000 = 400,000,000 pixels is over the limit" in bad["error"]
        assert "bomb.png" in bad["error"] and "video" not in bad
        ok = actor.animate({"index": 2, "source": "ok.png", "driving": "d.mp4", "out": "ok.mp4", "mode": "relative"},
                           good, hashlib.sha256(good).hexdigest(), clip)
        assert ok["status"] == "done" and ok["frames"] == 3 and ok["video"]
    finally:
        actor.close()


def test_actor_takes_the_drivers_pixel_limit(monkeypatch):
    """An actor on another node does not inherit the driver's JAMSDK_MAX_PIXELS: it gets it as an argument."""
    import ray

    from jamsdk.image_header import ENV, max_pixels
    from jamsdk.scale.actor import RowAnimator

    monkeypatch.setattr(ray, "get_runtime_context", lambda: type("C", (), {"get_node_id": lambda self: "node"})())
    monkeypatch.setattr(ray.util, "get_node_ip_address", lambda: "127.0.0.1")
    monkeypatch.setenv(ENV, "1000")  # restored (removed) after the test, as the actor changes it
    actor = RowAnimator(_Bundle(), backend="onnxruntime", max_pixels=123_456_789)
    try:
        assert max_pixels() == 123_456_789
    finally:
        actor.close()
