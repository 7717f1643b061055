"""Connecting ``jamsdk batch`` and ``jamsdk serve`` to Ray: a local Ray, or a cluster checked before Ray is asked.

Which Ray: ``--ray ADDRESS``, else the ``RAY_ADDRESS`` environment variable, else a local Ray that
this process starts and stops (on loopback, with a per-run token: :mod:`jamsdk.scale.local_ray`). ``ADDRESS`` is one of

* ``HOST:PORT``: the head's GCS (``ray start --head --port PORT``, default 6379). The driver joins
  the cluster through the Ray node on its own machine, so run jamsdk on a node of the cluster
  (usually the head);
* ``ray://HOST:PORT``: Ray Client (the head's ``--ray-client-server-port``, default 10001), for a
  driver outside the cluster;
* ``auto``: the Ray already running on this machine.

The token follows Ray's own convention (Ray ≥ 2.52, "Ray token authentication"): with
``RAY_AUTH_MODE=token`` the driver sends ``RAY_AUTH_TOKEN``, else the file named by
``RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token``; ``ray get-auth-token`` on the head prints the
cluster's. Ray sends no token to an explicit address unless ``RAY_AUTH_MODE=token`` is set (a local
token is not offered to whatever address one types), and neither does jamsdk.

Before ``ray.init`` (which otherwise retries for 20 s and ends in a long traceback), a ``HOST:PORT``
address is checked with three short gRPC calls to the GCS: reachable, token accepted, same Ray and
Python version as this process. After connecting, one tiny task per alive node imports jamsdk
there. Each failure is a :class:`~jamsdk.errors.ClusterError` of one line naming the cause and the fix.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from jamsdk.errors import ClusterError

CHECK_TIMEOUT_S = 5.0          # each gRPC call of the pre-flight check
NODE_CHECK_TIMEOUT_S = 120.0   # the per-node jamsdk probe (starts one Python worker per node)
DEFAULT_GCS_PORT = 6379
DEFAULT_CLIENT_PORT = 10001
TOKEN_FIX = ("export RAY_AUTH_MODE=token and the cluster's token in RAY_AUTH_TOKEN (or a file named by "
             "RAY_AUTH_TOKEN_PATH, default ~/.ray/auth_token); `ray get-auth-token` on the head prints it")


@dataclass(frozen=True)
class Auth:
    """What this process would send as Ray's token (Ray's precedence), and where it came from."""

    enabled: bool               # RAY_AUTH_MODE=token
    token: str | None = None
    source: str = ""            # "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH=/x", "~/.ray/auth_token"


@dataclass(frozen=True)
class NodeInfo:
    """One alive node of the cluster, as jamsdk reports it (row results and replicas name it)."""

    node_id: str
    ip: str
    head: bool = False
    cpus: float = 0.0
    gpus: float = 0.0


@dataclass
class Connection:
    """The Ray this process uses: where, which nodes, and whether this process started it."""

    address: str | None                 # None: a local Ray started here
    started_here: bool
    nodes: list[NodeInfo] = field(default_factory=list)
    ray: Any = None
    reaper: Any = None                  # the watcher of a local Ray (jamsdk.scale._reaper)
    env: dict[str, str | None] = field(default_factory=dict)  # what a local Ray's start changed, to restore

    def describe(self) -> str:
        where = "a local Ray" if self.started_here else f"the Ray cluster at {self.address}"
        return f"{where} ({len(self.nodes)} node(s), Ray {self.ray.__version__})"


def resolve_address(address: str | None) -> str | None:
    """``--ray`` if given, else ``RAY_ADDRESS``, else None (a local Ray)."""
    text = (address or os.environ.get("RAY_ADDRESS") or "").strip()
    return text or None


def auth_settings(env: dict[str, str] | None = None, home: Path | None = None) -> Auth:
    """The token Ray would send from here: ``RAY_AUTH_TOKEN`` > ``RAY_AUTH_TOKEN_PATH`` > ``~/.ray/auth_token``.

    Raises:
        ClusterError: ``RAY_AUTH_TOKEN_PATH`` names a file that cannot be read or is empty (Ray
            itself aborts the process on that), or token mode is on and no token is found.
    """
    env = os.environ if env is None else env
    enabled = env.get("RAY_AUTH_MODE", "").strip().lower() == "token"
    if env.get("RAY_AUTH_TOKEN", "").strip():
        return Auth(enabled, env["RAY_AUTH_TOKEN"].strip(), "RAY_AUTH_TOKEN")
    path_var = env.get("RAY_AUTH_TOKEN_PATH", "")
    if path_var:
        try:
            token = Path(path_var).expanduser().read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ClusterError(f"RAY_AUTH_TOKEN_PATH={path_var}: cannot read the token file "
                               f"({getattr(exc, 'strerror', None) or exc}); point it at a file holding the "
                               "cluster's token, or unset it") from None
        if not token:
            raise ClusterError(f"RAY_AUTH_TOKEN_PATH={path_var}: the token file is empty; put the cluster's token "
                               "in it (`ray get-auth-token` on the head prints it)")
        return Auth(enabled, token, f"RAY_AUTH_TOKEN_PATH={path_var}")
    default = (home or Path.home()) / ".ray" / "auth_token"
    try:
        token = default.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        token = ""
    if token:
        return Auth(enabled, token, "~/.ray/auth_token")
    if enabled:
        raise ClusterError(f"RAY_AUTH_MODE=token but no token was found (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH and "
                           f"~/.ray/auth_token are all empty): {TOKEN_FIX}")
    return Auth(False)


def split_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``[V6]:PORT``) → (host, port); ClusterError when it is neither."""
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"--ray {address}: expected HOST:PORT of the head (e.g. 10.0.0.5:6379), "
                           "ray://HOST:PORT for Ray Client, or auto")
    return host, int(port)


