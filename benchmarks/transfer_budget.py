"""Host↔device traffic per streamed frame on the TensorRT path, counted on the CUDA stand-in.

Streams uint8 frames through ``jamsdk.Animator`` on the TensorRT backend with the test suite's
CUDA/TensorRT stand-ins (``tests/runtime/cuda_standin.py``: each "engine" is the stage's ONNX
graph run by ONNX Runtime on the host memory that stands for device memory; copies and engine
runs take effect at a sync, like CUDA), so no GPU and no engine files are needed, and counts per
frame, averaged over the frames after the first: bytes host→device and device→host, stream
syncs and CUDA-graph launches. Needs a jamsdk checkout (it imports the stand-in from tests/).

``--host-path`` runs the folder as if it had no helper graphs (exported before them: pixels and
the relative algebra on the host). ``before`` in the output is the design this replaced, computed
from its copies: every stage copied all its inputs H2D and all its outputs D2H and synced once.

    python benchmarks/transfer_budget.py --model MODEL_DIR [--mode relative|standard|avd] [--cuda-graph] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "runtime"))
sys.path.insert(0, str(ROOT))


class _Patch:
    """The two monkeypatch calls the stand-in's ``install`` uses, without pytest."""

    def setattr(self, obj: Any, name: str, value: Any) -> None:
        setattr(obj, name, value)

    def setitem(self, mapping: Any, key: Any, value: Any) -> None:
        mapping[key] = value


def _nbytes(spec: Any) -> int:
    return int(np.prod(spec.shape)) * np.dtype(spec.dtype).itemsize


def before(manifest: Any, mode: str, use_bg_motion: bool = False) -> dict[str, Any]:
    """The per-frame traffic of the old design (per-stage buffers, copies and sync), from the stage table."""
    stages = ["region_predictor"] + (["bg_motion"] if use_bg_motion else []) + (["avd"] if mode == "avd" else []) \
        + ["dense_motion", "generator"]
    h2d = sum(_nbytes(s) for n in stages for s in manifest.stage(n).inputs)
    d2h = sum(_nbytes(s) for n in stages for s in manifest.stage(n).outputs)
    return {"h2d_bytes_per_frame": h2d, "d2h_bytes_per_frame": d2h, "syncs_per_frame": len(stages),
            "graph_launches_per_frame": None,
            "method": "old TensorRTBackend._run: every per-frame stage copied all inputs H2D and all outputs D2H "
                      "and synced once (computed from the stage table)"}


def measure(model_dir: str | Path, mode: str = "relative", cuda_graph: bool = False, frames: int = 6,
            host_path: bool = False, patch: Any = None) -> dict[str, Any]:
    """Stream ``frames`` uint8 frames on the stand-ins; the per-frame averages after the first frame.

    ``patch``: what installs the stand-ins (pytest's ``monkeypatch`` in tests, so they are undone);
    by default they stay installed in this process.
    """
    import cuda_standin

    import jamsdk
    from jamsdk.manifest import load_manifest

    src = Path(model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        folder = cuda_standin.make_engine_dir(src, Path(tmp) / "model", helpers=not host_path)
        cuda = cuda_standin.install(patch or _Patch())
        manifest = load_manifest(folder, verify_hashes=False)
        size = manifest.image_size
        rng = np.random.default_rng(0)
        per_frame = []
        with jamsdk.Animator(folder, backend="tensorrt", mode=mode, cuda_graph=cuda_graph, verify_hashes=False) as anim:
            anim.set_source(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
            for _ in range(frames):
                frame = rng.integers(0, 256, (size + 32, size + 48, 3), dtype=np.uint8)  # a camera-sized frame
                cuda.counts.clear()
                anim.run(frame)
                per_frame.append(dict(cuda.counts))
            steady = per_frame[1:]

            def avg(key: str) -> float:
                return float(np.mean([c.get(key, 0) for c in steady]))

            result = {
                "model_dir": str(src), "mode": mode, "cuda_graph": cuda_graph, "image_size": size,
                "frames": frames, "path": "host (no helper graphs)" if host_path else "device-resident",
                "h2d_bytes_per_frame": avg("h2d_bytes"), "d2h_bytes_per_frame": avg("d2h_bytes"),
                "syncs_per_frame": avg("syncs"), "graph_launches_per_frame": avg("graph_launches"),
                "first_frame": per_frame[0],
                "budget": {"h2d_max": size * size * 3 + 4096, "d2h_max": size * size * 3 + 4096, "syncs": 1,
                           "graph_launches": 1 if cuda_graph else 0},
                "before": before(manifest, mode),
            }
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Count host-device traffic per frame of the TensorRT path on the CUDA "
                                            "stand-in.")
    p.add_argument("model_pos", nargs="?", help=argparse.SUPPRESS)  # the spelling: MODEL_DIR first
    p.add_argument("--model", default=None, help="exported model folder, or demo (default: the bundled demo model)")
    p.add_argument("--mode", default="relative", choices=("relative", "standard", "avd"))
    p.add_argument("--cuda-graph", action="store_true", help="replay the frame as one CUDA graph")
    p.add_argument("--host-path", action="store_true", help="run as a folder without helper graphs")
    p.add_argument("--frames", type=int, default=6, help="frames to stream (default 6)")
    p.add_argument("--json", default=None, help="also write the result to this JSON file")
    args = p.parse_args(argv)
    from jamsdk.bundled import resolve_model

    model = str(resolve_model(args.model or args.model_pos))  # None or "demo": the bundled model
    r = measure(model, args.mode, args.cuda_graph, max(2, args.frames), args.host_path)
    b = r["before"]
    print(f"{r['model_dir']}: {r['image_size']}x{r['image_size']}, mode {r['mode']}, {r['path']}"
          f"{', CUDA graph' if r['cuda_graph'] else ''}")
    print(f"  per frame   H2D {r['h2d_bytes_per_frame']:>12,.0f} B   D2H {r['d2h_bytes_per_frame']:>10,.0f} B   "
          f"syncs {r['syncs_per_frame']:.0f}   graph launches {r['graph_launches_per_frame']:.0f}")
    print(f"  before      H2D {b['h2d_bytes_per_frame']:>12,.0f} B   D2H {b['d2h_bytes_per_frame']:>10,.0f} B   "
          f"syncs {b['syncs_per_frame']}")
    if args.json:
        from jamsdk._atomic import write_bytes

        write_bytes(args.json, (json.dumps(r, indent=1) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
