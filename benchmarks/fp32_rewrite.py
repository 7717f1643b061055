"""The FP32 space-to-depth rewrite per stage: graph as exported vs rewritten, ONNX Runtime and OpenVINO.

    python benchmarks/fp32_rewrite.py                          # jam-256 (trained-like), exported here as is
    python benchmarks/fp32_rewrite.py --rounds 16 --json fp32_rewrite.json --markdown fp32_rewrite.md

jam-256 with trained-like weights is exported without rewrites (``rewrite_fp32=False``); each stage
with a convolution :func:`jamsdk.export.rewrite.narrow_convs_to_space_to_depth` can rewrite
(``generator``: the final 7×7 conv; ``dense_motion``: its occlusion head, which the export leaves
alone) is rewritten here, and the two graphs run side by side on ONNX Runtime and on OpenVINO
(the backends' settings, ``--threads``) with real inputs: the stage's inputs recorded while the
FP32 chain animates two frames of the bundled example clip. Also the final convolution alone
(64→3, 7×7, at the model's size, random weights and input). Rounds are interleaved (order reversed
every other round); reported per runtime: median ms of each graph and the per-round ratio
rewritten / as exported (median, p10–p90), plus the max |difference| of the outputs. The 1-minute
load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from _report import require_at_least, run_and_report  # benchmarks/ is sys.path[0]

CHAIN = ("region_predictor", "generator_encoder", "dense_motion", "generator")


def _runners(path: str, feed: dict[str, np.ndarray], threads: int) -> dict[str, Callable[[], list[np.ndarray]]]:
    import onnxruntime as ort

    from jamsdk.runtime.backends.onnxruntime import session_options
    from jamsdk.runtime.backends.openvino import compile_properties, core

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads
    session_options(opts)
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    req = core().compile_model(path, "CPU", compile_properties(threads)).create_infer_request()
    names = [o.name for o in sess.get_outputs()]
    return {"onnxruntime": lambda: sess.run(names, feed),
            "openvino": lambda: [v for _, v in sorted(req.infer(feed).items(), key=lambda kv: names.index(
                kv[0].get_any_name()))]}


def ab(plain: str, rewritten: str, feed: dict[str, np.ndarray], threads: int, rounds: int) -> dict[str, Any]:
    """Interleaved A/B of two graphs on both runtimes."""
    runs = {}
    for form, path in (("as_exported", plain), ("rewritten", rewritten)):
        for rt, fn in _runners(path, feed, threads).items():
            runs[(rt, form)] = fn
    outs = {k: fn() for k, fn in runs.items()}  # also the warm-up
    times: dict[tuple[str, str], list[float]] = {k: [] for k in runs}
    order = list(runs)
    for r in range(rounds):
        for k in order if r % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            runs[k]()
            times[k].append(time.perf_counter() - t0)
    result = {}
    for rt in ("onnxruntime", "openvino"):
        ratios = [a / b for a, b in zip(times[(rt, "rewritten")], times[(rt, "as_exported")])]
        p10, p90 = np.percentile(ratios, [10, 90])
        diff = max(float(np.abs(a - b).max()) for a, b in zip(outs[(rt, "rewritten")], outs[(rt, "as_exported")]))
        result[rt] = {"as_exported_ms": statistics.median(times[(rt, "as_exported")]) * 1e3,
                      "rewritten_ms": statistics.median(times[(rt, "rewritten")]) * 1e3,
                      "ratio": {"median": statistics.median(ratios), "p10": float(p10), "p90": float(p90)},
                      "max_abs_diff": diff}
    return result


def final_conv(size: int, work: Path) -> tuple[str, str, dict[str, np.ndarray]]:
    """The final convolution alone, as exported and rewritten (random weights, unit-scale outputs)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from jamsdk.export.rewrite import narrow_convs_to_space_to_depth

    rng = np.random.default_rng(0)
    w = (rng.standard_normal((3, 64, 7, 7)) / np.sqrt(64 * 49)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    g = helper.make_graph([helper.make_node("Conv", ["x", "W", "B"], ["y"], name="/final/Conv", kernel_shape=[7, 7],
                                            pads=[3, 3, 3, 3])], "final",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, size, size])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, size, size])],
                          [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    rewritten, _ = narrow_convs_to_space_to_depth(model)
    onnx.save(model, work / "final.onnx")
    onnx.save(rewritten, work / "final.s2d.onnx")
    return str(work / "final.onnx"), str(work / "final.s2d.onnx"), {
        "x": rng.standard_normal((1, 64, size, size)).astype(np.float32)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import onnx
    import torch

    from compare import build
    from jamsdk.config import CONFIG_DIR
    from jamsdk.export.calibration import StageChain, load_calibration
    from jamsdk.export.pipeline import export_checkpoint
    from jamsdk.export.rewrite import narrow_convs_to_space_to_depth
    from jamsdk.manifest import load_manifest
    from jamsdk.model.checkpoint import save_checkpoint
    from jamsdk.runtime import sysinfo

    load_before = os.getloadavg()[0]
    torch.set_num_threads(args.threads)
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="jamsdk-rewrite-") as tmp:
        work = Path(tmp)
        model = build(args.config, "trained-like")
        save_checkpoint(work / "m.pt", model, model.cfg)
        export_checkpoint(work / "m.pt", work / "model", precision="fp32", avd="off", log=lambda _m: None,
                          rewrite_fp32=False)
        m = load_manifest(work / "model")
        files = {n: m.stage_file(n) for n in CHAIN}
        assets = CONFIG_DIR.parent / "assets"
        clip = load_calibration(assets / "example_driving.mp4", m.image_size, 2, assets / "example_source.png")
        record: dict[str, list] = {}
        StageChain(files, args.threads).animate(clip.source, clip.calibration, record)
        rows["final conv alone"] = ab(*final_conv(m.image_size, work), args.threads, args.rounds)
        for stage in ("generator", "dense_motion"):
            rewritten, done = narrow_convs_to_space_to_depth(onnx.load(files[stage]))
            if not done:
                continue
            path = work / f"{stage}.s2d.onnx"
            onnx.save(rewritten, path)
            rows[stage] = {"rewritten_convs": done,
                           **ab(str(files[stage]), str(path), record[stage][-1], args.threads, args.rounds)}
    machine = sysinfo.machine_info(probe_gpu=False)
    return {"config": args.config, "threads": args.threads, "rounds": args.rounds,
            "machine": {k: machine[k] for k in ("cpu", "cpu_flags", "onnxruntime", "openvino")},
            "load_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}, "rows": rows}


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [f"# FP32 space-to-depth rewrite, {result['config']}: rewritten / as exported", "",
             f"- CPU: {m['cpu']}, flags {' '.join(m['cpu_flags'])}; onnxruntime {m['onnxruntime']}, "
             f"openvino {m['openvino']}; {result['threads']} threads, {result['rounds']} interleaved rounds; "
             f"1-min load {result['load_1min']['before']} before, {result['load_1min']['after']} after", "",
             "| graph | runtime | as exported ms | rewritten ms | rewritten / as exported, per round: median (p10–p90) "
             "| max abs diff |", "|---|---|---:|---:|---:|---:|"]
    for name, row in result["rows"].items():
        for rt in ("onnxruntime", "openvino"):
            r = row[rt]
            q = r["ratio"]
            lines.append(f"| {name} | {rt} | {r['as_exported_ms']:.1f} | {r['rewritten_ms']:.1f} | {q['median']:.3f} "
                         f"({q['p10']:.3f}–{q['p90']:.3f}) | {r['max_abs_diff']:.1e} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="jam-256", help="model config (default jam-256)")
    p.add_argument("--threads", type=int, default=2, help="threads for both runtimes (default 2)")
    p.add_argument("--rounds", type=int, default=16, help="interleaved rounds (default 16)")
    p.add_argument("--markdown", metavar="OUT", help="also write the markdown report here")
    p.add_argument("--json", metavar="OUT", help="also write everything as JSON")
    args = p.parse_args(argv)
    require_at_least(p, args, 1, "threads", "rounds")
    return 0 if run_and_report(lambda: run(args), render, args.json, args.markdown) is not None else 2


if __name__ == "__main__":
    sys.exit(main())
