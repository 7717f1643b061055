"""A batch row with a hostile picture fails alone, refused before decoding (no Ray needed: the
actor's row function is called directly)."""

import struct
import time
import zlib
from pathlib import Path

import numpy as np

from jamsdk.bundled import resolve_model
from jamsdk.video import write_video


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    body = zlib.compress(b"\0" * 50_000_000, 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def test_row_with_a_picture_over_the_pixel_limit_fails_alone(tmp_path):
    from jamsdk.scale.offline import RowAnimator

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_declaring(20000, 20000))
    driving = tmp_path / "d.mp4"
    rng = np.random.default_rng(0)
    write_video(driving, [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)], fps=5)
    good = Path(__file__).resolve().parents[2] / "jamsdk" / "assets" / "example_source.png"
    actor = RowAnimator(str(resolve_model("demo")), backend="onnxruntime", threads=1)
    t0 = time.perf_counter()
    bad = actor.animate_row({"index": 1, "source": str(bomb), "driving": str(driving),
                             "out": str(tmp_path / "outs" / "bad.mp4"), "mode": "relative"})
    assert time.perf_counter() - t0 < 30  # refused from the header, not decoded (1.2 GB, seconds)
    assert bad["status"] == "failed" and "20000x20000 = 400,000,000 pixels is over the limit" in bad["error"]
    assert not (tmp_path / "outs" / "bad.mp4").exists()
    ok = actor.animate_row({"index": 2, "source": str(good), "driving": str(driving),
                            "out": str(tmp_path / "outs" / "ok.mp4"), "mode": "relative"})
    assert ok["status"] == "done" and ok["frames"] == 3
