"""PyTorch CUDA latency of the mixed-FP16 stages, per stage and per frame: jam-256 against mraa-256,
eager and replayed as CUDA graphs. A PyTorch proxy of the FP16 TensorRT engines, not TensorRT.

    python benchmarks/gpu_latency.py --device cuda --json gpu_latency.json
    python benchmarks/gpu_latency.py --device cpu --config tiny-mraa --config tiny-jam --iters 3 --rounds 2

Rows per model: every stage as one call on static inputs (the export's mixed precision: FP16
bodies, FP32 islands, ``_gpu_stages.mixed_precision``), and ``per frame``: the streaming chain with
the source's params and features cached (region predictor on the frame, background motion where
the model has it, dense motion, generator). Eager rows are timed per call with CUDA events; graph
rows capture the same call once (``torch.cuda.CUDAGraph``; for ``per frame`` the whole chain is
one graph, as the device-resident TensorRT design intends) and time its replay. Rounds interleave
the two models and alternate their order, so a slow phase of the GPU hits both alike; reported:
median and p90 ms per row, and the first model's latency over the second's. TF32 is off (the FP32
islands stay FP32). With ``--device cuda`` and no CUDA the script says so, writes
``{"status": "skipped"}`` and exits 0; on a CPU the graph rows are skipped (CUDA only).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _gpu_stages as gs  # noqa: E402

PER_FRAME = "per frame"


class Timer:
    """Times one call: CUDA events on a GPU (device time of the enqueued work), perf_counter on a CPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def __call__(self, fn: Callable[[], Any], iters: int) -> list[float]:
        if not self.cuda:
            out = []
            for _ in range(iters):
                t = time.perf_counter()
                fn()
                out.append((time.perf_counter() - t) * 1000.0)
            return out
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(iters)]
        for start, end in events:
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize()
        return [start.elapsed_time(end) for start, end in events]


