"""Opening the files a user names as input: regular files only, and a size cap per kind, checked before reading.

``/dev/zero``, a FIFO or a socket named as a picture, a driving video or a manifest never ends (or
never starts: opening a FIFO waits for a writer), and a reader that reads "the whole file" then
grows until the kernel's OOM killer ends it, or another process on the machine. So every input
file jamsdk reads itself, or hands to a library that reads it (FFmpeg, ONNX Runtime, torch), is
first checked with :func:`check_input` or read with :func:`read_input`:

* it must be a regular file (no devices, FIFOs, sockets or folders); it is opened without waiting
  (``O_NONBLOCK``), so a FIFO is refused instead of hanging the command;
* its size must be within the cap of its kind (:data:`CAPS`), compared with what ``fstat`` says
  before a byte is read, and a file that grows past the cap while being read is refused too.

The caps (bytes), each far above what the kind holds in practice and far below what would hurt the
machine:

==============  ========================================================================
``picture``     8 bytes per pixel of the pixel limit, plus 1 MiB (401 MB at the default 50 MP):
                the densest picture jamsdk decodes is uncompressed 16-bit RGBA
                (:mod:`jamsdk.image_header`); it follows ``--max-pixels``
``video``       2 GiB (``batch`` reads a row's driving video whole and ships it to an actor;
                a frame folder counts its frames together)
``checkpoint``  4 GiB (MRAA's released checkpoints with optimizer state are under 1 GB)
``manifest``    4 MiB (a model folder's ``manifest.json`` is a few tens of KB)
``jobs``        64 MiB (a ``batch`` CSV or JSONL file: about half a million rows)
``onnx``        2 GiB (protobuf cannot parse a larger message; bigger weights go to external data)
``token``       4 KiB (a token file)
==============  ========================================================================

Torch-free and OpenCV-free.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Callable

from jamsdk.errors import InputError

MiB = 1 << 20
GiB = 1 << 30
#: fixed caps in bytes; ``picture`` follows the pixel limit (:func:`cap`)
CAPS = {"video": 2 * GiB, "checkpoint": 4 * GiB, "manifest": 4 * MiB, "jobs": 64 * MiB, "onnx": 2 * GiB,
        "token": 4 * 1024}
#: bytes a picture may take per pixel of the pixel limit (uncompressed 16-bit RGBA), and header room
PICTURE_BYTES_PER_PIXEL = 8
PICTURE_SLACK = MiB
NAMES = {"picture": "picture", "video": "video", "checkpoint": "checkpoint", "manifest": "manifest.json",
         "jobs": "jobs file", "onnx": "ONNX graph", "token": "token file"}
HEAD_BYTES = 64 * 1024  # what :func:`read_input` reads before its ``head`` check


def cap(kind: str, max_pixels: int | None = None) -> int:
    """The size cap of ``kind`` in bytes (``picture``: from ``max_pixels``, default the process-wide pixel limit)."""
    if kind == "picture":
        if max_pixels is None:
            from jamsdk.image_header import max_pixels as current

            max_pixels = current()
        return PICTURE_BYTES_PER_PIXEL * max_pixels + PICTURE_SLACK
    return CAPS[kind]


def _size(n: int) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


_OTHER_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device (such as /dev/zero)"),
                (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                (stat.S_ISLNK, "a symbolic link"))


def _not_regular(mode: int) -> str | None:
    """What a non-regular file is, in words (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    return next((words for test, words in _OTHER_KINDS if test(mode)), "not a regular file")


def _check(st: os.stat_result, path: str, kind: str, what: str, max_pixels: int | None = None) -> os.stat_result:
    other = _not_regular(st.st_mode)
    if other is not None:
        raise InputError(f"{what} {path}: expected a regular file, got {other}")
    limit = cap(kind, max_pixels)
    if st.st_size > limit:
        raise InputError(f"{what} {path}: {_size(st.st_size)} is over the limit of {_size(limit)} for a "
                         f"{NAMES[kind]} (refused before reading it)")
    return st


def _label(kind: str, what: str | None) -> str:
    return what if what is not None else NAMES[kind]


def check_input(path: str | os.PathLike[str], kind: str, what: str | None = None,
                follow_symlinks: bool = True, max_pixels: int | None = None) -> os.stat_result:
    """``path``'s stat when it is a regular file within the cap of ``kind``, for a library that opens it itself.

    Raises:
        InputError: missing, not a regular file (or a symlink with ``follow_symlinks=False``), over the cap.
    """
    label, name = _label(kind, what), os.fspath(path)
    try:
        st = os.stat(name, follow_symlinks=follow_symlinks)
    except OSError as exc:
        raise InputError(f"{label} {name}: {exc.strerror or exc}") from None
    return _check(st, name, kind, label, max_pixels)


def read_input(path: str | os.PathLike[str], kind: str, what: str | None = None, follow_symlinks: bool = True,
               head: Callable[[bytearray], None] | None = None, max_pixels: int | None = None) -> bytearray:
    """The bytes of the regular file ``path``, at most the cap of ``kind``; ``head`` sees the first bytes first.

    ``max_pixels``: the pixel limit a ``picture``'s cap follows (default: the process-wide one).
    ``head(first_bytes)`` (the first :data:`HEAD_BYTES`, or the whole file if shorter) may raise to
    refuse the file before the rest is read (a header or magic check). The bytes are read into one
    buffer of the size ``fstat`` gave (no second copy of a large file).

    Raises:
        InputError: missing or unreadable, not a regular file (a symlink too with
            ``follow_symlinks=False``), over the cap (also if it grows while read), or ``head``'s error.
    """
    label, name = _label(kind, what), os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(name, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise InputError(f"{label} {name}: is a symbolic link (refused: only the file itself is read)") from None
        raise InputError(f"{label} {name}: {exc.strerror or exc}") from None
    try:
        size = _check(os.fstat(fd), name, kind, label, max_pixels).st_size
        data = bytearray(size)
        view = memoryview(data)
        got = _fill(fd, view[:min(HEAD_BYTES, size)]) if head is not None else 0
        if head is not None:
            head(data[:got] if got < size else data)
        got += _fill(fd, view[got:])
        view.release()
        if got < size:  # it shrank meanwhile
            del data[got:]
        elif os.read(fd, 1):
            raise InputError(f"{label} {name}: grew while it was read (a file still being written?); refused")
    except OSError as exc:
        raise InputError(f"cannot read {label} {name}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    return data


def _fill(fd: int, view: memoryview) -> int:
    """Read into ``view`` until it is full or the file ends; the number of bytes read."""
    total = 0
    while total < len(view):
        n = os.readv(fd, [view[total:]])
        if n == 0:
            break
        total += n
    return total


__all__ = ["CAPS", "HEAD_BYTES", "NAMES", "cap", "check_input", "read_input"]
