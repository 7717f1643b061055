"""``jamsdk live``: animate a picture from a camera or a looped video and watch it in a browser.

Serves a page on 127.0.0.1 (--host to expose it, with --token or --unauthenticated) with the stream, live stats (FPS and
milliseconds per stage) and controls: reset the reference (X), find the best reference among the
last 50 frames (F), side by side (S), region overlay (R). --out also records and --vcam feeds a
virtual camera; both get the view chosen on the command line. Ctrl-C stops cleanly.
"""

from __future__ import annotations

import argparse
import math
import signal
import threading

OPERANDS = "--driving VIDEO|CAMERA (and optionally --source IMG --model DIR)"
QUIET = True  # the libraries' own output is hidden unless --verbose (jamsdk._quiet)


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    from jamsdk.commands._options import (
        add_access, add_backend, add_max_pixels, add_mode, add_model, add_precision, add_threads,
    )
    from jamsdk.commands.animate import add_view_options

    p = sub.add_parser(name, help="animate live from a camera or looped video, shown in a browser",
                       description=__doc__)
    p.add_argument("--driving", required=True, metavar="VIDEO|CAMERA",
                   help="camera index (0, 1, ...), or a video file, GIF or frame folder played in a loop")
    p.add_argument("--source", metavar="IMG", help="picture to animate (default: the bundled example picture)")
    add_model(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--max-fps", type=float, metavar="F",
                   help="at most F animated frames a second (default: a video's own rate, a camera's pace)")
    p.add_argument("--out", metavar="FILE", help="also record to this .mp4, .avi or .gif (complete when stopped)")
    p.add_argument("--vcam", action="store_true", help="also send to a virtual camera (needs jamsdk[vcam])")
    add_mode(p)
    add_backend(p)
    add_precision(p)
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames (scripted runs and tests)")
    add_view_options(p)
    add_threads(p)
    add_max_pixels(p)
    add_access(p)
    return p


def run(args: argparse.Namespace) -> int:
    from jamsdk.commands._options import access_from_args, model_dir, run_precision
    from jamsdk.commands.demo import DEMO_SOURCE
    from jamsdk.errors import InputError
    from jamsdk.live.server import make_server
    from jamsdk.live.session import PANEL_MIN, LiveOptions, LiveSession
    from jamsdk.live.sinks import Recorder, VirtualCamera, check_record_path
    from jamsdk.live.sources import DrivingSource
    from jamsdk.pictures import read_image
    from jamsdk.runtime.animator import Animator
    from jamsdk.runtime.smoothing import check_strength

    if args.max_fps is not None and not (math.isfinite(args.max_fps) and args.max_fps > 0):
        raise InputError(f"--max-fps: expected a number > 0, got {args.max_fps:g}")
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames: expected ≥ 1, got {args.max_frames}")
    check_strength(args.smoothing)
    if args.out:
        check_record_path(args.out)
    access = access_from_args(args, "live")  # beyond loopback: a token
    picture = read_image(args.source or DEMO_SOURCE)  # InputError when it is not a picture
    server = make_server(args.host, args.port, access=access)  # a taken port fails before anything slow
    resources: list = [server.server_close]
    try:
        driving = DrivingSource(args.driving)
        resources.append(driving.close)
        rate = driving.fps if not driving.camera else None
        rate = min(x for x in (rate, args.max_fps) if x) if (rate or args.max_fps) else None
        anim = Animator(model_dir(args), backend=args.backend, mode=args.mode,
                        precision=run_precision(args.precision), threads=args.threads, smoothing=args.smoothing,
                        stats_window=100)
        resources.append(anim.close)
        anim.set_source(picture)
        side = max(PANEL_MIN, anim.image_size)
        width = side * (3 if args.layout == "side-by-side" else 1)
        sink_fps = rate or driving.fps or 25.0
        sinks = []
        recorder = vcam = None
        if args.out:
            recorder = Recorder(args.out, sink_fps)
            resources.append(lambda: _finish_recording(recorder))
            sinks.append(recorder.write)
        if args.vcam:
            vcam = VirtualCamera(width, side, sink_fps)
            resources.append(vcam.close)
            sinks.append(vcam.send)
        session = LiveSession(anim, picture, driving,
                              LiveOptions(max_fps=rate, layout=args.layout, show_regions=args.show_regions),
                              tuple(sinks))
        server.session = session
        serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                   name="jamsdk-live-http", daemon=True)
        serving.start()
        resources.append(server.shutdown)
        print(f"jamsdk live: {server.url}  ({driving.name}, {anim.backend}, "
              f"{'%g fps cap' % rate if rate else 'no fps cap'}"
              f"{', virtual camera ' + str(vcam.device) if vcam else ''}; Ctrl-C stops)", flush=True)
        print(f"jamsdk live: {access.describe(server.url)}", flush=True)
        previous = _install_stop_handlers(session.stop)
        try:
            session.run(max_frames=args.max_frames)
        finally:
            _restore_handlers(previous)
        stats = session.stats()
        print(f"jamsdk live: stopped after {session.frames} frames ({stats.get('fps', 0):.1f} fps at the end)",
              flush=True)
    finally:
        # Reverse order: stop serving, finish the recording, free the model, release the camera.
        for close in reversed(resources):
            close()
    return 0


def _finish_recording(recorder) -> None:
    n = recorder.close()
    print(f"jamsdk live: wrote {recorder.out} ({n} frames)" if n else "jamsdk live: nothing recorded", flush=True)


def _install_stop_handlers(stop) -> dict:
    """SIGINT and SIGTERM end the loop (the ``finally`` then closes everything); main thread only."""
    previous = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda _n, _f: stop())
    return previous


def _restore_handlers(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