def capture(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` captured as a CUDA graph (after warm-up on a side stream, as torch requires); its replay."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def rows(config: str, device: torch.device, half_dtype: torch.dtype, graphs: bool) -> dict[str, Callable[[], Any]]:
    """Name → call, for one model: each stage on static inputs, and the per-frame chain; eager and graph."""
    model = gs.build_model(config)
    _, mixed = gs.stage_sets(model, device, half_dtype)
    source, clip = gs.clip(mixed.size, 2, device)
    with torch.inference_mode():
        values, chain = gs.per_frame_call(mixed, source, clip[1:2])
        values = {**values, "image": values["driving"]}
        values.update({f"driving_{k}": v for k, v in mixed.run("region_predictor", {"image": clip[1:2]}).items()})
        if "bg_motion" in mixed.stages:
            values.update(mixed.run("bg_motion", values))
        values.update(mixed.run("dense_motion", values))
    calls: dict[str, Callable[[], Any]] = {
        stage: (lambda stage=stage: mixed.run(stage, values)) for stage in mixed.stages}
    calls[PER_FRAME] = chain
    out: dict[str, Callable[[], Any]] = {}
    for name, fn in calls.items():
        out[f"{name} eager"] = fn
        if graphs:
            try:
                with torch.inference_mode():
                    out[f"{name} graph"] = capture(fn)
            except Exception as exc:  # a stage that cannot be captured is reported, not fatal
                out[f"{name} graph"] = exc
    return out


def measure(configs: list[str], device: torch.device, half_dtype: torch.dtype, iters: int, rounds: int,
            warmup: int, emit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Rows per config (see the module docstring); ``emit(rows so far)`` after every round."""
    graphs = device.type == "cuda"
    gs.set_tf32(False)
    built = {c: rows(c, device, half_dtype, graphs) for c in configs}
    timer = Timer(device)
    samples: dict[str, dict[str, list[float]]] = {c: {r: [] for r in built[c]} for c in configs}
    with torch.inference_mode():
        for c in configs:
            for fn in built[c].values():
                if callable(fn):
                    timer(fn, warmup)
        names = list(dict.fromkeys(row for c in configs for row in built[c]))  # rows of every model, in order
        for r in range(rounds):
            order = configs if r % 2 == 0 else configs[::-1]
            for row in names:
                for c in order:
                    fn = built[c].get(row)
                    if callable(fn):
                        samples[c][row] += timer(fn, iters)
            if emit is not None:
                emit(_summarise(configs, built, samples))
    return _summarise(configs, built, samples)


def _summarise(configs: list[str], built: dict[str, dict[str, Any]],
               samples: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for c in configs:
        result[c] = {}
        for row, fn in built[c].items():
            if not callable(fn):
                result[c][row] = {"error": f"{type(fn).__name__}: {fn}"[:300]}
                continue
            ms = sorted(samples[c][row])
            if not ms:
                continue
            result[c][row] = {"p50_ms": statistics.median(ms), "p90_ms": ms[int(0.9 * (len(ms) - 1))],
                              "n": len(ms), "samples_ms": ms}
    return result


def report(result: dict[str, Any]) -> str:
    configs = result["configs"]
    first, second = configs[0], configs[-1]
    lines = [f"PyTorch latency on {result['machine'].get('gpu') or result['device']} ({result['half_dtype']} "
             f"bodies, FP32 islands, TF32 off); p50 ms (p90)", "",
             "| row | " + " | ".join(configs) + (f" | {first}/{second} |" if len(configs) > 1 else " |"),
             "|---|" + "---:|" * (len(configs) + (1 if len(configs) > 1 else 0))]
    for row in dict.fromkeys(row for c in configs for row in result["rows"][c]):
        cells, p50 = [], []
        for c in configs:
            r = result["rows"][c].get(row, {})
            cells.append(f"{r['p50_ms']:.3f} ({r['p90_ms']:.3f})" if "p50_ms" in r else ("n/a" if not r else "error"))
            p50.append(r.get("p50_ms"))
        ratio = ""
        if len(configs) > 1:
            ratio = f" | {p50[0] / p50[-1]:.2f}" if p50[0] and p50[-1] else " | –"
        lines.append(f"| {row} | " + " | ".join(cells) + ratio + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from gpu_fp16_numerics import _half_dtype, write_json

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="torch device (default cuda)")
    p.add_argument("--config", action="append", dest="configs", metavar="NAME",
                   help="model config, repeatable (default: jam-256 then mraa-256)")
    p.add_argument("--iters", type=int, default=50, help="timed calls per row and round (default 50)")
    p.add_argument("--rounds", type=int, default=6, help="interleaved rounds (default 6)")
    p.add_argument("--warmup", type=int, default=10, help="untimed calls per row first (default 10)")
    p.add_argument("--half-dtype", choices=sorted(gs.DTYPES), default="float16",
                   help="dtype of the FP16 body (default float16; float32 = stand-in)")
    p.add_argument("--json", metavar="OUT", help="write the result (with every sample) as JSON")
    args = p.parse_args(argv)
    for flag in ("iters", "rounds"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag}: expected at least 1, got {getattr(args, flag)}")
    device, why = gs.resolve_device(args.device)
    if device is None:
        print(f"gpu_latency: skipped: {why}")
        if args.json:
            write_json({"status": "skipped", "reason": why}, args.json)
        return 0
    dtype, dtype_text = _half_dtype(args.half_dtype, device)
    configs = args.configs or ["jam-256", "mraa-256"]
    start = time.perf_counter()
    head = {"device": str(device), "machine": gs.machine(device), "half_dtype": dtype_text,
            "cuda_graphs": device.type == "cuda", "configs": configs, "iters": args.iters}

    def emit(rows_so_far: dict[str, Any]) -> None:  # after every round: a timeout keeps what was measured
        if args.json:
            write_json({"status": "running", **head, "rows": rows_so_far,
                        "seconds": round(time.perf_counter() - start, 1)}, args.json)

    measured = measure(configs, device, dtype, args.iters, args.rounds, args.warmup, emit)
    result = {"status": "ok", "device": str(device), "machine": gs.machine(device), "half_dtype": dtype_text,
              "cuda_graphs": device.type == "cuda", "configs": configs, "iters": args.iters, "rounds": args.rounds,
              "rows": measured, "seconds": round(time.perf_counter() - start, 1)}
    print(report(result))
    if args.json:
        write_json(result, args.json)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
