"""jamsdk serve: a live multi-stream animation service on Ray Serve (WebSocket per stream).

A client connects to ws://HOST:PORT/stream, sends the source picture (PNG/JPEG), then frames, and
receives animated frames (PNG); see jamsdk.serve.protocol and the client jamsdk.serve.client.
Frames of concurrent streams on a replica share stage calls (export the model with
--batch-sizes for that). Binds 127.0.0.1 unless --host says otherwise; beyond loopback clients need
a token (--token-file FILE, JAMSDK_TOKEN or --token), unless --unauthenticated. Ctrl-C stops.
Needs: pip install "jamsdk[ray]".
"""

from __future__ import annotations

import argparse

from jamsdk.commands._options import (
    STREAM_BATCH_PRECISION_HELP, add_access, add_backend, add_max_batch, add_max_pixels, add_mode, add_model,
    add_precision, add_threads,
)

OPERANDS = "only options, such as --model DIR --port P"
QUIET = True  # the libraries' own output is hidden unless --verbose (jamsdk._quiet)
EXTRA = "ray"  # what this command needs installed (named when a package of it is missing)


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="serve live animation streams over WebSocket on Ray Serve", description=__doc__)
    add_model(p)
    p.add_argument("--replicas", type=int, default=1, metavar="N", help="ingress replicas (default 1)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, metavar="P", help="port (default 8000)")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="Ray cluster: HOST:PORT of the head (run jamsdk on a node of it), ray://HOST:10001 (Ray "
                        "Client) or auto; default: $RAY_ADDRESS, else a local Ray. Replicas spread over the nodes; "
                        "streams enter through the head node's --host/--port")
    add_mode(p)
    add_backend(p, " in the replicas", long_running=True)
    add_precision(p, STREAM_BATCH_PRECISION_HELP.format(where="replicas"))
    add_max_batch(p, "in each replica")
    add_threads(p)
    add_max_pixels(p)
    add_access(p)
    p.add_argument("--allow-origin", action="append", default=[], metavar="URL",
                   help="also let browser pages from this origin (http(s)://HOST[:PORT]) connect; repeatable")
    p.add_argument("--gpus-per-replica", type=float, default=0.0, metavar="G", help="GPUs per replica (default 0)")
    p.add_argument("--max-streams", type=int, default=16, metavar="N", help="streams per replica (default 16)")
    p.add_argument("--max-frame-bytes", type=int, default=4 << 20, metavar="B",
                   help="largest picture/frame message in bytes (default 4 MiB)")
    p.add_argument("--idle-timeout", type=float, default=60.0, metavar="S",
                   help="close a stream silent for S seconds (default 60)")
    p.add_argument("--max-message-rate", type=float, default=60.0, metavar="N",
                   help="close a stream that sends more than N messages a second (default 60)")
    p.add_argument("--max-bad-messages", type=int, default=32, metavar="N",
                   help="close a stream that sends more than N refused messages a minute (default 32)")
    p.add_argument("--penalty", type=float, default=10.0, metavar="S",
                   help="after such a close, refuse new streams from that client's address for S seconds "
                        "(default 10; 0 behind a reverse proxy or NAT, where clients share an address)")
    p.add_argument("--decode-share", type=float, default=0.1, metavar="F",
                   help="the fraction of each second a stream's pictures may take to decode, on average; a slow "
                        "one delays that stream's next one, so valid but huge frames cannot starve the other "
                        "streams (default 0.1: a 256² PNG frame at ~50 frames/s, a 720p PNG at ~4; 0: no budget)")
    p.add_argument("--trusted-proxy", action="append", default=[], metavar="ADDRESS",
                   help="a reverse proxy in front of the service whose X-Forwarded-For header is believed (an "
                        "address or network, repeatable); default: none, so a client cannot pose as another "
                        "address (and shed its penalty) by sending that header")
    return p


# Limits' fields as the options that set them (an error names the option the user typed).
_FLAGS = {"max_streams": "--max-streams", "max_message_bytes": "--max-frame-bytes", "idle_timeout_s": "--idle-timeout",
          "max_messages_per_s": "--max-message-rate", "max_bad_messages": "--max-bad-messages",
          "penalty_s": "--penalty", "decode_share": "--decode-share"}


