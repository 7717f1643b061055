"""Hostile pictures: sizes read from headers before decoding, the pixel limit on every reader, and
one-line errors (jamsdk.image_header, jamsdk.pictures, jamsdk.video)."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from jamsdk.errors import InputError
from jamsdk.image_header import (
    DEFAULT_MAX_PIXELS,
    check_image_bytes,
    declared_size,
    max_pixels,
    set_max_pixels,
)
from jamsdk.pictures import decode_bytes, read_image
from jamsdk.video import iter_frames, probe, read_frames
from jamsdk.video_write import write_video

ROOT = Path(__file__).resolve().parents[1]
IMG = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)


def png_declaring(width: int, height: int, idat: bytes = b"") -> bytes:
    """A PNG whose header declares ``width × height`` (the pixel data is whatever ``idat`` holds)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat or zlib.compress(b"\0" * 4096)) + \
        chunk(b"IEND", b"")


def encoded() -> dict[str, bytes]:
    """The same 53×37 picture in every format the readers accept, from several encoders."""
    from PIL import Image

    out = {}
    for name, ext, params in (("png", ".png", []), ("jpeg", ".jpg", []),
                              ("jpeg-progressive", ".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
                              ("bmp", ".bmp", []), ("webp-lossy", ".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
                              ("webp-lossless", ".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]), ("tiff", ".tiff", []),
                              ("png-gray", ".png", None)):
        ok, buf = cv2.imencode(ext, IMG[:, :, 0] if params is None else IMG, params or [])
        assert ok
        out[name] = buf.tobytes()
    exif = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00"  # metadata makes Pillow write the extended (VP8X) form
    for name, fmt, kw in (("webp-alpha", "WEBP", {"lossless": True}), ("webp-extended", "WEBP", {"exif": exif}),
                          ("gif", "GIF", {}), ("bmp-pil", "BMP", {})):
        buf = io.BytesIO()
        img = Image.fromarray(IMG)
        (img.convert("RGBA") if name == "webp-alpha" else img).save(buf, format=fmt, **kw)
        out[name] = buf.getvalue()
    out["tiff-big-endian"] = _big_endian_tiff(53, 37)
    return out


def _big_endian_tiff(width: int, height: int) -> bytes:
    """A minimal uncompressed big-endian ("MM") RGB TIFF."""
    pixels = bytes(width * height * 3)
    entries = [(256, 3, 1, width), (257, 3, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 2),
               (273, 4, 1, 0), (277, 3, 1, 3), (278, 3, 1, height), (279, 4, 1, len(pixels))]
    ifd_at = 8
    data_at = ifd_at + 2 + 12 * len(entries) + 4
    body = struct.pack(">H", len(entries))
    for tag, kind, count, value in entries:
        value = data_at if tag == 273 else value
        packed = struct.pack(">HI", value, 0)[:4] if kind == 3 else struct.pack(">I", value)
        body += struct.pack(">HHI", tag, kind, count) + packed
    return b"MM\x00*" + struct.pack(">I", ifd_at) + body + b"\x00\x00\x00\x00" + pixels


@pytest.mark.parametrize("name", ["png", "jpeg", "jpeg-progressive", "bmp", "webp-lossy", "webp-lossless", "tiff",
                                  "png-gray", "tiff-big-endian", "webp-alpha", "webp-extended", "gif",
                                  "bmp-pil"])
def test_declared_size_matches_what_opencv_decodes(name):
    data = encoded()[name]
    found = declared_size(data, name)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert img is not None, name
    assert (found.width, found.height) == (img.shape[1], img.shape[0]) == (53, 37)
    # what the decoded bytes limit counts is at least what OpenCV decodes it to
    assert found.channels >= (1 if img.ndim == 2 else img.shape[2]) and found.channel_bytes == img.dtype.itemsize


@pytest.mark.parametrize("ext", [".png", ".tiff"])
@pytest.mark.parametrize("shape,dtype", [((37, 53, 4), np.uint16), ((37, 53), np.uint16), ((37, 53, 4), np.uint8),
                                         ((37, 53, 3), np.uint16)])
def test_declared_depth_and_channels_are_what_opencv_decodes(ext, shape, dtype):
    ok, buf = cv2.imencode(ext, np.zeros(shape, dtype))
    found = declared_size(buf.tobytes())
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    assert (found.channels, found.channel_bytes) == ((1 if img.ndim == 2 else img.shape[2]), img.dtype.itemsize)
    assert found.decoded_bytes == img.nbytes


def test_decoded_bytes_are_limited_not_only_pixels(tmp_path, monkeypatch):
    """The probe's I4: a 49 MP 16-bit RGBA PNG (under 50 MP) cost 2.17 GB. Decoded bytes are limited to
    4 per pixel of the limit: 16-bit RGBA (8 bytes a pixel) over it is refused before decoding; the same
    pixels in 8-bit RGBA (4 bytes), and 16-bit RGBA exactly at the budget, are read."""
    limit = 53 * 37 * 2  # so 53×37 16-bit RGBA is 8 × 1961 = 4 × limit: exactly at the budget
    rgba16 = np.random.default_rng(1).integers(0, 65536, (37, 53, 4), dtype=np.uint16)
    for name, img in (("at.png", rgba16), ("rgba8.png", (rgba16 >> 8).astype(np.uint8))):
        cv2.imwrite(str(tmp_path / name), img)
        assert read_image(tmp_path / name, max_pixels=limit).shape == (37, 53, 3)
    cv2.imwrite(str(tmp_path / "over.png"), np.zeros((37, 54, 4), np.uint16))  # one column more
    calls = []
    monkeypatch.setattr(cv2, "imdecode", lambda *a: calls.append(1))
    with pytest.raises(InputError, match=r"over.png: 54x37 16-bit with 4 channel\(s\) decodes to 15,984 bytes, over "
                                         r"the limit of 15,688 \(4 bytes per pixel of the pixel limit; refused without"):
        read_image(tmp_path / "over.png", max_pixels=limit)
    assert calls == []
    with pytest.raises(InputError, match="decodes to"):
        check_image_bytes((tmp_path / "over.png").read_bytes(), "frame", limit)


def test_16_bit_and_alpha_pictures_convert_exactly_in_bands(tmp_path):
    """16-bit → 8-bit and alpha over white, now without 32-bit and float copies: the same numbers as
    round(x / 257) and round(c·a/255 + 255·(1 − a/255)) for every value."""
    from jamsdk.pixels import to_rgb, to_uint8

    x = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    assert np.array_equal(to_uint8(x), np.round(x / 257.0).astype(np.uint8))
    c, a = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    rgba = np.stack([c, c, c, a], axis=-1).astype(np.uint8)
    want = np.floor(c * (a / 255.0) + 255.0 * (1 - a / 255.0) + 0.5).astype(np.uint8)
    assert np.array_equal(to_rgb(rgba)[:, :, 0], want)
    tall = np.zeros((5000, 300, 4), np.uint8)  # more rows than one band (1 MiB / 300 px ≈ 3495 rows)
    tall[..., 3] = 128
    assert np.array_equal(np.unique(to_rgb(tall)), [127])


def test_the_limit_is_not_off_by_one_and_top_down_bmps_count_their_rows():
    data = encoded()["png"]
    check_image_bytes(data, "x", limit=53 * 37)  # exactly at the limit: read
    with pytest.raises(InputError, match="over the limit of 1,960 pixels"):
        check_image_bytes(data, "x", limit=53 * 37 - 1)
    bottom_up = encoded()["bmp"]
    top_down = bottom_up[:22] + struct.pack("<i", -37) + bottom_up[26:]  # a negative height: rows from the top
    assert declared_size(top_down) == declared_size(bottom_up)
    assert (declared_size(top_down).width, declared_size(top_down).height) == (53, 37)
    assert cv2.imdecode(np.frombuffer(top_down, np.uint8), cv2.IMREAD_UNCHANGED).shape == (37, 53, 3)


def test_a_gif_whose_first_image_is_larger_than_its_screen_counts_the_image():
    """Decoders that grow the canvas decode the image's size, not the screen's (the screen may say 1×1)."""
    gif = encoded()["gif"]
    assert (declared_size(gif).width, declared_size(gif).height) == (53, 37)
    tiny_screen = gif[:6] + struct.pack("<HH", 1, 1) + gif[10:]
    assert (declared_size(tiny_screen).width, declared_size(tiny_screen).height) == (53, 37)
    with pytest.raises(InputError, match="53x37 = 1,961 pixels is over the limit of 100"):
        check_image_bytes(tiny_screen, "x", limit=100)


def test_other_formats_and_garbage_are_refused_before_opencv_sees_them():
    for data in (b"P6\n20000 20000\n255\n", b"#?RADIANCE\n", b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"", b"hello"):
        with pytest.raises(InputError, match="cannot decode as a picture: expected PNG, JPEG, BMP, WebP, TIFF or GIF"):
            check_image_bytes(data, "x")


def test_mutated_headers_give_input_errors_only():
    """Truncated and bit-flipped headers of every format: a typed error or a size, never a crash."""
    rng = np.random.default_rng(7)
    for name, data in encoded().items():
        for _ in range(150):
            cut = bytearray(data[:int(rng.integers(0, min(len(data), 400)))])
            for _ in range(int(rng.integers(0, 4))):
                if cut:
                    cut[int(rng.integers(0, len(cut)))] = int(rng.integers(0, 256))
            try:
                check_image_bytes(bytes(cut), name, limit=10**12)
            except InputError:
                pass


def test_read_image_refuses_over_the_limit_without_decoding(tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_declaring(20000, 20000))
    calls = []
    monkeypatch.setattr(cv2, "imdecode", lambda *a: calls.append(1))
    with pytest.raises(InputError, match=r"bomb.png: 20000x20000 = 400,000,000 pixels is over the limit of "
                                         r"50,000,000 pixels \(refused without decoding; --max-pixels"):
        read_image(bomb)
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), IMG)
    with pytest.raises(InputError, match="53x37 = 1,961 pixels is over the limit of 1,000"):
        read_image(small, max_pixels=1000)
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "1.png").write_bytes(png_declaring(20000, 20000))
    with pytest.raises(InputError, match="over the limit"):
        list(iter_frames(tmp_path / "frames"))
    with pytest.raises(InputError, match="over the limit"):
        probe(tmp_path / "frames")
    assert calls == []


