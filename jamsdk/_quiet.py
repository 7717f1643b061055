"""Keep the libraries' own output off the terminal: the CLI's default for commands that run a model.

Ray, FFmpeg (inside OpenCV), OpenCV and ONNX Runtime print warnings and progress of their own, much
of it from C++ straight to file descriptor 2, and some of it reads like an error on a clean run
(Ray's ``core_worker.cc ... max_restarts`` line, FFmpeg's ``moov atom not found`` before jamsdk's own
one-line error about the same file). While :func:`library_output_hidden` is active:

- file descriptor 2 goes to the null device, and ``sys.stderr`` (what jamsdk writes its notes,
  progress and errors to) is a stream on the original terminal, so jamsdk's lines still show;
- Python logging below ERROR is off (Ray's, Ray Data's and Ray Serve's INFO/WARNING lines);
- FFmpeg's and OpenCV's log levels are lowered for this process and the processes it starts;
- a fatal signal still prints Python's stacks on the terminal (``faulthandler``).

Everything is restored on exit. ``jamsdk CMD --verbose`` leaves it all alone.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import logging
import os
import sys
from typing import Iterator

# FFmpeg's AV_LOG_QUIET (libavutil/log.h) for OpenCV's FFmpeg backend, read when it first opens a
# video; OpenCV's own logger (modules/core/src/utils/logtagmanager: OPENCV_LOG_LEVEL).
_ENV = {"OPENCV_FFMPEG_LOGLEVEL": "-8", "OPENCV_LOG_LEVEL": "ERROR"}


def _is_fd2(stream: object) -> bool:
    try:
        return stream.fileno() == 2  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


@contextlib.contextmanager
def library_output_hidden(enabled: bool = True) -> Iterator[None]:
    """Hide what the libraries print (see the module docstring); a no-op when ``enabled`` is false."""
    if not enabled:
        yield
        return
    set_env = [key for key in _ENV if key not in os.environ]
    for key in set_env:
        os.environ[key] = _ENV[key]
    previous_disable = logging.root.manager.disable
    logging.disable(logging.WARNING)
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 at all (a daemon): nothing reaches a terminal anyway
        saved = None
    if saved is None:
        try:
            yield
        finally:
            logging.disable(previous_disable)
            for key in set_env:
                os.environ.pop(key, None)
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    original = sys.stderr
    terminal = None
    if _is_fd2(original):  # jamsdk's own lines keep going where stderr went
        terminal = open(saved, "w", buffering=1, encoding=getattr(original, "encoding", None) or "utf-8",
                        errors="backslashreplace", closefd=False)
        sys.stderr = terminal
    own_faulthandler = not faulthandler.is_enabled()
    if own_faulthandler:
        faulthandler.enable(file=terminal or original)
    try:
        yield
    finally:
        if own_faulthandler:
            faulthandler.disable()
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        sys.stderr = original
        if terminal is not None:
            terminal.close()
        os.dup2(saved, 2)
        os.close(saved)
        logging.disable(previous_disable)
        for key in set_env:
            os.environ.pop(key, None)


__all__ = ["library_output_hidden"]
