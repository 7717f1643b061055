"""A picture's declared size, read from its header before anything is decoded, and the pixel limit.

A 1 MB PNG may declare 20000×20000 pixels: decoding it takes gigabytes and seconds. Every reader of
pictures (:func:`jamsdk.pictures.read_image`, video frames, ``live``, ``serve`` frames, ``batch`` rows)
first calls :func:`check_image_bytes`, which parses the header of the formats jamsdk reads (PNG, JPEG,
BMP, WebP, TIFF, GIF), refuses any other bytes (OpenCV would otherwise sniff and decode JPEG 2000,
AVIF, HDR, PFM, … whatever the file is called), and refuses a declared size over the limit, all
without decoding a pixel.

The limit is :data:`DEFAULT_MAX_PIXELS` unless raised: ``--max-pixels N`` on the command line,
:func:`set_max_pixels` in Python, or the environment variable ``JAMSDK_MAX_PIXELS`` (which
:func:`set_max_pixels` also sets, so processes started afterwards, such as a local Ray's workers,
inherit it). Torch-free and OpenCV-free.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from jamsdk.errors import InputError

#: 50 megapixels: an 8K frame (33 MP) or a large phone photo fits; decoded as RGB it is ≈ 150 MB.
DEFAULT_MAX_PIXELS = 50_000_000
ENV = "JAMSDK_MAX_PIXELS"
#: OpenCV's own decoder cap (``CV_IO_MAX_IMAGE_PIXELS``, imgcodecs/src/loadsave.cpp) and its variable.
OPENCV_MAX_PIXELS = 1 << 30
OPENCV_ENV = "OPENCV_IO_MAX_IMAGE_PIXELS"
FORMATS = ("PNG", "JPEG", "BMP", "WebP", "TIFF", "GIF")


@dataclass(frozen=True)
class Declared:
    """What a header says: the format and the size in pixels."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def max_pixels() -> int:
    """The current pixel limit: ``JAMSDK_MAX_PIXELS`` when set, else :data:`DEFAULT_MAX_PIXELS`.

    Raises:
        InputError: ``JAMSDK_MAX_PIXELS`` is set but is not a whole number ≥ 1.
    """
    raw = os.environ.get(ENV)
    if raw is None or not raw.strip():
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw.strip().replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(f"{ENV}: expected a whole number of pixels ≥ 1, got {raw!r}")
    return value