def test_videos_are_checked_at_the_size_their_container_declares(tmp_path):
    clip = tmp_path / "clip.mp4"
    write_video(clip, [IMG[:36, :52]] * 3, fps=5)
    assert read_frames(clip).shape == (3, 36, 52, 3)
    with pytest.raises(InputError, match=r"clip.mp4 \(video frames\): 52x36 = 1,872 pixels is over the limit of 1,000"):
        read_frames(clip, max_pixels=1000)
    with pytest.raises(InputError, match="over the limit"):
        probe(clip, max_pixels=1000)


def test_the_limit_comes_from_the_environment_and_set_max_pixels(monkeypatch):
    monkeypatch.delenv("JAMSDK_MAX_PIXELS", raising=False)
    monkeypatch.delenv("OPENCV_IO_MAX_IMAGE_PIXELS", raising=False)
    assert max_pixels() == DEFAULT_MAX_PIXELS
    monkeypatch.setenv("JAMSDK_MAX_PIXELS", "1000")
    assert max_pixels() == 1000
    monkeypatch.setenv("JAMSDK_MAX_PIXELS", "lots")
    with pytest.raises(InputError, match="JAMSDK_MAX_PIXELS: expected a whole number"):
        max_pixels()
    set_max_pixels(2_000_000_000)  # past OpenCV's cap: its variable follows (child processes read it)
    import os

    assert os.environ["JAMSDK_MAX_PIXELS"] == "2000000000"
    assert os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] == "2000000000"
    with pytest.raises(InputError, match="--max-pixels: expected a whole number"):
        set_max_pixels(0)


