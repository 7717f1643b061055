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
#: decoded bytes allowed per pixel of the limit: an 8-bit RGBA picture at the limit (200 MB at 50 MP);
#: 16-bit or 4-channel pictures count what they decode to, so a 16-bit RGBA one may have 25 MP
BYTES_PER_PIXEL = 4
ENV = "JAMSDK_MAX_PIXELS"
#: OpenCV's own decoder cap (``CV_IO_MAX_IMAGE_PIXELS``, imgcodecs/src/loadsave.cpp) and its variable.
OPENCV_MAX_PIXELS = 1 << 30
OPENCV_ENV = "OPENCV_IO_MAX_IMAGE_PIXELS"
FORMATS = ("PNG", "JPEG", "BMP", "WebP", "TIFF", "GIF")


@dataclass(frozen=True)
class Declared:
    """What a header says: the format, the size in pixels, and the channels and bytes per channel OpenCV
    decodes it to (``IMREAD_UNCHANGED``: 16-bit stays 16-bit, alpha stays)."""

    format: str
    width: int
    height: int
    channels: int = 3
    channel_bytes: int = 1

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def decoded_bytes(self) -> int:
        """The size of the decoded picture: pixels × channels × bytes per channel."""
        return self.pixels * self.channels * self.channel_bytes


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


def check_decoded(found: Declared, what: str, limit: int | None = None) -> None:
    """InputError when decoding ``found`` takes more than :data:`BYTES_PER_PIXEL` bytes per pixel of the limit.

    The pixel limit alone let a 49 MP 16-bit RGBA PNG through (392 MB decoded, and its 16-bit and
    alpha working copies on top): what a picture costs is its pixels times channels times bytes.
    """
    budget = BYTES_PER_PIXEL * (max_pixels() if limit is None else limit)
    if found.decoded_bytes > budget:
        depth = f"{8 * found.channel_bytes}-bit"
        raise InputError(f"{what}: {found.width}x{found.height} {depth} with {found.channels} channel(s) decodes to "
                         f"{found.decoded_bytes:,} bytes, over the limit of {budget:,} ({BYTES_PER_PIXEL} bytes per "
                         "pixel of the pixel limit; refused without decoding; --max-pixels N or JAMSDK_MAX_PIXELS "
                         "raises it)")


def check_image_bytes(data: bytes | bytearray | memoryview, what: str, limit: int | None = None,
                      max_side: int | None = None) -> Declared:
    """The declared format and size of encoded picture ``data``, checked against the limits.

    Raises:
        InputError: not one of :data:`FORMATS`, a header that is cut short or declares no size, a
            size over the limits, or more decoded bytes than the limit allows (:func:`check_decoded`).
    """
    found = declared_size(data, what)
    check_pixels(found.width, found.height, what, limit, max_side)
    check_decoded(found, what, limit)
    return found


def check_image_start(start: bytes | bytearray, what: str, limit: int | None = None, complete: bool = False) -> None:
    """Check the first bytes of a picture file before the rest is read.

    Another format is refused at once; a size over the limits is refused when the header is within
    ``start`` (a header cut short is left to the check of the whole file unless ``complete``).
    """
    if not start:
        raise InputError(f"{what}: cannot decode as an image (empty file)")
    if not any(bytes(start[:12]).startswith(magic) for magic, _ in _PARSERS):
        declared_size(start, what)  # raises, naming what the bytes look like
    try:
        found = declared_size(start, what)
    except InputError:
        if complete:
            raise
        return
    check_pixels(found.width, found.height, what, limit)
    check_decoded(found, what, limit)


def declared_size(data: bytes | bytearray | memoryview, what: str = "picture") -> Declared:
    """Parse the header of a PNG, JPEG, BMP, WebP, TIFF or GIF; decodes nothing.

    Raises:
        InputError: another format, or a header that is cut short or malformed.
    """
    buf = data if isinstance(data, (bytes, bytearray)) else bytes(data)
    parse = next((parse for magic, parse in _PARSERS if buf.startswith(magic)), None)
    if parse is None:
        # The kind of file, never its bytes: a batch row naming /etc/passwd must not print "root:x:0".
        got = f"{len(buf)} bytes of {sniff(buf)}" if buf else "no bytes"
        raise InputError(f"{what}: cannot decode as a picture: expected {', '.join(FORMATS[:-1])} or {FORMATS[-1]} "
                         f"data, got {got}")
    try:
        return parse(buf)
    except (struct.error, IndexError, ValueError):
        raise InputError(f"{what}: cannot decode as a picture: its {parse.__name__[1:].upper()} header is cut "
                         f"short or malformed ({len(buf)} bytes), so its size is unknown") from None


