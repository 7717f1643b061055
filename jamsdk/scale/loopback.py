"""A real Ray cluster of several nodes on this machine, on loopback: for tests, benchmarks and trying ``--ray``.

Each node is its own ``ray start --block`` process tree (the head: GCS, raylet, agents; the others:
raylet, agents) in a session of its own (``setsid``), with its own temp folder and ports, token
authentication on (a fresh token, passed in the environment, never written to ``~/.ray``).
:meth:`LoopbackCluster.stop` ends exactly those sessions — SIGTERM, then SIGKILL to every process
still in them, Python workers included — and never touches another Ray on the machine (``ray stop``
would stop every Ray of the user, so it is not used).

Addresses: nodes are started with ``--node-ip-address 127.0.0.2`` by default. Ray 2.60 replaces
127.0.0.1 (and ``localhost``) by the machine's routable address (``resolve_ip_for_localhost`` in
``ray/_private/services.py``), so 127.0.0.1 would put the nodes' traffic on the network interface;
any other 127.x address is kept, and all of 127.0.0.0/8 is loopback on Linux. Ray's GCS and raylet
still listen on every interface whatever the node address (their own choice in Ray 2.60).

::

    with LoopbackCluster(nodes=2, cpus_per_node=1) as cluster:
        subprocess.run(["jamsdk", "batch", ..., "--ray", cluster.address], env=cluster.client_env())
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from jamsdk.errors import ClusterError

DEFAULT_HOST = "127.0.0.2"
OBJECT_STORE_BYTES = 100 * 1024 * 1024   # Ray's minimum is 75 MiB; the default (30% of RAM) is far too much here


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (a race with other processes remains; callers retry)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class Node:
    """One started node: its ``ray start --block`` process (a session leader) and its folders."""

    index: int
    proc: subprocess.Popen
    temp_dir: Path
    log: Path


class LoopbackCluster:
    """A head and ``nodes - 1`` more nodes on this machine (see the module docstring).

    Args:
        nodes: how many nodes (the head included).
        cpus_per_node: ``--num-cpus`` of every node.
        host: the node address (a loopback address other than 127.0.0.1, see above).
        python: the Python every node runs (its Ray and packages are what the workers import).
        start_timeout: seconds to wait for each node to join.
    """

    def __init__(self, nodes: int = 2, cpus_per_node: int = 1, host: str = DEFAULT_HOST,
                 python: str | None = None, start_timeout: float = 90.0):
        self.count, self.cpus, self.host = nodes, cpus_per_node, host
        self.python = python or sys.executable
        self.start_timeout = start_timeout
        self.token = secrets.token_hex(16)
        self.root = Path(tempfile.mkdtemp(prefix="jr", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
        self.port = 0
        self.client_port = 0
        self.nodes: list[Node] = []
        self.startup_s: list[float] = []   # seconds each node took to join

    @property
    def address(self) -> str:
        """The head's GCS address (what ``--ray`` takes)."""
        return f"{self.host}:{self.port}"

    @property
    def client_address(self) -> str:
        """The head's Ray Client address (``ray://``)."""
        return f"ray://{self.host}:{self.client_port}"

    def client_env(self, base: dict[str, str] | None = None, token: bool = True) -> dict[str, str]:
        """The environment a driver needs: Ray's token variables (``token=False``: none of them).

        Every other ``RAY_*`` variable of ``base`` is left out too: a process that ran ``ray.init``
        carries some (``RAY_AUTH_MODE``, ``RAY_CLIENT_MODE``, ...) that are not this cluster's.
        """
        env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith("RAY_")}
        if env.get("PYTHONBREAKPOINT", "").startswith("ray."):
            del env["PYTHONBREAKPOINT"]
        if token:
            env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.token)
        return env

    def start(self) -> "LoopbackCluster":
        """Start the head, then the other nodes; returns when all have joined (ClusterError if not)."""
        try:
            for _ in range(self.count):
                self.add_node()
        except BaseException:
            self.stop()
            raise
        return self

    def add_node(self, python: str | None = None) -> Node:
        """Start one more node (the first is the head) and wait until the GCS lists it alive."""
        index = len(self.nodes)
        for attempt in range(3):  # a port picked free may be taken before Ray binds it
            node = self._spawn(index, python or self.python, attempt)
            t0 = time.monotonic()
            try:
                self._wait_alive(index + 1, node)
            except ClusterError:
                self._end(node)
                if attempt == 2:
                    raise
                continue
            self.startup_s.append(time.monotonic() - t0)
            self.nodes.append(node)
            return node
        raise AssertionError("unreachable")

    def _spawn(self, index: int, python: str, attempt: int) -> Node:
        temp = self.root / f"n{index}.{attempt}"
        temp.mkdir()
        args = [python, "-m", "ray.scripts.scripts", "start", "--block", "--disable-usage-stats",
                "--node-ip-address", self.host, "--num-cpus", str(self.cpus), "--num-gpus", "0",
                "--temp-dir", str(temp), "--object-store-memory", str(OBJECT_STORE_BYTES),
                "--dashboard-agent-listen-port", str(free_port()), "--log-style", "record"]
        if index == 0:
            self.port, self.client_port = free_port(), free_port()
            args += ["--head", "--port", str(self.port), "--ray-client-server-port", str(self.client_port),
                     "--include-dashboard", "false"]
        else:
            args += ["--address", self.address]
        env = self.client_env()
        env["RAY_BACKEND_LOG_LEVEL"] = env.get("RAY_BACKEND_LOG_LEVEL", "warning")
        log = temp / "ray-start.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                    cwd=temp, start_new_session=True)
        return Node(index, proc, temp, log)

    def _wait_alive(self, want: int, node: Node) -> None:
        from jamsdk.scale.connect import Auth, probe_gcs

        auth = Auth(True, self.token, "LoopbackCluster")
        deadline = time.monotonic() + self.start_timeout
        seen = 0
        while time.monotonic() < deadline:
            if node.proc.poll() is not None:
                raise ClusterError(f"ray start (node {node.index}) exited with {node.proc.returncode}: "
                                   f"{_tail(node.log)}")
            try:
                _cluster, alive = probe_gcs(self.address, auth, timeout=2.0)
                seen = len(alive)
                # The head's Ray Client server comes up after the node registers.
                if seen >= want and (node.index > 0 or _listening(self.host, self.client_port)):
                    return
            except ClusterError:
                pass
            time.sleep(0.5)
        raise ClusterError(f"node {node.index} did not join within {self.start_timeout:g} s ({seen} of {want} alive): "
                           f"{_tail(node.log)}")

    def remove_node(self, node: Node) -> None:
        """Stop one node started by :meth:`add_node` (every process of it)."""
        self._end(node)
        self.nodes.remove(node)

    def stop(self, grace: float = 5.0) -> None:
        """End every process of every node started here (newest first); safe to call twice."""
        for node in reversed(self.nodes):
            self._end(node, grace)
        self.nodes.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def _end(self, node: Node, grace: float = 5.0) -> None:
        sid = node.proc.pid
        if node.proc.poll() is None:
            node.proc.send_signal(signal.SIGTERM)  # `ray start --block` stops its node's processes
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _session_pids(sid):
            time.sleep(0.2)
        for pid in _session_pids(sid):  # what did not stop in time, workers included (own groups, same session)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            node.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def log_tail(self, pattern: str = "*.err", lines: int = 20) -> str:
        """The last lines of the nodes' Ray log files matching ``pattern`` (for failure messages)."""
        out = []
        for path in sorted(self.root.glob(f"n*/session_latest/logs/{pattern}")):
            text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-lines:]
            if text:
                out.append(f"== {path.relative_to(self.root)}\n" + "\n".join(text))
        return "\n".join(out)

    def pids(self) -> list[int]:
        """Every live process of every node (for tests that check nothing is left)."""
        return [pid for node in self.nodes for pid in _session_pids(node.proc.pid)]

    def __enter__(self) -> "LoopbackCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _session_pids(sid: int) -> list[int]:
    """Live (non-zombie) processes whose session id is ``sid`` (Linux /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode("utf-8", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 3 and fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(entry))
    return pids


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(line.strip() for line in text[-lines:])[:400]
