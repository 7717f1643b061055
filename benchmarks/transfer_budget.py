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

``--batch B`` counts a :class:`~jamsdk.runtime.batch.StreamBatch` of B streams instead, per chunk of
B frames (the folder needs batch-B graphs: ``jamsdk export --batch-sizes``); ``before`` is then the
per-stage design of a chunk (every input of every batched stage up, every output down, a sync each).

``--memory`` reports the device bytes in use after opening an Animator (engines, slot buffers and
the activation scratch), with the design it replaced: one STATIC execution context per binding set,
each with its own activation memory (the stand-in's engines report every intermediate tensor of
their graph as activation memory, an upper bound of TensorRT's, which reuses memory between layers).

``--config NAME`` exports a model of that config (random weights) into a temporary folder first
(``--export-batch-sizes 2,4`` adds batched graphs), e.g. for jam-256.

    python benchmarks/transfer_budget.py --model MODEL_DIR [--mode relative|standard|avd] [--cuda-graph] [--json OUT]
    python benchmarks/transfer_budget.py --model MODEL_DIR --batch 4 [--cuda-graph]
    python benchmarks/transfer_budget.py --model demo --memory --cuda-graph
    python benchmarks/transfer_budget.py --config jam-256 --memory --cuda-graph
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



def _mean_count(counts: list[dict], key: str) -> float:
    """Mean of one stand-in counter (bytes, syncs, launches) over the steady-state runs."""
    return float(np.mean([c.get(key, 0) for c in counts]))

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
                return _mean_count(steady, key)

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


def before_batch(manifest: Any, mode: str, b: int, use_bg_motion: bool = False) -> dict[str, Any]:
    """A chunk of ``b`` streams in the per-stage design: every batched stage's inputs up, outputs down, a sync each."""
    from jamsdk.stages import Stage, batched

    stages = ["region_predictor"] + (["bg_motion"] if use_bg_motion else []) + (["avd"] if mode == "avd" else []) \
        + ["dense_motion", "generator"]
    specs = [batched(Stage(n, manifest.stage(n).per, manifest.stage(n).inputs, manifest.stage(n).outputs), b)
             for n in stages]
    return {"h2d_bytes_per_chunk": sum(_nbytes(s) for st in specs for s in st.inputs),
            "d2h_bytes_per_chunk": sum(_nbytes(s) for st in specs for s in st.outputs),
            "syncs_per_chunk": len(stages), "graph_launches_per_chunk": None,
            "method": "the per-stage StreamBatch on TensorRT: each batched stage copied all inputs H2D and all "
                      "outputs D2H and synced once (computed from the stage table)"}


def measure_batch(model_dir: str | Path, batch: int, mode: str = "relative", cuda_graph: bool = False,
                  chunks: int = 4, patch: Any = None) -> dict[str, Any]:
    """``batch`` streams through a StreamBatch on the stand-ins; per-chunk averages after the first chunk."""
    import cuda_standin

    from jamsdk.errors import InputError
    from jamsdk.manifest import load_manifest
    from jamsdk.runtime.batch import StreamBatch

    src = Path(model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        folder = cuda_standin.make_engine_dir(src, Path(tmp) / "model", batched=True)
        cuda = cuda_standin.install(patch or _Patch())
        manifest = load_manifest(folder, verify_hashes=False)
        if batch not in manifest.batch_sizes:
            raise InputError(f"{src} has no batch-{batch} graphs (sizes {list(manifest.batch_sizes)}); export it "
                             f"with --batch-sizes {batch}")
        size = manifest.image_size
        rng = np.random.default_rng(0)
        per_chunk, source_h2d = [], []
        with StreamBatch(folder, backend="tensorrt", mode=mode, cuda_graph=cuda_graph, verify_hashes=False,
                         max_batch=batch) as sb:
            ids = []
            for _ in range(batch):
                state = sb.encode(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
                cuda.counts.clear()
                ids.append(sb.add_stream(state))
                source_h2d.append(cuda.counts["h2d_bytes"])  # the stream's source tensors, once
            device_path = sb._device is not None
            for _ in range(chunks):
                frames = {sid: rng.integers(0, 256, (size + 32, size + 48, 3), dtype=np.uint8) for sid in ids}
                cuda.counts.clear()
                sb.run(frames)
                per_chunk.append(dict(cuda.counts))
            steady = per_chunk[1:]

            def avg(key: str) -> float:
                return _mean_count(steady, key)

            result = {
                "model_dir": str(src), "mode": mode, "cuda_graph": cuda_graph, "image_size": size, "batch": batch,
                "chunks": chunks, "path": "device plan" if device_path else "per-stage (no helper engines)",
                "h2d_bytes_per_chunk": avg("h2d_bytes"), "d2h_bytes_per_chunk": avg("d2h_bytes"),
                "d2d_bytes_per_chunk": avg("d2d_bytes"), "syncs_per_chunk": avg("syncs"),
                "graph_launches_per_chunk": avg("graph_launches"), "first_chunk": per_chunk[0],
                "source_h2d_bytes_per_stream": float(np.mean(source_h2d)),
                "budget": {"h2d_max": batch * size * size * 3 + 4096, "d2h_max": batch * size * size * 3 + 4096,
                           "syncs": 1},
                "before": before_batch(manifest, mode, batch),
            }
    return result


def measure_memory(model_dir: str | Path, mode: str = "relative", cuda_graph: bool = True,
                   patch: Any = None) -> dict[str, Any]:
    """Device bytes after opening an Animator (and streaming two frames) on the counting stand-in."""
    import cuda_standin

    import jamsdk

    src = Path(model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        folder = cuda_standin.make_engine_dir(src, Path(tmp) / "model")
        cuda = cuda_standin.install(patch or _Patch())
        with jamsdk.Animator(folder, backend="tensorrt", mode=mode, cuda_graph=cuda_graph, verify_hashes=False) as anim:
            size = anim.image_size
            rng = np.random.default_rng(0)
            opened = cuda.device_bytes
            anim.set_source(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
            for _ in range(3):  # every context of the frame plans bound, graphs captured
                anim.run(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
            pipe = anim._pipe
            engines = sum(cuda.reserved.values())
            slots = sum(cuda.sizes[p] for p in pipe.device.values())
            scratch = cuda.sizes.get(pipe.scratch[0], 0) if pipe.scratch[1] else 0
            contexts = list(pipe.bound.values())
            per_context = [b.backend.activation_bytes for b in contexts]
            result = {
                "model_dir": str(src), "mode": mode, "cuda_graph": cuda_graph, "image_size": size,
                "device_bytes_after_open": opened, "device_bytes_streaming": cuda.device_bytes,
                "engines_bytes": engines, "slot_bytes": slots, "scratch_bytes": scratch,
                "contexts": len(contexts), "streams": 1,
                "before": {"activation_bytes": int(sum(-(-n // 256) * 256 for n in per_context)),
                           "device_bytes": engines + slots + int(sum(-(-n // 256) * 256 for n in per_context)),
                           "method": "one STATIC context per binding set, each allocating its engine's "
                                     "device_memory_size_v2 (the same contexts as now)"},
            }
            result["bound_ok"] = cuda.device_bytes == engines + slots + scratch
    return result


def export_config(config: str, out: Path, batch_sizes: tuple[int, ...] = ()) -> Path:
    """A model of ``config`` with random weights (AVD on), exported in FP32 into ``out``."""
    import torch

    from jamsdk.config import load_model_config
    from jamsdk.export.pipeline import export_checkpoint
    from jamsdk.model.checkpoint import save_checkpoint
    from jamsdk.model.jam import build_model

    torch.manual_seed(0)
    model = build_model(load_model_config(config)).eval()
    save_checkpoint(out.parent / "model.pt", model, model.cfg, meta={"avd_trained": True})
    export_checkpoint(out.parent / "model.pt", out, precision="fp32", avd="on", batch_sizes=batch_sizes,
                      log=lambda _m: None)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Count host-device traffic per frame of the TensorRT path on the CUDA "
                                            "stand-in.")
    p.add_argument("model_pos", nargs="?", help=argparse.SUPPRESS)  # the spelling: MODEL_DIR first
    p.add_argument("--model", default=None, help="exported model folder, or demo (default: the bundled demo model)")
    p.add_argument("--mode", default="relative", choices=("relative", "standard", "avd"))
    p.add_argument("--cuda-graph", action="store_true", help="replay the frame as one CUDA graph")
    p.add_argument("--host-path", action="store_true", help="run as a folder without helper graphs")
    p.add_argument("--frames", type=int, default=6, help="frames (--batch: chunks) to stream (default 6)")
    p.add_argument("--batch", type=int, default=None, help="count a StreamBatch of B streams per chunk instead")
    p.add_argument("--memory", action="store_true", help="report device bytes after opening an Animator")
    p.add_argument("--config", default=None, help="export a random-weight model of this config first (e.g. jam-256)")
    p.add_argument("--export-batch-sizes", default="", help="with --config: batch sizes to export, e.g. 2,4")
    p.add_argument("--json", default=None, help="also write the result to this JSON file")
    args = p.parse_args(argv)
    if args.batch is not None and args.batch < 1:
        p.error(f"--batch: expected at least 1, got {args.batch}")
    from jamsdk.bundled import resolve_model

    with tempfile.TemporaryDirectory() as tmp:
        if args.config:
            sizes = tuple(int(b) for b in args.export_batch_sizes.split(",") if b.strip())
            model = str(export_config(args.config, Path(tmp) / "model", sizes))
        else:
            model = str(resolve_model(args.model or args.model_pos))  # None or "demo": the bundled model
        if args.memory:
            r = measure_memory(model, args.mode, args.cuda_graph)
            print(f"{args.config or r['model_dir']}: {r['image_size']}x{r['image_size']}, mode {r['mode']}"
                  f"{', CUDA graph' if r['cuda_graph'] else ''}: device bytes while streaming "
                  f"{r['device_bytes_streaming']:,} = engines {r['engines_bytes']:,} + slots {r['slot_bytes']:,} "
                  f"+ one scratch {r['scratch_bytes']:,} ({r['contexts']} contexts, 1 stream)")
            print(f"  before (a STATIC context per binding set): {r['before']['device_bytes']:,} "
                  f"(activations {r['before']['activation_bytes']:,} in {r['contexts']} contexts)")
            _write(args.json, r)
            return 0 if r["bound_ok"] else 1
        if args.batch is not None:
            r = measure_batch(model, args.batch, args.mode, args.cuda_graph, max(2, args.frames))
            b = r["before"]
            print(f"{args.config or r['model_dir']}: {r['image_size']}x{r['image_size']}, mode {r['mode']}, "
                  f"{r['batch']} streams, {r['path']}{', CUDA graph' if r['cuda_graph'] else ''}")
            print(f"  per chunk   H2D {r['h2d_bytes_per_chunk']:>12,.0f} B   "
                  f"D2H {r['d2h_bytes_per_chunk']:>10,.0f} B   "
                  f"syncs {r['syncs_per_chunk']:.0f}   graph launches {r['graph_launches_per_chunk']:.0f}   "
                  f"(on the device: D2D {r['d2d_bytes_per_chunk']:,.0f} B)")
            print(f"  before      H2D {b['h2d_bytes_per_chunk']:>12,.0f} B   "
                  f"D2H {b['d2h_bytes_per_chunk']:>10,.0f} B   "
                  f"syncs {b['syncs_per_chunk']}")
            print(f"  per stream, once per set_source: H2D {r['source_h2d_bytes_per_stream']:,.0f} B")
            _write(args.json, r)
            return 0
        r = measure(model, args.mode, args.cuda_graph, max(2, args.frames), args.host_path)
    b = r["before"]
    print(f"{r['model_dir']}: {r['image_size']}x{r['image_size']}, mode {r['mode']}, {r['path']}"
          f"{', CUDA graph' if r['cuda_graph'] else ''}")
    print(f"  per frame   H2D {r['h2d_bytes_per_frame']:>12,.0f} B   D2H {r['d2h_bytes_per_frame']:>10,.0f} B   "
          f"syncs {r['syncs_per_frame']:.0f}   graph launches {r['graph_launches_per_frame']:.0f}")
    print(f"  before      H2D {b['h2d_bytes_per_frame']:>12,.0f} B   D2H {b['d2h_bytes_per_frame']:>10,.0f} B   "
          f"syncs {b['syncs_per_frame']}")
    _write(args.json, r)
    return 0


def _write(path: str | None, result: dict[str, Any]) -> None:
    if path:
        from jamsdk._atomic import write_bytes

        write_bytes(path, (json.dumps(result, indent=1) + "\n").encode())


if __name__ == "__main__":
    sys.exit(main())
