"""Read-only queries of the host: run a query command, read a text file; neither ever raises.

Machine information (:mod:`jamsdk.runtime.sysinfo`, :mod:`jamsdk.runtime.jetson`) and ``jamsdk
doctor`` ask the system through these two, and their tests pass a stand-in :data:`Runner`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Sequence

#: ``run(argv) -> (returncode, stdout + stderr)``, or None when the program does not exist
Runner = Callable[[Sequence[str]], "tuple[int, str] | None"]


def run_command(argv: Sequence[str], timeout: float = 10.0) -> tuple[int, str] | None:
    """Run a read-only query command; ``(returncode, output)``, or None when it is not installed."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return -1, str(exc)
    return done.returncode, (done.stdout or "") + (done.stderr or "")


def read_text(path: str | os.PathLike[str]) -> str | None:
    """The text of a file (undecodable bytes replaced), or None when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