def check_reachable(host: str, port: int, address: str, what: str) -> None:
    """A TCP connection to ``host:port`` within a few seconds, or a ClusterError saying what to start."""
    try:
        with socket.create_connection((host, port), timeout=CHECK_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ClusterError(f"cannot reach a Ray cluster at {address} ({reason}): start its head there "
                           f"({what}) or fix --ray / RAY_ADDRESS") from None


def local_versions() -> tuple[str, str]:
    """(Ray version, Python version) of this process, as Ray records them for a cluster."""
    import ray

    return ray.__version__, ".".join(map(str, sys.version_info[:3]))


def check_versions(cluster: dict[str, Any], address: str, mine: tuple[str, str] | None = None) -> None:
    """Ray refuses a driver whose Ray differs, or whose Python differs (to the patch level by default,
    ``RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL=minor`` relaxes it); say so in one line before it does."""
    ray_version, python_version = mine or local_versions()
    theirs = (str(cluster.get("ray_version", "?")), str(cluster.get("python_version", "?")))
    level = os.environ.get("RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL", "patch")
    digits = 2 if level == "minor" else 3
    same_python = python_version.split(".")[:digits] == theirs[1].split(".")[:digits]
    if theirs[0] != ray_version or not same_python:
        raise ClusterError(f"version mismatch with the Ray cluster at {address}: it runs Ray {theirs[0]} on Python "
                           f"{theirs[1]}, this process Ray {ray_version} on Python {python_version}; install "
                           f"Ray {theirs[0]} on Python {theirs[1]} here "
                           f"(pip install \"ray[serve]=={theirs[0]}\"), "
                           "or run jamsdk on a node of the cluster")


def probe_gcs(address: str, auth: Auth, timeout: float = CHECK_TIMEOUT_S) -> tuple[dict[str, Any], list[NodeInfo]]:
    """Ask the GCS at ``address`` (HOST:PORT) for its id, its metadata and its alive nodes.

    Returns:
        (the cluster's metadata: ray_version, python_version, ..., the alive nodes).

    Raises:
        ClusterError: unreachable, not a GCS, token missing or refused.
    """
    host, port = split_address(address)
    check_reachable(host, port, address, f"ray start --head --port {port}")
    try:
        import grpc
        from ray.core.generated import gcs_pb2, gcs_service_pb2, gcs_service_pb2_grpc
    except ImportError:  # a Ray without these internals: leave every check to ray.init
        return {}, []
    metadata = [("authorization", f"Bearer {auth.token}")] if auth.enabled and auth.token else []
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    with grpc.insecure_channel(target) as channel:
        try:
            gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(
                gcs_service_pb2.GetClusterIdRequest(), timeout=timeout, metadata=metadata)
            kv = gcs_service_pb2_grpc.InternalKVGcsServiceStub(channel).InternalKVGet(
                gcs_service_pb2.InternalKVGetRequest(key=b"CLUSTER_METADATA", namespace=b"cluster"),
                timeout=timeout, metadata=metadata)
            reply = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetAllNodeInfo(
                gcs_service_pb2.GetAllNodeInfoRequest(), timeout=timeout, metadata=metadata)
        except grpc.RpcError as exc:
            raise _rpc_error(exc, address, auth, grpc) from None
    try:
        cluster = json.loads(kv.value) if kv.value else {}
    except ValueError:
        cluster = {}
    nodes = [NodeInfo(n.node_id.hex(), n.node_manager_address, n.is_head_node,
                      float(n.resources_total.get("CPU", 0.0)), float(n.resources_total.get("GPU", 0.0)))
             for n in reply.node_info_list if n.state == gcs_pb2.GcsNodeInfo.GcsNodeState.ALIVE]
    return cluster, nodes


def probe_client(address: str, auth: Auth, timeout: float = CHECK_TIMEOUT_S) -> None:
    """Ping the Ray Client server at ``address`` (``ray://HOST[:PORT]``); ClusterError when unreachable or refused."""
    rest = address[len("ray://"):]
    host, port = split_address(rest if ":" in rest else f"{rest}:{DEFAULT_CLIENT_PORT}")
    check_reachable(host, port, address, f"ray start --head --ray-client-server-port {port}")
    try:
        import grpc
        from ray.core.generated import ray_client_pb2, ray_client_pb2_grpc
    except ImportError:
        return
    metadata = [("authorization", f"Bearer {auth.token}")] if auth.enabled and auth.token else []
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    with grpc.insecure_channel(target) as channel:
        try:
            ray_client_pb2_grpc.RayletDriverStub(channel).ClusterInfo(
                ray_client_pb2.ClusterInfoRequest(type=ray_client_pb2.ClusterInfoType.PING), timeout=timeout,
                metadata=metadata)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                raise ClusterError(f"{address} answers gRPC but is not a Ray Client server: give ray:// the head's "
                                   f"--ray-client-server-port (default {DEFAULT_CLIENT_PORT}), or HOST:PORT without "
                                   "ray:// for its GCS port") from None
            raise _rpc_error(exc, address, auth, grpc) from None


def _rpc_error(exc: Any, address: str, auth: Auth, grpc: Any) -> ClusterError:
    code = exc.code() if hasattr(exc, "code") else None
    if code == grpc.StatusCode.UNAUTHENTICATED:
        if not auth.enabled:
            return ClusterError(f"the Ray cluster at {address} requires its token (Ray token authentication) and this "
                                f"process sends none: {TOKEN_FIX}")
        return ClusterError(f"the Ray cluster at {address} refused the token from {auth.source}: it is not that "
                            f"cluster's token; put the right one there (`ray get-auth-token` on the head prints it)")
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return ClusterError(f"{address} answers gRPC but is not a Ray head's GCS port: give --ray the head's "
                            f"`ray start --head --port` (default {DEFAULT_GCS_PORT}), or ray://{address} for its "
                            "Ray Client port")
    detail = (exc.details() if hasattr(exc, "details") else "") or str(code)
    return ClusterError(f"{address} does not answer as a Ray head's GCS ({detail.splitlines()[0][:160]}): give --ray "
                        f"the head's `ray start --head --port` (default {DEFAULT_GCS_PORT})")


def check_nodes(ray: Any, timeout: float = NODE_CHECK_TIMEOUT_S, version: str | None = None) -> list[NodeInfo]:
    """Run one tiny task on every alive node that imports jamsdk there; ClusterError names a node without it.

    The probe is a function defined inside this one, so Ray ships its code by value: it runs on a
    node whose Python has no jamsdk and reports that instead of failing to unpickle.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    import jamsdk

    version = version or jamsdk.__version__

    def probe() -> dict:
        import sys as _sys

        try:
            import jamsdk as _jamsdk
        except Exception as exc:  # noqa: BLE001 - reported to the driver, which names the node
            return {"error": f"{type(exc).__name__}: {exc}", "python": _sys.executable}
        return {"version": _jamsdk.__version__, "python": _sys.executable}

    nodes = [_node_info(n) for n in ray.nodes() if n.get("Alive")]
    remote = ray.remote(num_cpus=0, max_retries=0)(probe)
    refs = {remote.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n.node_id, soft=False)).remote(): n
            for n in nodes}
    ready, pending = ray.wait(list(refs), num_returns=len(refs), timeout=timeout)
    if pending:
        late = refs[pending[0]]
        raise ClusterError(f"node {late.ip} ({late.node_id[:8]}) did not run a 1-line check within {timeout:g} s: "
                           "is it overloaded or unable to start Python workers? (its logs: raylet.err and "
                           "python-core-worker-*.log in the node's Ray session folder)")
    for ref in ready:
        node = refs[ref]
        try:
            answer = ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - a node that cannot run Python at all
            raise ClusterError(f"node {node.ip} ({node.node_id[:8]}) cannot run a Python task: "
                               f"{str(exc).strip().splitlines()[-1][:200]}") from None
        where = f"node {node.ip} ({node.node_id[:8]}, Python {answer['python']})"
        if "error" in answer:
            raise ClusterError(f"jamsdk is not installed on {where}: {answer['error']}; install it on every node "
                               f"(pip install \"jamsdk[ray]=={version}\", the same version as here)")
        if answer["version"] != version:
            raise ClusterError(f"{where} has jamsdk {answer['version']}, this process {version}: install the same "
                               "version on every node")
    return nodes


def _node_info(node: dict[str, Any]) -> NodeInfo:
    res = node.get("Resources", {})
    return NodeInfo(node["NodeID"], node.get("NodeManagerAddress", ""), "node:__internal_head__" in res,
                    float(res.get("CPU", 0.0)), float(res.get("GPU", 0.0)))


def connect(address: str | None = None, *, num_cpus: int | None = None, check_jamsdk: bool = True,
            log: Callable[[str], None] | None = None) -> Connection:
    """Connect to the Ray at ``address`` (or ``RAY_ADDRESS``), or start a local Ray; check it first.

    A Ray already initialised in this process is reused as it is (tests, notebooks).

    Raises:
        ClusterError: one line naming what is wrong and how to fix it.
        MissingDependencyError: Ray is not installed (``pip install "jamsdk[ray]"``).
    """
    from jamsdk.scale._ray import require_ray

    ray = require_ray()
    if ray.is_initialized():
        return Connection(None, False, [_node_info(n) for n in ray.nodes() if n.get("Alive")], ray)
    address = resolve_address(address)
    say = log or (lambda _line: None)
    if address is None:
        return start_local(ray, num_cpus, say)
    if address.startswith("ray://"):
        probe_client(address, auth_settings())
    elif address != "auto":
        auth = auth_settings()
        cluster, _nodes = probe_gcs(address, auth)
        if cluster:
            check_versions(cluster, address)
    try:
        with _keep_sigterm_handler():
            ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    except Exception as exc:  # noqa: BLE001 - Ray's errors are many classes; each becomes one line
        raise _init_error(exc, address) from None
    conn = Connection(address, False, [], ray)
    try:
        conn.nodes = check_nodes(ray) if check_jamsdk else [_node_info(n) for n in ray.nodes() if n.get("Alive")]
    except BaseException:
        ray.shutdown()
        raise
    say(f"connected to {conn.describe()}")
    return conn


def start_local(ray: Any, num_cpus: int | None = None, log: Callable[[str], None] | None = None) -> Connection:
    """Start a Ray on this machine for this process: its node on 127.0.0.1, a fresh token in the
    environment, nothing written to ``~/.ray`` (:mod:`jamsdk.scale.local_ray` says how and why).

    :func:`disconnect` restores the environment. A Ray whose node did not end up on loopback
    (another Ray version) is said in one line.
    """
    from jamsdk.scale import local_ray
    from jamsdk.scale._reaper import watch

    say = log or (lambda _line: None)
    with _keep_sigterm_handler():
        env = local_ray.start(ray, num_cpus)
    conn = Connection(None, True, [_node_info(n) for n in ray.nodes() if n.get("Alive")], ray, env=env)
    outside = [n.ip for n in conn.nodes if not local_ray.is_loopback(n.ip)]
    if outside:
        say(f"note: this Ray {ray.__version__} put its node on {outside[0]}, not on loopback: its ports listen beyond "
            "this machine (a fresh token still guards them)")
    conn.reaper = watch()  # a kill -9 of this process must not leave Ray's agents running
    return conn


@contextlib.contextmanager
def _keep_sigterm_handler() -> Iterator[None]:
    """``ray.init`` installs Ray's own SIGTERM handler (a crash report, then exit) over the process's; a
    command that stops cleanly on SIGTERM (shutting down the Ray it started) gets its handler back."""
    import signal
    import threading

    before = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if callable(before) and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, before)


def _init_error(exc: BaseException, address: str) -> ClusterError:
    text = " ".join(str(exc).split())
    if "Version mismatch" in text:
        detail = text.split("Version mismatch:", 1)[1].strip()[:240]
        return ClusterError(f"version mismatch with the Ray cluster at {address}: {detail}; install the cluster's Ray "
                            "and Python versions here")
    if "authentication" in text.lower() or "token" in text.lower():
        return ClusterError(f"the Ray cluster at {address} refused this process's credentials ({text[:160]}): "
                            f"{TOKEN_FIX}")
    if "Starting Ray client server failed" in text or "Proxy failed to Connect to backend" in text:
        return ClusterError(f"Ray Client at {address} could not start its server for this driver on the head "
                            "(its logs: ray_client_server*.err in the head's Ray session folder); try again, or run "
                            f"jamsdk on a node of the cluster with --ray HOST:{DEFAULT_GCS_PORT}")
    if "IP address" in text and "Raylet" in text:
        return ClusterError(f"cannot join the Ray cluster at {address} from this machine: a driver needs a Ray node "
                            "on its own machine; run jamsdk on a node of the cluster (e.g. the head), or use "
                            f"ray://HEAD:{DEFAULT_CLIENT_PORT} (Ray Client)")
    return ClusterError(f"cannot connect to Ray at {address}: {type(exc).__name__}: {text[:240]}")


def disconnect(conn: Connection) -> None:
    """Leave the cluster (a local Ray started here stops with it, and its token leaves the environment)."""
    if conn.ray is not None and conn.ray.is_initialized():
        conn.ray.shutdown()
    if conn.env:
        from jamsdk.scale.local_ray import restore

        restore(conn.ray, conn.env)
        conn.env = {}
    if conn.reaper is not None:
        conn.reaper.stdin.close()  # end of file: the watcher checks (Ray stopped them already) and exits
        conn.reaper.wait(timeout=30)
        conn.reaper = None
