"""jamsdk batch: animate every row of a CSV/JSONL job file on Ray (local or a cluster).

Each row names a picture, a driving video, an output file (inside --out-dir) and a mode. Actors
open the model once and animate whole rows; this machine reads the inputs and writes the outputs
(the model folder and the inputs travel to the nodes through Ray); outputs appear only complete;
a failed row is reported and the others go on; re-running skips rows whose output exists (--overwrite runs
them again). Exit status 0 when no row failed, 1 when some did, 2 on an error before any row ran.
Needs: pip install "jamsdk[ray]".
"""

from __future__ import annotations

import argparse

from jamsdk.commands._options import (
    STREAM_BATCH_PRECISION_HELP, add_backend, add_json, add_max_batch, add_max_pixels, add_model, add_precision,
    add_threads,
)

OPERANDS = "--jobs JOBS --out-dir DIR (and optionally --model DIR)"
QUIET = True  # the libraries' own output is hidden unless --verbose (jamsdk._quiet)
EXTRA = "ray"  # what this command needs installed (named when a package of it is missing)


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="animate a CSV/JSONL job file of (source, driving, out, mode) rows on Ray",
                       description=__doc__)
    p.add_argument("--jobs", required=True, metavar="JOBS",
                   help="CSV (header source,driving,out[,mode]) or JSONL file; relative source/driving paths "
                        "are taken from its folder")
    p.add_argument("--out-dir", required=True, metavar="DIR", help="folder the rows' outputs are written to")
    add_model(p)
    p.add_argument("--ray", metavar="ADDRESS",
                   help="Ray cluster: HOST:PORT of the head (run jamsdk on a node of it), ray://HOST:10001 (Ray "
                        "Client) or auto; default: $RAY_ADDRESS, else a local Ray. Token: RAY_AUTH_MODE=token with "
                        "RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token), as Ray documents it")
    p.add_argument("--actors", type=int, default=1, metavar="N", help="model-holding actors (default 1)")
    p.add_argument("--gpus-per-actor", type=float, default=0.0, metavar="G",
                   help="GPUs each actor reserves (default 0: CPU)")
    p.add_argument("--cpus-per-actor", type=float, default=1.0, metavar="C",
                   help="CPUs each actor reserves (default 1)")
    add_backend(p, " in the actors", long_running=True)
    add_precision(p, STREAM_BATCH_PRECISION_HELP.format(where="actors"))
    add_max_batch(p, "in each actor")
    add_threads(p)
    add_max_pixels(p)
    add_json(p, "the summary and every row's result")
    p.add_argument("--overwrite", action="store_true",
                   help="also run the rows whose output exists, replacing it once the new one is complete "
                        "(default: skip them, so a re-run resumes the job)")
    p.add_argument("--no-progress", action="store_true", help="no per-row progress lines")
    p.add_argument("--allow-short-video", action="store_true",
                   help="a driving video that stops decoding before the frame count it declares (corrupt or cut "
                        "short) is animated as far as it goes, with a note; default: its row fails")
    return p


def run(args: argparse.Namespace) -> int:
    import sys

    from jamsdk.commands._options import write_json
    from jamsdk.scale._ray import require_ray, resolve_model
    from jamsdk.scale.offline import print_summary, run_job

    require_ray()  # before any work: says which extra to install
    model = resolve_model(args.model)
    _stop_on_sigterm()
    summary = run_job(args.jobs, args.out_dir, model, ray_address=args.ray, actors=args.actors,
                      gpus_per_actor=args.gpus_per_actor, cpus_per_actor=args.cpus_per_actor, backend=args.backend,
                      precision=args.precision, threads=args.threads, overwrite=args.overwrite,
                      allow_short=args.allow_short_video,
                      max_batch=args.max_batch,
                      log=None if args.no_progress else (lambda line: print(line, file=sys.stderr, flush=True)))
    print_summary(summary)
    if args.json:
        write_json(args.json, summary.to_dict())
    return 1 if summary.failed else 0


def _stop_on_sigterm() -> None:
    """SIGTERM ends the job like Ctrl-C, so the Ray this command started is shut down with it (no leftovers)."""
    import signal

    def stop(_signum, _frame):  # noqa: ANN001 - signal handler signature
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
