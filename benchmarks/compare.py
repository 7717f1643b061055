"""Per-frame latency, one machine: MRAA in PyTorch (what users run today) vs JAM in PyTorch vs JAM through jamsdk.

    python benchmarks/compare.py                                  # mraa-256 vs jam-256 (est. 2-3 min on 2 idle cores)
    python benchmarks/compare.py --rounds 30 --markdown compare.md --png compare.png --json compare.json
    python benchmarks/compare.py --config-baseline tiny-mraa --config-candidate tiny-jam --rounds 1 --frames 2

Three ways to animate one picture, batch 1, the configs' resolution (256×256), the same thread
count for all (``--threads``: ``torch.set_num_threads`` and ONNX Runtime's intra-op threads):

1. **baseline, PyTorch eager** (``mraa-256``): MRAA's reference loop. The source's region params
   are computed once; per driving frame the region predictor runs on the frame, then dense motion
   and the whole generator, including its source encoder (upstream re-encodes the fixed source
   every frame).
2. **candidate, PyTorch eager** (``jam-256``): the same loop.
3. **candidate through jamsdk**: the same weights exported with :mod:`jamsdk.export.pipeline`
   (FP32 graphs, onnxsim) to a temporary folder and streamed by :class:`jamsdk.Animator` on ONNX
   Runtime (CPU): ``set_source`` once (region params and encoder features cached), then per frame
   ``run_tensor``: region predictor, dense motion, generator decoder. With INT8 (default) the same
   folder's INT8 graphs too, and where openvino is installed the FP32 and INT8 graphs on OpenVINO
   (rows ``candidate_jamsdk_openvino`` and ``candidate_jamsdk_openvino_int8``).

Mode ``standard`` everywhere (driving regions used as they are, so no contender does the relative
mode's host algebra). Weights: ``trained-like`` by default (:func:`jamsdk.export.samples.trained_like`;
a freshly built model's heads are nearly constant), the same for 2 and 3. Driving frames: the
synthetic clip of :mod:`jamsdk.export.samples` in model space (float32 ``(1, 3, S, S)`` in [0, 1]),
so no contender decodes or resizes.

Timing: ``--warmup`` untimed frames per contender, then ``--rounds`` rounds. In each round every
contender runs one untimed frame (its thread pool wakes up while the other runtime's spinning
threads go to sleep) and then ``--frames`` timed frames; the order of the contenders is reversed
every other round, so a busy phase of a shared machine hits all of them. Reported: the median
(and p10–p90) over all timed frames, and ratios of medians. The eager loops are timed per stage
too (PyTorch on the CPU is synchronous, so ``perf_counter`` between calls is exact); the jamsdk
stages come from ``Animator.stats()`` (medians over all its frames, the untimed ones included).
The yardstick conv of ``_cost.py`` runs once per round and flags a busy machine, as in
``model_cost.py``.

``--model DIR`` runs an existing folder of the candidate with the same weights instead of exporting
one (``jam256_folder.py`` writes jam-256's, trained-like, seed 0, with INT8): the export is the slow
part of a run.

Targets: the best jamsdk row at most 0.10× the baseline's PyTorch time per frame (on a CPU with
AVX-512 VNNI; the INT8 rows), and the best FP32 jamsdk row at most 0.30×. The CPU's flags are
printed with the table: INT8 speed depends on VNNI.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch

from _cost import calibration_call, machine_info  # benchmarks/ is sys.path[0]
from _report import require_at_least, write_reports
from jamsdk._atomic import write_bytes
from jamsdk.errors import JamError

TARGET_RATIO = 0.10  # best jamsdk row (INT8 on an AVX-512 VNNI CPU)
FP32_TARGET_RATIO = 0.30  # best FP32 jamsdk row
SLOW_ROUND = 1.2  # a calibration round this much slower than the best one means the machine was busy
EAGER_STAGES = ("region_predictor", "dense_motion", "generator_encoder", "generator")
ORT_STAGES = ("region_predictor", "dense_motion", "generator")
ROW_KEYS = ("baseline_eager", "candidate_eager", "candidate_jamsdk", "candidate_jamsdk_int8",
            "candidate_jamsdk_openvino", "candidate_jamsdk_openvino_int8")
#: jamsdk rows: key → (backend, precision, label suffix)
JAMSDK_ROWS = {"candidate_jamsdk": ("onnxruntime", "fp32", "ONNX Runtime FP32"),
               "candidate_jamsdk_int8": ("onnxruntime", "int8", "ONNX Runtime INT8"),
               "candidate_jamsdk_openvino": ("openvino", "fp32", "OpenVINO FP32"),
               "candidate_jamsdk_openvino_int8": ("openvino", "int8", "OpenVINO INT8")}
STAGE_LABELS = {"region_predictor": "region_predictor (driving frame)", "dense_motion": "dense_motion",
                "generator_encoder": "generator_encoder (source)", "generator": "generator (decoder)"}


class Contender:
    """One way of animating: ``step(i)`` animates driving frame ``i``; samples in seconds."""

    def __init__(self, key: str, label: str, does: str, step: Callable[[int], Any]):
        self.key, self.label, self.does, self.step = key, label, does, step
        self.samples: list[float] = []
        self.stages: dict[str, list[float]] = {}  # eager contenders: per-stage seconds of timed frames

    def run(self, i: int, timed: bool) -> None:
        t0 = time.perf_counter()
        self.step(i)
        if timed:
            self.samples.append(time.perf_counter() - t0)


def build(config: str, weights: str):
    """A model of ``config`` (random weights, seed 0; rescaled heads for ``trained-like``), eval mode."""
    from jamsdk.config import load_model_config
    from jamsdk.export.samples import trained_like
    from jamsdk.model.jam import build_model

    torch.manual_seed(0)
    model = build_model(load_model_config(config)).eval()
    if weights == "trained-like":
        trained_like(model)
    return model


def eager_contender(key: str, label: str, model, source: torch.Tensor, clip: torch.Tensor) -> Contender:
    """MRAA's reference per-frame loop in PyTorch, each stage timed."""
    with torch.inference_mode():
        src_params = model.region_predictor(source)
    rp, dm, gen = model.region_predictor, model.dense_motion, model.generator
    marks: dict[str, list[float]] = {name: [] for name in EAGER_STAGES}

    def step(i: int) -> None:
        drv = clip[i % len(clip)][None]
        with torch.inference_mode():
            t0 = time.perf_counter()
            drv_params = rp(drv)
            t1 = time.perf_counter()
            motion = dm(source, drv_params, src_params, None)  # bg not passed, as in MRAA's animation
            t2 = time.perf_counter()
            feats = gen.encode(source)  # upstream's generator re-encodes the fixed source every frame
            t3 = time.perf_counter()
            gen.decode(source, feats, motion["optical_flow"], motion["occlusion_map"])
            t4 = time.perf_counter()
        for name, dt in zip(EAGER_STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            marks[name].append(dt)

    c = Contender(key, label, "region_predictor(frame) + dense_motion + generator_encoder(source) + decoder", step)
    c.stages = marks
    return c


def export_model(model, workdir: Path, int8: bool = False, threads: int | None = None) -> Path:
    """FP32 graphs (+ INT8, calibrated on the bundled example clip, with ``int8``) in ``workdir/model``."""
    from jamsdk.config import CONFIG_DIR
    from jamsdk.export.pipeline import export_checkpoint
    from jamsdk.model.checkpoint import save_checkpoint

    ckpt = workdir / "candidate.pt"
    save_checkpoint(ckpt, model, model.cfg)
    assets = CONFIG_DIR.parent / "assets"
    extra = {"calibration": assets / "example_driving.mp4", "calibration_source": assets / "example_source.png",
             "calibration_frames": 8} if int8 else {}
    # threads: the CPU speed gate times each stage's INT8 forms with the threads the row runs with
    export_checkpoint(ckpt, workdir / "model", precision="int8" if int8 else "fp32", avd="off",
                      log=lambda _m: None, threads=threads, **extra)
    return workdir / "model"


def summarize(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds, np.float64) * 1e3
    p10, p50, p90 = np.percentile(ms, [10, 50, 90])
    return {"median": float(p50), "p10": float(p10), "p90": float(p90), "min": float(ms.min()),
            "mean": float(ms.mean()), "count": int(ms.size)}


@contextlib.contextmanager
def cache_dir(path: str):
    """``JAMSDK_CACHE_DIR`` set to ``path`` for the block (restored after)."""
    before = os.environ.get("JAMSDK_CACHE_DIR")
    os.environ["JAMSDK_CACHE_DIR"] = path
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("JAMSDK_CACHE_DIR", None)
        else:
            os.environ["JAMSDK_CACHE_DIR"] = before


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def run(args: argparse.Namespace) -> dict[str, Any]:
    import onnxruntime

    import jamsdk
    from jamsdk.runtime.sysinfo import cpu_flags, package_version

    load_before = _load()
    from jamsdk.config import load_model_config
    from jamsdk.export.samples import synthetic_clip

    base_cfg, cand_cfg = load_model_config(args.config_baseline), load_model_config(args.config_candidate)
    if base_cfg.image_size != cand_cfg.image_size:
        raise JamError(f"the configs must share a resolution: {base_cfg.name} is {base_cfg.image_size}px, "
                       f"{cand_cfg.name} is {cand_cfg.image_size}px")
    if base_cfg.name == cand_cfg.name:
        raise JamError(f"baseline and candidate must be different configs, got {base_cfg.name!r} twice")
    size = base_cfg.image_size
    torch.set_num_threads(args.threads)
    source, clip = synthetic_clip(size, frames=8, seed=0)
    clip_np = [np.ascontiguousarray(f[None].numpy()) for f in clip]

    t0 = time.perf_counter()
    base_model, cand_model = build(args.config_baseline, args.weights), build(args.config_candidate, args.weights)
    build_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="jamsdk-compare-") as tmp, \
            cache_dir(os.path.join(tmp, "cache")):  # OpenVINO's blobs of a throw-away folder: not the user's cache
        t0 = time.perf_counter()
        model_dir = Path(args.model) if args.model else export_model(cand_model, Path(tmp), args.int8, args.threads)
        if args.int8 and "int8" not in json.loads((model_dir / "manifest.json").read_text())["precisions"]:
            raise JamError(f"--model {model_dir} has no INT8 graphs (export it with jam256_folder.py, or add --no-int8)")
        export_s = time.perf_counter() - t0
        base = f"{base_cfg.name} PyTorch eager"
        cand = f"{cand_cfg.name} PyTorch eager"
        contenders = [eager_contender("baseline_eager", base, base_model, source, clip),
                      eager_contender("candidate_eager", cand, cand_model, source, clip)]
        wanted = [k for k, (backend, precision, _) in JAMSDK_ROWS.items()
                  if (args.int8 or precision != "int8") and (args.openvino or backend != "openvino")]
        with contextlib.ExitStack() as stack:
            anims = {}
            for key in wanted:
                backend, precision, what = JAMSDK_ROWS[key]
                anim = stack.enter_context(jamsdk.Animator(model_dir, backend=backend, mode="standard",
                                                           threads=args.threads, precision=precision))
                anim.set_source_tensor(np.ascontiguousarray(source.numpy()))
                anims[key] = anim
                does = ("region_predictor(frame) + dense_motion + decoder; source work cached" if precision == "fp32"
                        else "as above, Q/DQ graphs (export --precision int8; each runtime its export-judged graphs)")
                contenders.append(Contender(key, f"{cand_cfg.name} jamsdk ({what})", does,
                                            lambda i, anim=anim: anim.run_tensor(clip_np[i % len(clip_np)])))
            cal_call, cal_macs = calibration_call()
            cal: list[float] = []
            frame = 0
            for c in contenders:  # warm-up, untimed
                for _ in range(args.warmup):
                    c.run(frame, timed=False)
                    frame += 1
            for c in contenders:
                for v in c.stages.values():
                    v.clear()
            for r in range(args.rounds):
                order = contenders if r % 2 == 0 else contenders[::-1]
                for c in order:
                    c.run(frame, timed=False)  # the switch frame: not timed, its stage marks dropped below
                    for v in c.stages.values():
                        v.pop()
                    for _ in range(args.frames):
                        frame += 1
                        c.run(frame, timed=True)
                with torch.inference_mode():
                    t = time.perf_counter()
                    cal_call()
                    cal.append(time.perf_counter() - t)
            stats = {key: anim.stats() for key, anim in anims.items()}
            int8_info = json.loads((model_dir / "manifest.json").read_text())["export"]["int8"] if args.int8 else None

    rows = {c.key: {"label": c.label, "per_frame": c.does, "latency_ms": summarize(c.samples),
                    "stages_ms": {k: summarize(v) for k, v in c.stages.items()}} for c in contenders}
    for key, st in stats.items():
        rows[key]["stages_ms"] = {k: {"median": st[k]["p50_ms"], "mean": st[k]["mean_ms"], "count": st[k]["count"]}
                                  for k in ORT_STAGES}
        rows[key]["set_source_ms"] = st["source"]["mean_ms"]
    if int8_info is not None:
        rows["candidate_jamsdk_int8"]["int8"] = {"cpu_graphs": int8_info["cpu"]["graphs"],
                                                 "psnr_db_end_to_end": int8_info["cpu"]["psnr_db_end_to_end"],
                                                 **{k: int8_info[k] for k in ("quantized", "fp32_fallback")}}
        if "candidate_jamsdk_openvino_int8" in rows:
            ov = int8_info.get("openvino") or {}
            rows["candidate_jamsdk_openvino_int8"]["int8"] = {
                "openvino_graphs": ov.get("graphs"), "psnr_db_end_to_end": ov.get("psnr_db_end_to_end"),
                **{k: int8_info[k] for k in ("quantized", "fp32_fallback")}}
    med = {k: r["latency_ms"]["median"] for k, r in rows.items()}
    ratios = {"candidate_eager/baseline_eager": med["candidate_eager"] / med["baseline_eager"]}
    for key in anims:
        ratios[f"{key}/baseline_eager"] = med[key] / med["baseline_eager"]
        if key == "candidate_jamsdk":
            ratios["candidate_jamsdk/candidate_eager"] = med[key] / med["candidate_eager"]
        else:
            ratios[f"{key}/candidate_jamsdk"] = med[key] / med["candidate_jamsdk"]
    best = min(cal)
    slow = sum(t > SLOW_ROUND * best for t in cal)
    machine = machine_info()
    machine["onnxruntime"] = onnxruntime.__version__
    machine["openvino"] = package_version("openvino") if args.openvino else None
    machine["cpu_flags"] = cpu_flags()
    best_row = min(anims, key=lambda k: med[k])
    fp32_best = min((k for k in anims if JAMSDK_ROWS[k][1] == "fp32"), key=lambda k: med[k])
    return {
        "baseline": base_cfg.name, "candidate": cand_cfg.name, "image_size": size,
        "machine": machine,
        "settings": {"threads": args.threads, "rounds": args.rounds, "frames": args.frames, "warmup": args.warmup,
                     "weights": args.weights, "mode": "standard", "batch": 1, "int8": args.int8,
                     "openvino": args.openvino},
        "load_1min": {"before": load_before, "after": _load()},
        "setup_s": {"build_models": build_s, "export": export_s},
        "calibration": {"gmacs_best": cal_macs / best / 1e9, "gmacs_median": cal_macs / float(np.median(cal)) / 1e9,
                        "slow_rounds": slow, "unstable": slow > 0.25 * len(cal), "samples_ms": [t * 1e3 for t in cal]},
        "rows": rows, "ratios": ratios,
        "target": {"max_ratio": TARGET_RATIO, "row": best_row, "ratio": ratios[f"{best_row}/baseline_eager"],
                   "met": ratios[f"{best_row}/baseline_eager"] <= TARGET_RATIO},
        "fp32_target": {"max_ratio": FP32_TARGET_RATIO, "row": fp32_best,
                        "ratio": ratios[f"{fp32_best}/baseline_eager"],
                        "met": ratios[f"{fp32_best}/baseline_eager"] <= FP32_TARGET_RATIO},
        "samples_ms": {c.key: [t * 1e3 for t in c.samples] for c in contenders},
    }