def _limits(args: argparse.Namespace):  # noqa: ANN202 - jamsdk.serve.protocol.Limits, imported late
    from jamsdk.errors import InputError
    from jamsdk.serve.protocol import Limits

    try:
        return Limits(**{field: getattr(args, flag[2:].replace("-", "_")) for field, flag in _FLAGS.items()})
    except InputError as exc:
        field, _, rest = str(exc).partition(":")
        raise InputError(f"{_FLAGS.get(field, field)}:{rest}") from None


def run(args: argparse.Namespace) -> int:
    import os
    import signal
    import time

    from jamsdk.commands._options import access_from_args
    from jamsdk.scale._ray import require_ray, resolve_model
    from jamsdk.scale.connect import connect, disconnect, resolve_address

    # Beyond loopback without a token: refused before Ray starts.
    access = access_from_args(args, "serve", args.allow_origin)
    require_ray("ray.serve")
    require_ray("fastapi")
    from jamsdk.serve import app as service, proxy_guard
    from jamsdk.serve.protocol import ROUTE
    from jamsdk.serve.startup import check_port, start

    limits = _limits(args)
    model = resolve_model(args.model)
    if resolve_address(args.ray) is None:
        # A local Ray: the HTTP proxy and the replicas run on this machine, so a taken port and a
        # backend this machine cannot run are said now, before Ray starts (not per replica, retried).
        check_port(args.host, args.port)
        from jamsdk.manifest import load_manifest
        from jamsdk.runtime.backends import resolve_backend

        resolve_backend(load_manifest(model, verify_hashes=False), args.backend)

    def stop(_signum, _frame):  # noqa: ANN001 - a service manager's SIGTERM stops it like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    # Penalised clients refused in Serve's proxy (jamsdk.serve.proxy_guard): a local Ray started by
    # connect() passes this to the proxy's process; a cluster's head reads its own environment.
    os.environ.setdefault(proxy_guard.ENV, proxy_guard.IMPORT_PATH)
    # Serve's HTTP proxy (uvicorn) believes X-Forwarded-For from these addresses only (a local Ray's proxy
    # inherits it; uvicorn's own default believes any loopback client, which could pose as any address).
    os.environ[proxy_guard.FORWARDED_ENV] = proxy_guard.forwarded_setting(args.trusted_proxy)
    conn = connect(args.ray, log=lambda line: print(line, flush=True))
    try:
        spread = service.replicas_per_node(conn.nodes, args.replicas, 1.0, args.gpus_per_replica)
        application = service.build_app(str(model), replicas=args.replicas, limits=limits, backend=args.backend,
                                        mode=args.mode, precision=args.precision, threads=args.threads,
                                        max_batch=args.max_batch, gpus_per_replica=args.gpus_per_replica, max_replicas_per_node=spread,
                                        ray_client=str(conn.address or "").startswith("ray://"), access=access)
        start(application, host=args.host, port=args.port)  # its failures as one line with the cause
    except BaseException:
        disconnect(conn)  # a local Ray started here goes with it; a cluster keeps running
        raise
    head = next((n.ip for n in conn.nodes if n.head), "")
    where = f" (the head node, {head})" if len(conn.nodes) > 1 and head else ""
    spread_text = f", at most {spread} per node on {len(conn.nodes)} nodes" if spread else ""
    print(f"serving {model} on ws://{args.host}:{args.port}{ROUTE}{where} with {args.replicas} replica(s)"
          f"{spread_text}; health: http://{args.host}:{args.port}/health; Ctrl-C stops", flush=True)
    print(access.describe(f"ws://{args.host}:{args.port}{ROUTE}"), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        if not conn.started_here:
            service.stop()  # this application only: Serve stays up where other applications use it
        # A local Ray started here takes Serve with it: stopping Serve first would race its own
        # ray.kill of the controller, which Ray reports as a failed task on every clean stop.
        disconnect(conn)
        print("stopped", flush=True)
    return 0