# What a file that is no picture looks like, named by kind (its bytes are never echoed).
_KINDS_OF_DATA = ((b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive (or a .pt checkpoint, .docx, ...)"),
                  (b"\x1f\x8b", "gzip-compressed data"), (b"\x7fELF", "an executable (ELF)"),
                  (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 picture"), (b"\xff\x4f\xff\x51", "a JPEG 2000 codestream"),
                  (b"#?RADIANCE", "a Radiance HDR picture"), (b"#?RGBE", "a Radiance HDR picture"),
                  (b"\x1aE\xdf\xa3", "a Matroska/WebM video"), (b"8BPS", "a Photoshop document"),
                  (b"\x00\x00\x01\x00", "a Windows icon"))


def sniff(data: bytes | bytearray) -> str:
    """A short name for the kind of ``data`` that is not a picture jamsdk reads (never its bytes)."""
    head = bytes(data[:64])
    for magic, kind in _KINDS_OF_DATA:
        if head.startswith(magic):
            return kind
    if head[4:8] == b"ftyp":
        return "an ISO media file (MP4, MOV, AVIF or HEIC)"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "an AVI video"
    if len(head) >= 2 and head[0:1] == b"P" and head[1:2] in b"1234567" and len(head) > 2 and head[2:3].isspace():
        return "a PNM/PAM picture (not read by jamsdk)"
    if head[:2] in (b"PF", b"Pf") and len(head) > 2 and head[2:3].isspace():
        return "a PFM picture (not read by jamsdk)"
    try:
        text = bytes(data[:4096]).decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(ch.isprintable() or ch in "\t\r\n" for ch in text):
        return "text"
    return "another format"


def _png(b: bytes) -> Declared:
    if b[12:16] != b"IHDR":
        raise ValueError("no IHDR")
    w, h, depth, color = struct.unpack(">IIBB", b[16:26])
    # colour types: 0 gray, 2 RGB, 3 palette (RGB, or RGBA with a tRNS chunk), 4 gray+alpha, 6 RGBA;
    # OpenCV decodes gray+alpha and palette+tRNS to 4 channels
    channels = {0: 1, 2: 3, 3: 4, 4: 4, 6: 4}.get(color, 4)
    return Declared("PNG", w, h, channels, 2 if depth > 8 else 1)


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
            precision, h, w, components = struct.unpack(">BHHB", b[i + 2:i + 8])
            if h == 0:  # the height comes later, in a DNL segment, which libjpeg does not support
                raise ValueError("height 0")
            return Declared("JPEG", w, h, 1 if components == 1 else 3, 2 if precision > 8 else 1)
        if length < 2:
            raise ValueError("bad segment length")
        i += length


def _bmp(b: bytes) -> Declared:
    (header,) = struct.unpack("<I", b[14:18])
    if header == 12:  # OS/2 BITMAPCOREHEADER
        w, h, _planes, bits = struct.unpack("<HHHH", b[18:26])
    else:
        w, h, _planes, bits = struct.unpack("<iiHH", b[18:30])
    return Declared("BMP", w, abs(h), 4 if bits == 32 else 3)  # a negative height means top-down rows


def _webp(b: bytes) -> Declared:
    if b[8:12] != b"WEBP":
        raise ValueError("RIFF but not WebP")
    chunk = b[12:16]
    if chunk == b"VP8 ":
        if b[23:26] != b"\x9d\x01\x2a":
            raise ValueError("no VP8 start code")
        w, h = struct.unpack("<HH", b[26:30])
        return Declared("WebP", w & 0x3FFF, h & 0x3FFF, 3)
    if chunk == b"VP8L":
        if b[20] != 0x2F:
            raise ValueError("no VP8L signature")
        (bits,) = struct.unpack("<I", b[21:25])
        return Declared("WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 4 if bits >> 28 & 1 else 3)
    if chunk == b"VP8X":
        if len(b) < 30:
            raise ValueError("short")
        w = int.from_bytes(b[24:27], "little") + 1
        h = int.from_bytes(b[27:30], "little") + 1
        return Declared("WebP", w, h, 4 if b[20] & 0x10 else 3)  # the alpha flag
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
        tag, kind, n = struct.unpack(head, b[at:at + field])
        if tag in (256, 257, 258, 277):  # ImageWidth, ImageLength, BitsPerSample, SamplesPerPixel
            fmt = {3: "H", 4: "I", 16: "Q"}.get(kind)
            if fmt is None:
                raise ValueError(f"tag {tag} of type {kind}")
            value = b[at + field:at + size]
            if n * struct.calcsize(fmt) > size - field:  # the values live elsewhere: the offset is here
                (offset,) = struct.unpack(end + ("I" if size == 12 else "Q"), value[:size - field])
                value = b[offset:offset + struct.calcsize(fmt)]
            (found[tag],) = struct.unpack(end + fmt, value[:struct.calcsize(fmt)])
    if 256 not in found or 257 not in found:
        raise ValueError("no ImageWidth/ImageLength")
    # OpenCV decodes at most 4 channels, of 1, 2, 4 or 8 bytes (defaults: 1 sample of 1 bit)
    bits = found.get(258, 1)
    return Declared("TIFF", found[256], found[257], min(max(found.get(277, 1), 1), 4),
                    1 if bits <= 8 else 2 if bits <= 16 else 4 if bits <= 32 else 8)


def _gif(b: bytes) -> Declared:
    w, h, flags = struct.unpack("<HHB", b[6:11])
    i = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    # The first image may reach past the logical screen; decoders then grow the canvas.
    while i < len(b):
        block = b[i]
        if block == 0x2C:
            left, top, iw, ih = struct.unpack("<HHHH", b[i + 1:i + 9])
            return Declared("GIF", max(w, left + iw), max(h, top + ih), 4)
        if block != 0x21:
            break
        i += 2
        while b[i]:  # extension sub-blocks
            i += b[i] + 1
        i += 1
    return Declared("GIF", w, h, 4)


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

__all__ = ["BYTES_PER_PIXEL", "DEFAULT_MAX_PIXELS", "Declared", "FORMATS", "check_decoded", "check_image_bytes",
           "check_image_start", "check_pixels", "declared_size", "max_pixels", "set_max_pixels", "sniff"]
