"""Helpers for the live-server tests (importable as ``live_helpers``): free loopback ports and a
``jamsdk live`` subprocess that is always stopped (SIGINT, then kill) whatever the test does."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "jamsdk" / "assets"
DRIVING = ASSETS / "example_driving.mp4"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveProcess:
    """A running ``jamsdk live``; reader threads own its pipes (``stdout`` fills as it prints)."""

    def __init__(self, proc: subprocess.Popen, url: str, stdout: list[str], err: list[str],
                 readers: list[threading.Thread]):
        self.proc, self.url = proc, url
        self.stdout = stdout
        self.stderr = ""
        self._err, self._readers = err, readers

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for reader in self._readers:
            reader.join(10)
        self.stderr = "".join(self._err)
        return self.proc.returncode


@contextlib.contextmanager
def live_process(*args: str, startup: float = 90.0) -> Iterator[LiveProcess]:
    """Start ``python -m jamsdk live ARGS`` and yield once it prints its URL."""
    if not (ASSETS / "demo_model" / "manifest.json").is_file():
        pytest.skip("the bundled demo model is not in this checkout")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "jamsdk", "live", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    lines: list[str] = []
    err: list[str] = []
    got = threading.Event()

    def read_lines() -> None:
        # The pipes' only readers (communicate() would lose what these file objects buffered).
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            got.set()
        got.set()

    readers = [threading.Thread(target=read_lines, daemon=True),
               threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)]
    for reader in readers:
        reader.start()
    live = LiveProcess(proc, "", lines, err, readers)
    try:
        if not got.wait(startup) or not lines or "http://" not in lines[0]:
            live.stop(signal.SIGKILL, timeout=10)
            raise AssertionError(f"jamsdk live did not start: {lines} {live.stderr}")
        live.url = lines[0].split()[2]
        yield live
    finally:
        if proc.poll() is None:
            live.stop()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting")
