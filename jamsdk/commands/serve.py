"""jamsdk serve: a live multi-stream animation service on Ray Serve (WebSocket per stream).

A client connects to ws://HOST:PORT/stream, sends the source picture (PNG/JPEG), then frames, and
receives animated frames (PNG); see jamsdk.serve.protocol and the client jamsdk.serve.client.
Frames of concurrent streams on a replica share stage calls (export the model with
--batch-sizes for that). Binds 127.0.0.1 unless --host says otherwise; beyond loopback clients need
--token (or JAMSDK_TOKEN), unless --unauthenticated. Ctrl-C stops.
Needs: pip install "jamsdk[ray]".
"""

from __future__ import annotations

import argparse

from jamsdk.commands._options import add_access, add_max_pixels, add_model, add_threads

OPERANDS = "only options, such as --model DIR --port P"


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
    p.add_argument("--mode", choices=("relative", "standard", "avd"), default="relative",
                   help="motion transfer for every stream (default relative)")
    p.add_argument("--backend", choices=("auto", "tensorrt", "onnxruntime", "openvino"), default="auto",
                   help="inference backend in the replicas (default auto)")
    p.add_argument("--precision", choices=("fp32", "fp16"), default="fp32", help="ONNX graphs for onnxruntime")
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
    return p


def run(args: argparse.Namespace) -> int:
    import signal
    import time

    from jamsdk.access import Access
    from jamsdk.scale._ray import require_ray, resolve_model
    from jamsdk.scale.connect import connect, disconnect

    # Beyond loopback without a token: refused before Ray starts.
    access = Access.from_options(args.host, args.token, args.unauthenticated, args.allow_origin)
    require_ray("ray.serve")
    require_ray("fastapi")
    from jamsdk.serve import app as service
    from jamsdk.serve.protocol import ROUTE, Limits

    model = resolve_model(args.model)
    limits = Limits(max_streams=args.max_streams, max_message_bytes=args.max_frame_bytes,
                    idle_timeout_s=args.idle_timeout)

    def stop(_signum, _frame):  # noqa: ANN001 - a service manager's SIGTERM stops it like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    conn = connect(args.ray, log=lambda line: print(line, flush=True))
    try:
        spread = service.replicas_per_node(conn.nodes, args.replicas, 1.0, args.gpus_per_replica)
        application = service.build_app(str(model), replicas=args.replicas, limits=limits, backend=args.backend,
                                        mode=args.mode, precision=args.precision, threads=args.threads,
                                        gpus_per_replica=args.gpus_per_replica, max_replicas_per_node=spread,
                                        ray_client=str(conn.address or "").startswith("ray://"), access=access)
        service.run(application, host=args.host, port=args.port)
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
        service.stop()  # this application only: Serve stays up where other applications use it
        disconnect(conn)
        print("stopped", flush=True)
    return 0
