"""Export the model folder the CPU throughput tables run on: jam-256 (trained-like), FP32 + INT8, batched.

    python benchmarks/jam256_folder.py OUT_DIR                       # batch sizes 4,8 (~10 min on 2 busy cores)
    python benchmarks/jam256_folder.py OUT_DIR --batch-sizes 2,4,8 --threads 2

The weights are :func:`jamsdk.export.samples.trained_like` (seed 0), as in ``compare.py`` and
``cpu_backends.py``; INT8 is calibrated on 16 frames of the bundled example clip with the bundled
example picture as the source (8 frames held out), and the export's speed gates time with
``--threads``. ``batch.py``, ``batch_job.py`` and ``serve_load.py`` take the folder with ``--model``,
so one export serves every table of ``cpu_tables.sh``. The export's log is printed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _report import require_at_least  # benchmarks/ is sys.path[0]
from jamsdk.errors import JamError


def export_jam256(out: Path, batch_sizes: tuple[int, ...], threads: int, config: str = "jam-256",
                  log=print) -> Path:
    """``out``: ``config`` with trained-like weights exported with INT8 and ``batch_sizes``."""
    import torch

    from compare import build
    from jamsdk.config import CONFIG_DIR
    from jamsdk.export.pipeline import export_checkpoint
    from jamsdk.model.checkpoint import save_checkpoint

    torch.set_num_threads(threads)
    assets = CONFIG_DIR.parent / "assets"
    with tempfile.TemporaryDirectory(prefix="jamsdk-jam256-") as tmp:
        model = build(config, "trained-like")
        ckpt = Path(tmp) / "candidate.pt"
        save_checkpoint(ckpt, model, model.cfg)
        export_checkpoint(ckpt, out, precision="int8", avd="off", threads=threads, batch_sizes=batch_sizes,
                          calibration=assets / "example_driving.mp4", calibration_source=assets / "example_source.png",
                          calibration_frames=16, log=log)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", metavar="OUT_DIR", help="model folder to write (replaced if it holds an export)")
    p.add_argument("--batch-sizes", default="4,8", help="batched graphs to export (default 4,8)")
    p.add_argument("--threads", type=int, default=2, help="threads of the export's speed gates (default 2)")
    p.add_argument("--config", default="jam-256", help="model config (default jam-256; tiny-jam for a quick run)")
    args = p.parse_args(argv)
    require_at_least(p, args, 1, "threads")
    from jamsdk.export.batched import parse_batch_sizes

    t0 = time.perf_counter()
    try:
        export_jam256(Path(args.out), parse_batch_sizes(args.batch_sizes), args.threads, args.config,
                      log=lambda line: print(line, flush=True))
    except JamError as exc:
        print(f"jam256_folder.py: error: {exc}", file=sys.stderr)
        return 2
    print(f"exported in {time.perf_counter() - t0:.0f} s: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
