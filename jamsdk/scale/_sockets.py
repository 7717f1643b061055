"""The TCP ports a process tree listens on (Linux ``/proc``), and whether each refuses a client without Ray's token.

What a local ``jamsdk batch`` or ``jamsdk serve`` exposes, measured rather than assumed: the test of
the local Ray (``tests/scale/test_local_ray.py``) and ``benchmarks/ray_sockets.py`` list the
listening sockets of the command's process tree and knock on each without a token.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass

from jamsdk.scale._reaper import descendants

#: one gRPC method of each Ray service that listens (GCS, raylet, object manager, core worker, agents,
#: a Serve replica's inter-deployment server): a server with token authentication answers
#: UNAUTHENTICATED to a call without the token (and UNIMPLEMENTED to another service's method)
RAY_METHODS = ("/ray.rpc.NodeInfoGcsService/GetClusterId", "/ray.rpc.NodeManagerService/GetNodeStats",
               "/ray.rpc.ObjectManagerService/Pull", "/ray.rpc.CoreWorkerService/GetCoreWorkerStats",
               "/ray.rpc.ReporterService/GetProfilingStats", "/ray.rpc.LogService/ListLogs",
               "/ray.serve.ASGIService/HandleRequest")


@dataclass(frozen=True)
class Listener:
    """One listening TCP socket: the process holding it, and the address it listens on."""

    pid: int
    name: str
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        address = ipaddress.ip_address(self.host)
        mapped = getattr(address, "ipv4_mapped", None)
        return (mapped or address).is_loopback

    @property
    def reachable_at(self) -> str:
        """An address to connect to it: its own, or loopback for a wildcard (and IPv4-mapped loopback)."""
        address = ipaddress.ip_address(self.host)
        mapped = getattr(address, "ipv4_mapped", None)
        if address.is_unspecified or (mapped or address).is_loopback:
            return "127.0.0.1"
        return str(mapped or address)


def _hex_address(text: str) -> tuple[str, int]:
    host, port = text.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1]), int(port, 16)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))  # four host-order 32-bit words
    return socket.inet_ntop(socket.AF_INET6, words), int(port, 16)


def listening_inodes() -> dict[str, tuple[str, int]]:
    """Socket inode → (address, port) of every listening TCP socket of this network namespace."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="utf-8") as fh:
                rows = fh.readlines()[1:]
        except OSError:
            continue
        for row in rows:
            parts = row.split()
            if parts[3] == "0A":  # TCP_LISTEN
                found[parts[9]] = _hex_address(parts[1])
    return found


def listeners(root: int, include_root: bool = True) -> list[Listener]:
    """The listening TCP sockets held by ``root`` and its descendants, sorted by port."""
    inodes = listening_inodes()
    pids = [pid for pid, _ in descendants(root)] + ([root] if include_root else [])
    out = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/comm", encoding="utf-8") as fh:
                name = fh.read().strip()
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                host, port = inodes[target[8:-1]]
                out.add(Listener(pid, name, host, port))
    return sorted(out, key=lambda x: (x.port, x.pid))


def knock(port: int, host: str = "127.0.0.1", timeout: float = 3.0) -> str:
    """What ``host:port`` answers a client without a token, in a few words (``host``: :attr:`Listener.reachable_at`).

    ``"refused: UNAUTHENTICATED"`` (gRPC, token authentication), ``"refused: HTTP 401"``,
    ``"open: Prometheus metrics"`` (read-only counters), ``"open: ..."`` for anything else that
    answers, ``"no answer"`` within ``timeout``, ``"gone"`` when nothing listens any more.
    """
    import grpc

    channel = grpc.insecure_channel(f"{host}:{port}")
    try:
        for method in RAY_METHODS:
            try:
                channel.unary_unary(method)(b"", timeout=timeout)
                return f"open: gRPC {method} answered"
            except grpc.RpcError as exc:
                code = exc.code()
                if code == grpc.StatusCode.UNAUTHENTICATED:
                    return "refused: UNAUTHENTICATED"
                if code == grpc.StatusCode.UNAVAILABLE:
                    break  # not gRPC (or gone): try HTTP
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    return "no answer"  # busy (a loaded machine, a server still starting): ask again later
                if code != grpc.StatusCode.UNIMPLEMENTED:
                    return f"open: gRPC {method} → {code.name}"
    finally:
        channel.close()
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=timeout) as reply:
            body = reply.read(200)
    except urllib.error.HTTPError as exc:
        return f"refused: HTTP {exc.code}" if exc.code in (401, 403) else f"open: HTTP {exc.code}"
    except OSError:
        return "gone"
    except http.client.HTTPException:  # HTTP/2 only: gRPC of a service not in RAY_METHODS
        return "open: gRPC, no service known here"
    if body.startswith(b"# HELP") or body.startswith(b"# TYPE"):
        return "open: Prometheus metrics"
    return f"open: HTTP 200 ({body[:40]!r})"


__all__ = ["Listener", "knock", "listeners", "listening_inodes"]