def set_max_pixels(limit: int) -> None:
    """Raise (or lower) the pixel limit for this process and the processes it starts later.

    Past OpenCV's own cap (2**30 pixels) it also sets ``OPENCV_IO_MAX_IMAGE_PIXELS`` unless the
    user did: OpenCV reads that variable once, at its first decode, so call this before reading.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InputError(f"--max-pixels: expected a whole number ≥ 1, got {limit!r}")
    os.environ[ENV] = str(limit)
    if limit > OPENCV_MAX_PIXELS and OPENCV_ENV not in os.environ:
        os.environ[OPENCV_ENV] = str(limit)


def check_pixels(width: int, height: int, what: str, limit: int | None = None, max_side: int | None = None) -> None:
    """InputError when ``width × height`` is over the pixel limit (or a side over ``max_side``)."""
    limit = max_pixels() if limit is None else limit
    if width < 1 or height < 1:
        raise InputError(f"{what}: declares a size of {width}x{height} pixels (expected both sides ≥ 1)")
    if max_side is not None and max(width, height) > max_side:
        raise InputError(f"{what}: {width}x{height} is larger than the limit of {max_side} pixels per side")
    if width * height > limit:
        raise InputError(f"{what}: {width}x{height} = {width * height:,} pixels is over the limit of {limit:,} "
                         "pixels (refused without decoding; --max-pixels N or JAMSDK_MAX_PIXELS raises it)")


def check_image_bytes(data: bytes | bytearray | memoryview, what: str, limit: int | None = None,
                      max_side: int | None = None) -> Declared:
    """The declared format and size of encoded picture ``data``, checked against the limits.

    Raises:
        InputError: not one of :data:`FORMATS`, a header that is cut short or declares no size, or
            a size over the limits.
    """
    found = declared_size(data, what)
    check_pixels(found.width, found.height, what, limit, max_side)
    return found


def declared_size(data: bytes | bytearray | memoryview, what: str = "picture") -> Declared:
    """Parse the header of a PNG, JPEG, BMP, WebP, TIFF or GIF; decodes nothing.

    Raises:
        InputError: another format, or a header that is cut short or malformed.
    """
    buf = data if isinstance(data, bytes) else bytes(data)
    parse = next((parse for magic, parse in _PARSERS if buf.startswith(magic)), None)
    if parse is None:
        got = (f"{len(buf)} bytes of another format, starting {buf[:8].hex(' ')}" if buf else "no bytes")
        raise InputError(f"{what}: cannot decode as a picture: expected {', '.join(FORMATS[:-1])} or {FORMATS[-1]} "
                         f"data, got {got}")
    try:
        return parse(buf)
    except (struct.error, IndexError, ValueError):
        raise InputError(f"{what}: cannot decode as a picture: its {parse.__name__[1:].upper()} header is cut "
                         f"short or malformed ({len(buf)} bytes), so its size is unknown") from None


def _png(b: bytes) -> Declared:
    if b[12:16] != b"IHDR":
        raise ValueError("no IHDR")
    w, h = struct.unpack(">II", b[16:24])
    return Declared("PNG", w, h)


# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg(b: bytes) -> Declared:
    i = 2
    while True:
        while b[i] != 0xFF:  # tolerate stray bytes between segments, as libjpeg does
            i += 1
        while b[i] == 0xFF:  # fill bytes
            i += 1
        marker = b[i]
        i += 1
        if marker == 0xD8 or marker == 0x01 or 0xD0 <= marker <= 0xD7:
            continue  # no length field
        if marker in (0xD9, 0xDA):
            raise ValueError("image data before any frame header")
        (length,) = struct.unpack(">H", b[i:i + 2])
        if marker in _SOF:
            h, w = struct.unpack(">HH", b[i + 3:i + 7])
            if h == 0:  # the height comes later, in a DNL segment, which libjpeg does not support
                raise ValueError("height 0")
            return Declared("JPEG", w, h)
        if length < 2:
            raise ValueError("bad segment length")
        i += length


def _bmp(b: bytes) -> Declared:
    (header,) = struct.unpack("<I", b[14:18])
    if header == 12:  # OS/2 BITMAPCOREHEADER
        w, h = struct.unpack("<HH", b[18:22])
    else:
        w, h = struct.unpack("<ii", b[18:26])
    return Declared("BMP", w, abs(h))  # a negative height means top-down rows


def _webp(b: bytes) -> Declared:
    if b[8:12] != b"WEBP":
        raise ValueError("RIFF but not WebP")
    chunk = b[12:16]
    if chunk == b"VP8 ":
        if b[23:26] != b"\x9d\x01\x2a":
            raise ValueError("no VP8 start code")
        w, h = struct.unpack("<HH", b[26:30])
        return Declared("WebP", w & 0x3FFF, h & 0x3FFF)
    if chunk == b"VP8L":
        if b[20] != 0x2F:
            raise ValueError("no VP8L signature")
        (bits,) = struct.unpack("<I", b[21:25])
        return Declared("WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        if len(b) < 30:
            raise ValueError("short")
        w = int.from_bytes(b[24:27], "little") + 1
        h = int.from_bytes(b[27:30], "little") + 1
        return Declared("WebP", w, h)
    raise ValueError(f"unknown WebP chunk {chunk!r}")


def _tiff(b: bytes) -> Declared:
    # The first image file directory (IFD) is the picture OpenCV decodes; tags 256/257 are its size.
    end = "<" if b[:2] == b"II" else ">"
    (version,) = struct.unpack(end + "H", b[2:4])
    if version == 42:
        (offset,) = struct.unpack(end + "I", b[4:8])
        (count,) = struct.unpack(end + "H", b[offset:offset + 2])
        entries, size, head, field = offset + 2, 12, end + "HHI", 8
    elif version == 43:  # BigTIFF
        (offset,) = struct.unpack(end + "Q", b[8:16])
        (count,) = struct.unpack(end + "Q", b[offset:offset + 8])
        entries, size, head, field = offset + 8, 20, end + "HHQ", 12
    else:
        raise ValueError("not TIFF")
    found = {}
    for k in range(min(count, 4096)):
        at = entries + k * size
        tag, kind, _n = struct.unpack(head, b[at:at + field])
        if tag in (256, 257):
            value = b[at + field:at + size]
            fmt = {3: "H", 4: "I", 16: "Q"}.get(kind)
            if fmt is None:
                raise ValueError(f"size tag of type {kind}")
            (found[tag],) = struct.unpack(end + fmt, value[:struct.calcsize(fmt)])
        if len(found) == 2:
            return Declared("TIFF", found[256], found[257])
    raise ValueError("no ImageWidth/ImageLength")


def _gif(b: bytes) -> Declared:
    w, h, flags = struct.unpack("<HHB", b[6:11])
    i = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    # The first image may reach past the logical screen; decoders then grow the canvas.
    while i < len(b):
        block = b[i]
        if block == 0x2C:
            left, top, iw, ih = struct.unpack("<HHHH", b[i + 1:i + 9])
            return Declared("GIF", max(w, left + iw), max(h, top + ih))
        if block != 0x21:
            break
        i += 2
        while b[i]:  # extension sub-blocks
            i += b[i] + 1
        i += 1
    return Declared("GIF", w, h)


_PARSERS = (
    (b"\x89PNG\r\n\x1a\n", _png),
    (b"\xff\xd8", _jpeg),
    (b"BM", _bmp),
    (b"RIFF", _webp),
    (b"II*\x00", _tiff),
    (b"MM\x00*", _tiff),
    (b"II+\x00", _tiff),
    (b"MM\x00+", _tiff),
    (b"GIF87a", _gif),
    (b"GIF89a", _gif),
)

__all__ = ["DEFAULT_MAX_PIXELS", "Declared", "FORMATS", "check_image_bytes", "check_pixels", "declared_size",
           "max_pixels", "set_max_pixels"]
