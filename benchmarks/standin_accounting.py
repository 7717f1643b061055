"""Device-side accounting of the TensorRT path on the CUDA/TensorRT stand-ins (no GPU needed).

Counts what the stand-ins count exactly (device bytes in use, streams, host↔device bytes, execution
contexts and CUDA graphs held) for four figures:

1. ``animator``: device memory of an Animator after its first frame, and after a reference search
   (``find_reference`` over the clip, then ``set_reference``) on top: equal when the search runs in
   the Animator's own pipeline (``extra_if_private`` is what a private one-stage pipeline would add:
   the region predictor's slots and activation memory, and a second stream);
2. ``stream_batch_no_helpers``: a StreamBatch on a folder whose engines predate the helper graphs:
   its one activation scratch against the largest and the sum of its engines' activation memory;
3. ``serve``: bytes per frame each way of a Serve replica's calls (``jamsdk.serve.streams``): the
   uint8 crop and result, beside the float32 tensors (``StreamBatch.run_tensors``) it sent before;
4. ``churn``: contexts and graphs a StreamBatch with CUDA graphs holds after each of N join/leave
   cycles of 3 streams in a new order every cycle, then with 4 streams in one chunk in 8 orders,
   with the bound ``batch_device`` states.

The stand-in's engines report every intermediate tensor as activation memory (an upper bound of
TensorRT's), so byte figures are the stand-in's; equalities and counts are what carries over.

    python benchmarks/standin_accounting.py [--model DIR] [--cycles 100] [--frames 4] [--json OUT]

``--model`` needs batch graphs (``jamsdk export --batch-sizes 4``); default: the demo checkpoint
exported so (FP32) into a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "runtime"))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))


def _inputs(frames: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(0)
    pictures = [rng.integers(0, 256, (140, 150, 3), dtype=np.uint8) for _ in range(3)]
    return pictures, [rng.integers(0, 256, (150, 140, 3), dtype=np.uint8) for _ in range(frames)]


def animator(folder: Path, cuda: Any, clip: list[np.ndarray], picture: np.ndarray) -> dict[str, Any]:
    import jamsdk

    with jamsdk.Animator(folder, backend="tensorrt", cuda_graph=True, verify_hashes=False) as anim:
        anim.set_source(picture)
        anim.run(clip[0])
        first = {"device_bytes": cuda.device_bytes, "streams": len(cuda.streams)}
        anim.set_reference(clip[anim.find_reference(clip)])
        anim.run(clip[1])
        after = {"device_bytes": cuda.device_bytes, "streams": len(cuda.streams)}
        rp = anim._backends["region_predictor"]
        slots = sum(max(256, -(-int(np.prod(s.shape)) * np.dtype(s.dtype).itemsize // 256) * 256)
                    for s in rp.stage.inputs + rp.stage.outputs)
        extra = slots + -(-rp.activation_bytes // 256) * 256
    return {"after_first_frame": first, "after_reference_search": after, "extra_if_private": extra}


def stream_batch_no_helpers(folder: Path, cuda: Any, clip: list[np.ndarray], pictures: list[np.ndarray]) -> dict:
    from jamsdk.runtime.batch import StreamBatch

    with StreamBatch(folder, backend="tensorrt", verify_hashes=False) as sb:
        ids = [sb.add_stream(p) for p in pictures]
        sb.run({sid: clip[0] for sid in ids})
        activation = [be.activation_bytes for be in sb._backends.values()]
        return {"engines": len(activation), "scratch_bytes": sb._stage_pipe.scratch[1],
                "max_activation": max(activation), "sum_activation": sum(activation), "streams": len(cuda.streams),
                "device_bytes": cuda.device_bytes}


def serve(folder: Path, cuda: Any, clip: list[np.ndarray], pictures: list[np.ndarray]) -> dict[str, Any]:
    from jamsdk.runtime.batch import StreamBatch
    from jamsdk.runtime.frames import to_model_input
    from jamsdk.serve.protocol import Limits, encode_png
    from jamsdk.serve.streams import ReplicaStreams

    with StreamBatch(folder, backend="tensorrt", verify_hashes=False) as sb:
        streams, size = ReplicaStreams(sb), sb.image_size

        async def frames() -> list[tuple[int, int, int]]:
            ids = [await streams.open(p) for p in pictures[:2]]
            moved = []
            for f in clip:
                crops = [streams.prepare(encode_png(f), Limits(), "frame") for _ in ids]
                cuda.counts.clear()
                await streams.animate(list(zip(ids, crops)))
                moved.append((cuda.counts["h2d_bytes"], cuda.counts["d2h_bytes"], len(ids)))
            cuda.counts.clear()
            sb.run_tensors({sid: to_model_input(clip[-1], size, False, "frame") for sid in ids})  # as before
            moved.append((cuda.counts["h2d_bytes"], cuda.counts["d2h_bytes"], len(ids)))
            return moved

        moved = asyncio.run(frames())
    steady, tensors = moved[1:-1] or moved[:-1], moved[-1]
    return {"image_size": size, "s2x3": size * size * 3,
            "h2d_bytes_per_frame": float(np.mean([h / n for h, _, n in steady])),
            "d2h_bytes_per_frame": float(np.mean([d / n for _, d, n in steady])),
            "float32_h2d_bytes_per_frame": tensors[0] / tensors[2],
            "float32_d2h_bytes_per_frame": tensors[1] / tensors[2]}


def churn(folder: Path, cycles: int, clip: list[np.ndarray], pictures: list[np.ndarray]) -> dict[str, Any]:
    from jamsdk.runtime.batch import StreamBatch

    with StreamBatch(folder, backend="tensorrt", cuda_graph=True, verify_hashes=False) as sb:
        pipe, sizes = sb._device.pipe, sb.batch_sizes
        per_frame = {name for (name, b) in sb._backends if b > 1}
        bound = {"contexts": len(per_frame) * len(sizes) + 2 + 3 * max(sizes), "graphs": 3 * len(sizes) + 1}
        ids = [sb.add_stream(p) for p in pictures]
        seen = []
        for cycle in range(cycles):
            order = ids[cycle % 3:] + ids[:cycle % 3]
            sb.run({sid: clip[(cycle + k) % len(clip)] for k, sid in enumerate(order)})
            sb.remove_stream(order[0])
            ids = order[1:] + [sb.add_stream(pictures[cycle % 3])]
            seen.append((len(pipe.bound), len(pipe.graphs)))
        if max(sizes) >= 4:  # then 4 streams in one chunk, in 8 orders (4 distinct, each twice)
            ids.append(sb.add_stream(pictures[0]))
            orders = []
            for k in range(8):
                order = [ids[(k * 3 + j * (1 + 2 * (k % 2))) % 4] for j in range(4)]
                sb.run({sid: clip[j % len(clip)] for j, sid in enumerate(order)})
                orders.append({"contexts": len(pipe.bound), "graphs": len(pipe.graphs)})
    marks = sorted({0, min(9, cycles - 1), cycles - 1})
    return {"batch_sizes": list(sizes), "cycles": cycles, "bound": bound,
            "after_cycle": {m + 1: {"contexts": seen[m][0], "graphs": seen[m][1]} for m in marks},
            "max": {"contexts": max(c for c, _ in seen), "graphs": max(g for _, g in seen)},
            "four_streams_in_8_orders": orders if max(sizes) >= 4 else None}


def measure(model: Path, cycles: int = 100, frames: int = 4, patch: Any = None) -> dict[str, Any]:
    import cuda_standin
    from gpu_check_pipeline import _Patch

    pictures, clip = _inputs(frames)
    out: dict[str, Any] = {"model": str(model)}
    with tempfile.TemporaryDirectory() as tmp:
        full = cuda_standin.make_engine_dir(model, Path(tmp) / "engines", batched=True)
        bare = cuda_standin.make_engine_dir(model, Path(tmp) / "no-helpers", helpers=False, batched=True)
        for name, run in (("animator", lambda c: animator(full, c, clip, pictures[0])),
                          ("stream_batch_no_helpers", lambda c: stream_batch_no_helpers(bare, c, clip, pictures)),
                          ("serve", lambda c: serve(full, c, clip, pictures)),
                          ("churn", lambda c: churn(full, cycles, clip, pictures))):
            cuda = cuda_standin.install(patch or _Patch())
            out[name] = run(cuda)
            out[name]["freed_on_close"] = cuda.device_bytes == 0 and not cuda.mem
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Device accounting of the TensorRT path on the CUDA/TensorRT stand-ins.")
    p.add_argument("--model", help="an exported folder with batch graphs (default: the demo, exported with batch 4)")
    p.add_argument("--cycles", type=int, default=100, help="join/leave cycles of 3 streams (default 100)")
    p.add_argument("--frames", type=int, default=4, help="frames per measurement (default 4)")
    p.add_argument("--json", help="also write the result here")
    args = p.parse_args(argv)
    import warnings

    from jamsdk.bundled import DemoModelWarning

    warnings.simplefilter("ignore", DemoModelWarning)  # the figures are about memory, not what the model can do
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(args.model) if args.model else None
        if model is None:
            from jamsdk.bundled import DEMO_CHECKPOINT
            from jamsdk.export.pipeline import export_checkpoint

            model = export_checkpoint(DEMO_CHECKPOINT, Path(tmp) / "demo-b4", precision="fp32", batch_sizes=(4,),
                                      log=lambda _l: None).out_dir
        r = measure(model, max(10, args.cycles), max(3, args.frames))
    a, n, s, c = r["animator"], r["stream_batch_no_helpers"], r["serve"], r["churn"]
    print(f"Animator device bytes: {a['after_first_frame']['device_bytes']} after the first frame, "
          f"{a['after_reference_search']['device_bytes']} after a reference search "
          f"(a private pipeline would add {a['extra_if_private']} and a stream)")
    print(f"StreamBatch without helper engines: scratch {n['scratch_bytes']} = max {n['max_activation']} "
          f"(sum {n['sum_activation']} over {n['engines']} engines), {n['streams']} stream")
    print(f"serve per frame: H2D {s['h2d_bytes_per_frame']:.0f} B, D2H {s['d2h_bytes_per_frame']:.0f} B "
          f"(S²·3 = {s['s2x3']}); float32 tensors: {s['float32_h2d_bytes_per_frame']:.0f} / "
          f"{s['float32_d2h_bytes_per_frame']:.0f} B")
    print(f"churn ({c['cycles']} cycles of 3 streams, sizes {c['batch_sizes']}): " + ", ".join(
        f"after {k}: {v['contexts']} contexts, {v['graphs']} graphs" for k, v in c["after_cycle"].items())
        + f"; bound {c['bound']['contexts']} contexts, {c['bound']['graphs']} graphs")
    if c["four_streams_in_8_orders"]:
        graphs = " ".join(str(o["graphs"]) for o in c["four_streams_in_8_orders"])
        print(f"  then 4 streams in 8 orders: graphs {graphs}")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