def test_opencv_own_cap_is_one_line():
    # 40000² is over OpenCV's 2**30 cap: OpenCV refuses it before allocating (cv2.error).
    with pytest.raises(InputError, match=r"x.png: over OpenCV's own pixel limit \(OPENCV_IO_MAX_IMAGE_PIXELS"):
        decode_bytes(png_declaring(40000, 40000), "x.png")


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    full = {**{k: v for k, v in os.environ.items() if not k.endswith("MAX_IMAGE_PIXELS") and k != "JAMSDK_MAX_PIXELS"},
            **(env or {})}
    return subprocess.run([sys.executable, "-m", "jamsdk", *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env=full)


def test_cli_refuses_a_huge_picture_in_one_line(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_declaring(40000, 40000, zlib.compress(b"\0" * 2_000_000)))
    driving = ROOT / "jamsdk" / "assets" / "example_driving.mp4"
    source = ROOT / "jamsdk" / "assets" / "example_source.png"
    for picture, extra, needle in ((bomb, [], "40000x40000 = 1,600,000,000 pixels is over the limit of 50,000,000"),
                                   (source, ["--max-pixels", "100"], "pixels is over the limit of 100 pixels")):
        r = _cli("animate", "--source", str(picture), "--driving", str(driving), "--out", str(tmp_path / "o.mp4"),
                 "--backend", "onnxruntime", *extra)
        assert r.returncode == 2, r.stderr[-3000:]
        lines = [line for line in r.stderr.strip().splitlines() if "note: " not in line]
        assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
        assert needle in lines[0], lines[0]
    assert not (tmp_path / "o.mp4").exists()