def fmt(s: dict[str, float]) -> str:
    return f"{s['median']:.1f} ({s['p10']:.1f}–{s['p90']:.1f})"


def render(result: dict[str, Any]) -> str:
    """The markdown report: setup, the three contenders, the target, and where the time goes."""
    m, st, cal, rows = result["machine"], result["settings"], result["calibration"], result["rows"]
    base, cand, size = result["baseline"], result["candidate"], result["image_size"]
    b = rows["baseline_eager"]["latency_ms"]["median"]
    lines = [
        f"# Per-frame latency: {cand} streamed by jamsdk vs {base} in PyTorch",
        "",
        f"- machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, flags {' '.join(m.get('cpu_flags') or []) or '-'}; "
        f"torch {m['torch']}, onnxruntime {m['onnxruntime']}, openvino {m.get('openvino') or '-'}; "
        f"threads: {st['threads']} for all (torch.set_num_threads, ONNX Runtime intra-op, OpenVINO inference)",
        f"- 1-min load average: {result['load_1min']['before']} before, {result['load_1min']['after']} after",
        f"- {size}×{size}, batch 1, mode standard, {st['weights']} weights (seed 0); {st['warmup']} warm-up frames "
        f"each, then {st['rounds']} interleaved rounds × {st['frames']} timed frames; median (p10–p90) ms per frame",
        f"- calibration (3×3 256→256 conv at 64², once per round): {cal['gmacs_best']:.0f} GMAC/s best, "
        f"{cal['gmacs_median']:.0f} median; {cal['slow_rounds']} of {st['rounds']} rounds > "
        f"{(SLOW_ROUND - 1) * 100:.0f} % slower than the best"
        + (" — the machine was busy, latency is unreliable (rerun on an idle machine)" if cal["unstable"] else ""),
        "",
        f"| contender | per frame | ms per frame | frames/s | × {base} PyTorch |",
        "|---|---|---:|---:|---:|",
    ]
    for key in [k for k in ROW_KEYS if k in rows]:
        r = rows[key]
        s = r["latency_ms"]
        lines.append(f"| {r['label']} | {r['per_frame']} | {fmt(s)} | {1e3 / s['median']:.2f} "
                     f"| {s['median'] / b:.3f} |")
    t, t32 = result["target"], result["fp32_target"]
    lines += ["", f"Target: best jamsdk row ({rows[t['row']]['label']}) ≤ {t['max_ratio']} × {base} PyTorch per frame: "
                  f"{t['ratio']:.3f} → {'met' if t['met'] else 'NOT met'}; best FP32 row ({rows[t32['row']]['label']}) "
                  f"≤ {t32['max_ratio']}×: {t32['ratio']:.3f} → {'met' if t32['met'] else 'NOT met'}"
              + f" ({cand} PyTorch / {base} PyTorch: {result['ratios']['candidate_eager/baseline_eager']:.3f}; "
                f"jamsdk ONNX Runtime FP32 / {cand} PyTorch: {result['ratios']['candidate_jamsdk/candidate_eager']:.3f})",
              ""]
    for key in ("candidate_jamsdk_int8", "candidate_jamsdk_openvino_int8"):
        if key not in rows:
            continue
        q = rows[key]["int8"]
        graphs = q.get("cpu_graphs") or q.get("openvino_graphs") or {}
        held = (q.get("psnr_db_end_to_end") or {}).get("held_out")
        lines += [f"{rows[key]['label']}: {result['ratios'][f'{key}/baseline_eager']:.3f} × {base} PyTorch, "
                  f"{result['ratios'][f'{key}/candidate_jamsdk']:.3f} × jamsdk ONNX Runtime FP32; graphs: "
                  + ", ".join(f"{k} {v}" for k, v in graphs.items()) + "; "
                  f"PSNR vs FP32 {held} dB on held-out frames of the example clip (the export's judge)", ""]
    keys = [k for k in ROW_KEYS if k in rows]
    ort_keys = [k for k in keys if k.startswith("candidate_jamsdk")]
    short = {k: JAMSDK_ROWS[k][2] for k in ort_keys}
    lines += ["## Where the time goes (median ms per frame; jamsdk rows: Animator.stats)", "",
              f"| stage | {base} PyTorch | {cand} PyTorch | " + " | ".join(f"jamsdk {short[k]}" for k in ort_keys) + " |",
              "|---|---:|---:|" + "---:|" * len(ort_keys)]
    for stage in EAGER_STAGES:
        cells = [f"{rows[k]['stages_ms'][stage]['median']:.1f}" for k in ("baseline_eager", "candidate_eager")]
        for k in ort_keys:
            jam = rows[k]
            cells.append(f"{jam['stages_ms'][stage]['median']:.1f}" if stage in jam["stages_ms"]
                         else f"– (once per source: set_source {jam['set_source_ms']:.1f})")
        lines.append(f"| {STAGE_LABELS[stage]} | " + " | ".join(cells) + " |")
    rest = []
    for key in keys:
        r = rows[key]
        gap = r["latency_ms"]["median"] - sum(s["median"] for s in r["stages_ms"].values())
        rest.append(f"{gap:.1f}".replace("-0.0", "0.0"))  # medians need not add up: can be slightly negative
    lines.append("| rest (frame median − stage medians: Python, feeds, copies) | " + " | ".join(rest) + " |")
    lines.append("| **per frame** | " + " | ".join(f"**{rows[k]['latency_ms']['median']:.1f}**" for k in keys)
                 + " |")
    return "\n".join(lines) + "\n"


