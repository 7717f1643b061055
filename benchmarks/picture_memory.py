"""Peak memory and time of reading one large picture (``jamsdk.pictures.read_image``), in a fresh process each.

The probe's I4 was a 7000×7000 16-bit RGBA PNG (49 MP, under the 50 MP limit; 393 KB on disk):
2.17 GB of memory and 30 s for a 3-frame ``animate``. This writes such pictures (flat colours, half
of them half transparent, compressed as far as OpenCV goes) and reads each in a child process,
reporting its peak RSS (``VmHWM``) and the wall time of the read, or the one-line refusal.

    python benchmarks/picture_memory.py                             # 4900² and 7000², 16-bit RGBA
    python benchmarks/picture_memory.py --jamsdk /path/to/old        # the same with another checkout's reader
    python benchmarks/picture_memory.py --sides 3000 5000 --depth 8 --channels 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, re, sys, time
from jamsdk.pictures import read_image
start = time.perf_counter()
try:
    img = read_image(sys.argv[1])
    result = f"read {img.shape[1]}x{img.shape[0]}"
except Exception as exc:
    result = f"{type(exc).__name__}: {str(exc)[:140]}"
# VmHWM: this process's own peak (ru_maxrss would carry the parent's over fork and exec)
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
print(json.dumps({"result": result, "seconds": round(time.perf_counter() - start, 2), "peak_rss_mb": round(peak / 1024)}))
"""


def write_picture(path: Path, side: int, depth: int, channels: int) -> int:
    import cv2
    import numpy as np

    dtype, top = (np.uint16, 65535) if depth == 16 else (np.uint8, 255)
    img = np.zeros((side, side, channels), dtype)
    for c, level in zip(range(min(3, channels)), (0.46, 0.31, 0.15)):
        img[:, :, c] = int(top * level)
    if channels == 4:
        img[:, : side // 2, 3] = top
        img[:, side // 2:, 3] = top // 2 + 1
    if not cv2.imwrite(str(path), img, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise RuntimeError(f"cannot write {path}")
    return path.stat().st_size


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sides", type=int, nargs="+", default=[4900, 7000], help="square sides (default 4900 7000)")
    p.add_argument("--depth", type=int, choices=(8, 16), default=16)
    p.add_argument("--channels", type=int, choices=(3, 4), default=4)
    p.add_argument("--jamsdk", metavar="CHECKOUT", help="read with this checkout's jamsdk (PYTHONPATH)")
    args = p.parse_args(argv)
    env = dict(os.environ)
    if args.jamsdk:
        env["PYTHONPATH"] = args.jamsdk + os.pathsep + env.get("PYTHONPATH", "")
    print(f"| picture | file KB | jamsdk | result | seconds | peak RSS MB |\n|---|---:|---|---|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="jamsdk-picmem-") as tmp:
        for side in args.sides:
            path = Path(tmp) / f"{side}.png"
            size = write_picture(path, side, args.depth, args.channels)
            # cwd: the temporary folder, so that a jamsdk in the current folder does not shadow --jamsdk
            run = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, env=env,
                                 timeout=600, cwd=tmp)
            if run.returncode:
                print(run.stderr[-2000:], file=sys.stderr)
                return 1
            r = json.loads(run.stdout.strip().splitlines()[-1])
            layout = "RGBA" if args.channels == 4 else "RGB"
            kind = f"{side}x{side} ({side * side / 1e6:.1f} MP) {args.depth}-bit {layout}"
            print(f"| {kind} | {size // 1024} | {args.jamsdk or 'this checkout'} | {r['result']} | {r['seconds']} | "
                  f"{r['peak_rss_mb']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
