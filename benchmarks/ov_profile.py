"""OpenVINO per-stage, per-op profile of a model folder's graphs (INT8 by default), before vs after.

    python benchmarks/ov_profile.py --model DIR                              # one folder
    python benchmarks/ov_profile.py --model AFTER --before BEFORE --runs 12 --json prof.json --markdown prof.md

Each stage's graph that ``Animator(backend="openvino", precision=...)`` would run (its
``int8_openvino`` file for INT8) is compiled as jamsdk compiles it, plus ``PERF_COUNT``, and run on
real inputs: the FP32 chain of the folder (ONNX Runtime) animates frames of the bundled example
clip (the bundled picture as the source) and records every stage's inputs. Per round each folder's
stage runs ``--calls`` times, the folders in alternating order; OpenVINO's per-layer counters are
summed by op type and implementation (``brgconv_avx512_I8`` is an INT8 convolution,
``jit_avx512_f32`` an FP32 kernel, ``ref_*`` a slow reference one) and reported per call, with the
layers that took longest and the wall time per call (median, and after/before per round). The two
folders must be exports of the same model (same stages and inputs). The CPU, its flags and the
load average are printed with the tables: per-layer times under load are inflated, their shares
less so.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from _report import require_at_least, run_and_report  # benchmarks/ is sys.path[0]

STAGES = ("region_predictor", "dense_motion", "generator")
CHAIN = ("region_predictor", "generator_encoder", "dense_motion", "generator")


def record_inputs(folder: Path, frames: int) -> dict[str, list[dict[str, np.ndarray]]]:
    """Every stage's inputs while the folder's FP32 chain animates ``frames`` frames of the example clip."""
    from jamsdk.config import CONFIG_DIR
    from jamsdk.export.calibration import StageChain, load_calibration
    from jamsdk.manifest import load_manifest

    m = load_manifest(folder)
    assets = CONFIG_DIR.parent / "assets"
    clip = load_calibration(assets / "example_driving.mp4", m.image_size, frames, assets / "example_source.png")
    record: dict[str, list] = {}
    StageChain({n: m.stage_file(n) for n in CHAIN}, 2).animate(clip.source, clip.calibration, record)
    return record


def compile_profiled(path: Path, threads: int) -> Any:
    from jamsdk.runtime.backends.openvino import compile_properties, core

    return core().compile_model(str(path), "CPU", {**compile_properties(threads), "PERF_COUNT": True}) \
        .create_infer_request()


def run(args: argparse.Namespace) -> dict[str, Any]:
    from jamsdk.manifest import load_manifest
    from jamsdk.runtime.sysinfo import cpu_flags, cpu_model, package_version

    folders = {"after": Path(args.model)} | ({"before": Path(args.before)} if args.before else {})
    load = [os.getloadavg()[0]]
    feeds = record_inputs(folders["after"], args.frames)
    result: dict[str, Any] = {"folders": {k: str(v) for k, v in folders.items()}, "precision": args.precision,
                              "threads": args.threads, "runs": args.runs, "calls": args.calls, "stages": {}}
    for stage in args.stages:
        inputs = [{k: np.ascontiguousarray(v) for k, v in f.items()} for f in feeds[stage][:args.calls]]
        requests, files = {}, {}
        for key, folder in folders.items():
            path = load_manifest(folder).stage_file(stage, args.precision, prefer="int8_openvino")
            files[key] = path.name
            requests[key] = compile_profiled(path, args.threads)
            for f in inputs:  # warm-up: first calls pay for memory and kernel set-up
                requests[key].infer(f)
        by_type = {k: collections.defaultdict(float) for k in folders}
        by_layer = {k: collections.defaultdict(float) for k in folders}
        wall = {k: [] for k in folders}
        order = list(folders)
        for r in range(args.runs):
            for key in order if r % 2 == 0 else order[::-1]:
                this = []
                for f in inputs:
                    t0 = time.perf_counter()
                    requests[key].infer(f)
                    this.append(time.perf_counter() - t0)
                    for p in requests[key].profiling_info:
                        if p.status.name == "EXECUTED":
                            ms = p.real_time.total_seconds() * 1e3
                            by_type[key][f"{p.node_type} {p.exec_type}"] += ms
                            by_layer[key][p.node_name] += ms
                wall[key].append(statistics.median(this))
        load.append(os.getloadavg()[0])
        calls = args.runs * len(inputs)
        out: dict[str, Any] = {"files": files}
        for key in folders:
            total = sum(by_type[key].values())
            out[key] = {"wall_ms": statistics.median(wall[key]) * 1e3, "layers_ms": total / calls,
                        "by_type": {t: {"ms": v / calls, "share": v / total}
                                    for t, v in sorted(by_type[key].items(), key=lambda x: -x[1])},
                        "top_layers": {n: v / calls for n, v in sorted(by_layer[key].items(), key=lambda x: -x[1])[:8]}}
        if "before" in folders:
            ratios = [a / b for a, b in zip(wall["after"], wall["before"])]
            out["after_over_before"] = {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
        result["stages"][stage] = out
    result["machine"] = {"cpu": cpu_model(), "cpu_flags": cpu_flags(), "logical_cpus": os.cpu_count(),
                         "openvino": package_version("openvino")}
    result["load_1min"] = load
    return result


def render(result: dict[str, Any]) -> str:
    m, load = result["machine"], result["load_1min"]
    keys = list(result["folders"])[::-1]  # before, after
    lines = [f"# OpenVINO per-op profile ({result['precision']}): " + ", ".join(f"{k} = {v}" for k, v in
                                                                            result["folders"].items()), "",
             f"- CPU: {m['cpu']} ({m['logical_cpus']} logical), flags {' '.join(m['cpu_flags']) or '-'}; openvino "
             f"{m['openvino']}; {result['threads']} threads; {result['runs']} interleaved rounds × {result['calls']} "
             f"calls per stage; 1-min load {load[0]:.1f} → {load[-1]:.1f} (max {max(load):.1f})", ""]
    for stage, s in result["stages"].items():
        head = f"## {stage} (" + ", ".join(f"{k}: {s['files'][k]} {s[k]['wall_ms']:.1f} ms per call" for k in keys)
        if "after_over_before" in s:
            r = s["after_over_before"]
            head += f"; after/before per round {r['median']:.3f} [{r['min']:.3f}–{r['max']:.3f}]"
        lines += [head + ")", "", "| op, implementation | " + " | ".join(f"{k} ms (share)" for k in keys) + " |",
                  "|---|" + "---:|" * len(keys)]
        types = list(dict.fromkeys(t for k in keys for t in s[k]["by_type"]))
        for t in sorted(types, key=lambda t: -max(s[k]["by_type"].get(t, {"ms": 0})["ms"] for k in keys))[:14]:
            cells = [f"{s[k]['by_type'][t]['ms']:.2f} ({100 * s[k]['by_type'][t]['share']:.1f} %)"
                     if t in s[k]["by_type"] else "–" for k in keys]
            lines.append(f"| {t} | " + " | ".join(cells) + " |")
        lines.append("| **sum of layers** | " + " | ".join(f"**{s[k]['layers_ms']:.2f}**" for k in keys) + " |")
        for k in keys:
            lines += ["", f"Longest layers ({k}): " + ", ".join(f"{n} {v:.2f}" for n, v in s[k]["top_layers"].items())]
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the folder to profile (the 'after' one)")
    p.add_argument("--before", help="a folder of the same model to compare with (e.g. exported by an older jamsdk)")
    p.add_argument("--precision", default="int8", choices=("fp32", "int8"), help="graphs to profile (default int8)")
    p.add_argument("--stages", default=",".join(STAGES), help=f"stages (default {','.join(STAGES)})")
    p.add_argument("--threads", type=int, default=2, help="OpenVINO threads (default 2)")
    p.add_argument("--runs", type=int, default=8, help="interleaved rounds (default 8)")
    p.add_argument("--calls", type=int, default=2, help="calls per round, on different frames (default 2)")
    p.add_argument("--frames", type=int, default=4, help="example-clip frames recorded (default 4)")
    p.add_argument("--json", metavar="OUT")
    p.add_argument("--markdown", metavar="OUT")
    args = p.parse_args(argv)
    require_at_least(p, args, 1, "threads", "runs", "calls", "frames")
    args.stages = [s for s in args.stages.split(",") if s]
    if any(s not in STAGES for s in args.stages):
        p.error(f"--stages: expected some of {','.join(STAGES)}, got {','.join(args.stages)}")
    args.calls = min(args.calls, args.frames)
    return 0 if run_and_report(lambda: run(args), render, args.json, args.markdown) is not None else 2


if __name__ == "__main__":
    sys.exit(main())
