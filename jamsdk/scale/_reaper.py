"""Stops the processes of a local Ray when the command that started it dies without shutting it down.

``ray.init`` ties the GCS and the raylet to the driver (the kernel kills them when it dies), but not
the raylet's dashboard and runtime-env agents: after a ``kill -9`` of ``jamsdk batch`` they stay
for about a minute (62 s measured here) before their own GCS timeout ends them. :func:`watch`
records the driver's Ray processes right after ``ray.init`` (pid and start time, so a reused pid is
never hit) and starts this module as a small process that blocks reading a pipe from the driver;
the pipe reaches end-of-file when the driver exits, however it exits, and the watcher then stops
whatever of the recorded processes still runs (SIGTERM, then SIGKILL). After a normal exit Ray has
already stopped them and the watcher just exits. Linux only (it reads ``/proc``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

GRACE_S = 3.0


def _start_time(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == b"Z" else int(fields[19])


def descendants(root: int) -> list[tuple[int, int]]:
    """(pid, start time) of every live descendant of ``root``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        start = _start_time(pid)
        if start is not None:
            found.append((pid, start))
        todo.extend(children.get(pid, []))
    return found


def watch() -> subprocess.Popen | None:
    """Start the watcher over this process's current descendants (call right after a local ``ray.init``)."""
    if not sys.platform.startswith("linux"):
        return None
    targets = descendants(os.getpid())
    if not targets:
        return None
    # stdin=PIPE: this process holds the only write end (not inherited by later children), so the
    # watcher's read ends exactly when this process is gone.
    return subprocess.Popen([sys.executable, "-m", "jamsdk.scale._reaper", json.dumps(targets)],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the terminal is for the driver, which cleans up itself
    targets = [(int(pid), int(start)) for pid, start in json.loads(argv[0])]
    while sys.stdin.buffer.read(65536):
        pass
    live = [pid for pid, start in targets if _start_time(pid) == start]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in live:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + GRACE_S
        while time.monotonic() < deadline:
            live = [pid for pid, start in targets if _start_time(pid) == start]
            if not live:
                return 0
            time.sleep(0.1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
