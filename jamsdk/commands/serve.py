"""jamsdk serve: a live multi-stream animation service on Ray Serve (WebSocket per stream).

A client connects to ws://HOST:PORT/stream, sends the source picture (PNG/JPEG), then frames, and
receives animated frames (PNG); see jamsdk.serve.protocol and the client jamsdk.serve.client.
Frames of concurrent streams on a replica share stage calls (export the model with
--batch-sizes for that). Binds 127.0.0.1 unless --host says otherwise. Ctrl-C stops.
Needs: pip install "jamsdk[ray]".
"""

from __future__ import annotations

import argparse

from jamsdk.commands._options import STREAM_BATCH_PRECISIONS, STREAM_BATCH_WHY, add_backend, add_mode, add_model, \
    add_precision, add_threads, restrict, run_precision

OPERANDS = "only options, such as --model DIR --port P"
QUIET = True  # the libraries' own output is hidden unless --verbose (jamsdk._quiet)
EXTRA = "ray"  # what this command needs installed (named when a package of it is missing)


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="serve live animation streams over WebSocket on Ray Serve", description=__doc__)
    add_model(p)
    p.add_argument("--replicas", type=int, default=1, metavar="N", help="ingress replicas (default 1)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, metavar="P", help="port (default 8000)")
    p.add_argument("--ray", metavar="ADDRESS", help="Ray cluster address; default: start a local Ray")
    add_mode(p)
    add_backend(p, " in the replicas")
    add_precision(p, "which ONNX graphs ONNX Runtime runs in the replicas: auto = fp32 (int8 is for one stream: "
                     "jamsdk live); TensorRT runs its engines as built")
    add_threads(p)
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

    from jamsdk.scale._ray import init_ray, require_ray, resolve_model

    restrict(args, "--precision", STREAM_BATCH_PRECISIONS, STREAM_BATCH_WHY)
    require_ray("ray.serve")
    require_ray("fastapi")
    from jamsdk.serve import app as service
    from jamsdk.serve.protocol import ROUTE, Limits
    from jamsdk.serve.startup import check_port, start

    model = resolve_model(args.model)
    limits = Limits(max_streams=args.max_streams, max_message_bytes=args.max_frame_bytes,
                    idle_timeout_s=args.idle_timeout)
    check_port(args.host, args.port)  # a taken port fails before Ray starts
    if args.ray is None:  # the replicas run on this machine: a backend it cannot run is said now, not per replica
        from jamsdk.manifest import load_manifest
        from jamsdk.runtime.backends import resolve_backend

        resolve_backend(load_manifest(model, verify_hashes=False), args.backend)
    ray = require_ray()
    # Who owns what: a local Ray started here goes with the command; a cluster (--ray) keeps running;
    # a Ray this process had joined before (the Python API, tests) keeps running with its Serve.
    owner = "joined" if ray.is_initialized() else ("local" if args.ray is None else "cluster")
    init_ray(args.ray)

    def stop(_signum, _frame):  # noqa: ANN001 - a service manager's SIGTERM stops it like Ctrl-C
        raise KeyboardInterrupt

    # Set after ray.init, which installs its own SIGTERM handler (it exits with status 15 mid-start).
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        application = service.build_app(str(model), replicas=args.replicas, limits=limits, backend=args.backend,
                                        mode=args.mode, precision=run_precision(args.precision),
                                        threads=args.threads, gpus_per_replica=args.gpus_per_replica)
        try:
            start(application, host=args.host, port=args.port)
        except BaseException:
            _stop(ray, owner)
            raise
        print(f"serving {model} on ws://{args.host}:{args.port}{ROUTE} with {args.replicas} replica(s); "
              f"health: http://{args.host}:{args.port}/health; Ctrl-C stops", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            _stop(ray, owner)
            print("stopped", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _stop(ray, owner: str) -> None:  # noqa: ANN001
    """Take down what this command started (``owner`` as set in :func:`run`)."""
    from ray import serve

    if owner == "local":
        # The local Ray takes Serve with it. serve.shutdown() first would race its own ray.kill of
        # the controller, and Ray prints that as a failed task on every clean stop.
        ray.shutdown()
    elif owner == "cluster":
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
    else:
        serve.delete("jamsdk")