# -- PNG (OpenCV; no matplotlib) ------------------------------------------------------------------

_STAGE_COLOURS = {"region_predictor": (180, 119, 31), "dense_motion": (14, 127, 255),
                  "generator_encoder": (44, 160, 44), "generator": (40, 39, 214), "rest": (190, 190, 190)}  # BGR


def render_png(result: dict[str, Any]) -> np.ndarray:
    """Horizontal bars: median ms per frame (p10–p90 whisker), split by stage medians; ratio to the baseline."""
    font, ink, soft = cv2.FONT_HERSHEY_SIMPLEX, (30, 30, 30), (110, 110, 110)
    rows = result["rows"]
    keys = tuple(k for k in ROW_KEYS if k in rows)
    w, h, left, right, top, bar_h, gap = 1200, 420 + 90 * (len(keys) - 3), 330, 200, 90, 50, 40
    img = np.full((h, w, 3), 255, np.uint8)
    hi = max(rows[k]["latency_ms"]["p90"] for k in keys) * 1.05
    x0, x1 = left, w - right

    def X(v: float) -> int:
        return int(round(x0 + (x1 - x0) * max(v, 0.0) / hi))

    cv2.putText(img, f"ms per frame, {result['image_size']}x{result['image_size']}, batch 1, "
                     f"threads {result['settings']['threads']}: {result['machine']['cpu']}",
                (20, 32), font, 0.6, ink, 2, cv2.LINE_AA)
    cv2.putText(img, f"target: best jamsdk row <= {TARGET_RATIO} x {result['baseline']} PyTorch "
                     f"-> {result['target']['ratio']:.3f} ({'met' if result['target']['met'] else 'NOT met'}); "
                     f"flags: {' '.join(result['machine'].get('cpu_flags') or [])}",
                (20, 60), font, 0.5, soft, 1, cv2.LINE_AA)
    base = rows["baseline_eager"]["latency_ms"]["median"]
    for i, key in enumerate(keys):
        r = rows[key]
        y = top + i * (bar_h + gap)
        med = r["latency_ms"]["median"]
        stages = {k: v["median"] for k, v in r["stages_ms"].items()}
        total = sum(stages.values())
        scale = min(1.0, med / total) if total > 0 else 1.0  # stage medians may add up to a bit over the median
        segments = [(name, v * scale) for name, v in stages.items()]
        segments.append(("rest", max(med - sum(v for _, v in segments), 0.0)))
        acc = 0.0
        for name, v in segments:
            xa, xb = X(acc), X(acc + v)
            acc += v
            if xb > xa:
                cv2.rectangle(img, (xa, y), (xb, y + bar_h), _STAGE_COLOURS[name], -1)
        cv2.rectangle(img, (x0, y), (X(med), y + bar_h), ink, 1)
        yc = y + bar_h // 2
        cv2.line(img, (X(r["latency_ms"]["p10"]), yc), (X(r["latency_ms"]["p90"]), yc), ink, 1, cv2.LINE_AA)
        for edge in ("p10", "p90"):
            cv2.line(img, (X(r["latency_ms"][edge]), yc - 8), (X(r["latency_ms"][edge]), yc + 8), ink, 1)
        label = r["label"]
        cv2.putText(img, label, (12, yc + 5), font, 0.47 if len(label) <= 38 else 0.4, ink, 1, cv2.LINE_AA)
        cv2.putText(img, f"{med:.1f} ms  ({med / base:.3f}x)", (max(X(med), X(r["latency_ms"]["p90"])) + 10, yc + 5),
                    font, 0.5, ink, 1, cv2.LINE_AA)
    lx = 20
    for name, colour in _STAGE_COLOURS.items():
        cv2.rectangle(img, (lx, h - 30), (lx + 14, h - 16), colour, -1)
        cv2.putText(img, name, (lx + 20, h - 18), font, 0.45, ink, 1, cv2.LINE_AA)
        lx += 40 + 10 * len(name)
    cv2.putText(img, "whisker: p10-p90", (lx + 10, h - 18), font, 0.45, soft, 1, cv2.LINE_AA)
    return img


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-baseline", default="mraa-256", help="config name or YAML (default: mraa-256)")
    p.add_argument("--config-candidate", default="jam-256", help="config name or YAML (default: jam-256)")
    p.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime intra-op threads (default: 2)")
    p.add_argument("--rounds", type=int, default=20, help="interleaved rounds (default: 20)")
    p.add_argument("--frames", type=int, default=3, help="timed frames per contender per round (default: 3)")
    p.add_argument("--warmup", type=int, default=2, help="untimed frames per contender first (default: 2)")
    p.add_argument("--weights", choices=("trained-like", "random"), default="trained-like",
                   help="trained-like: heads rescaled as in jamsdk.export.samples.trained_like (default)")
    p.add_argument("--no-int8", dest="int8", action="store_false",
                   help="skip the INT8 rows (they export INT8 graphs calibrated on the bundled example clip)")
    p.add_argument("--no-openvino", dest="openvino", action="store_false",
                   help="skip the OpenVINO rows (skipped anyway where openvino is not installed)")
    p.add_argument("--model", metavar="DIR",
                   help="an exported folder of the candidate with these weights (default: export one here)")
    p.add_argument("--markdown", metavar="OUT", help="also write the markdown report here")
    p.add_argument("--png", metavar="OUT.png", help="also write a bar chart here")
    p.add_argument("--json", metavar="OUT", help="also write everything (with all samples) as JSON")
    args = p.parse_args(argv)
    require_at_least(p, args, 1, "threads", "rounds", "frames")
    args.openvino = args.openvino and importlib.util.find_spec("openvino") is not None
    require_at_least(p, args, 0, "warmup")
    if args.png and not args.png.lower().endswith(".png"):
        p.error(f"--png: expected a .png file, got {args.png}")
    try:
        result = run(args)
        text = render(result)
        write_reports(result, text, args.json, args.markdown)
        if args.png:
            ok, buf = cv2.imencode(".png", render_png(result))
            if not ok:
                raise JamError("OpenCV could not encode the PNG")
            write_bytes(args.png, buf.tobytes())
    except JamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
