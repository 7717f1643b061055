"""Parameters, MACs and CPU latency per stage of two model configs, side by side.

    python benchmarks/model_cost.py                       # jam-256 against mraa-256
    python benchmarks/model_cost.py --rounds 15 --threads 2 --json cost.json --markdown cost.md

Stages are those of :func:`jamsdk.stages.stage_table`, each timed as the module call that its
exported graph holds (PyTorch eager, batch 1, eval mode, ``torch.inference_mode``, random weights
and inputs). Totals are measured end to end, not summed:

- *full forward per frame*: what MRAA's reference ``animate`` computes for every driving frame:
  region predictor on the frame, dense motion, generator encoder (the fixed source is re-encoded
  every frame upstream) and decoder;
- *streaming per frame*: the source's region params and encoder features cached (what the jamsdk
  runtime does): region predictor, dense motion, decoder; the avd-mode row adds the AVD network.

MACs are conv/linear multiply-accumulates (see ``_cost.py``); for ``mraa-256`` they and the
parameter counts are checked against the measurements in MRAA_FACTS §13.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Callable

import torch

from _cost import MacCounter, calibration_call, count_params, machine_info, time_interleaved
from _report import require_at_least, run_and_report
from jamsdk.config import ModelConfig, load_model_config
from jamsdk.errors import JamError
from jamsdk.stages import stage_table

TARGET_MACS_RATIO = 0.5  # JAM's per-frame MACs must be at most half of MRAA's
CALIBRATION = "calibration"
SLOW_ROUND = 1.2  # a calibration round this much slower than the best one means the machine was busy

FULL = "full forward per frame"
STREAM = "streaming per frame"
STREAM_AVD = "streaming per frame, avd mode"

# MRAA_FACTS §13 (upstream mgif256 modules, measured there): parameters exactly, conv MACs in G to
# two decimals. "generator" there is the upstream generator: flow predictor + encoder + decoder.
MRAA_REFERENCE = {
    "params": {"region_predictor": 14_146_728, "dense_motion": 37_730_268,
               "generator_encoder+generator": 7_845_123, "avd": 2_290_620},
    "gmacs": {"region_predictor": 1.05, "dense_motion": 4.09, "dense_motion+generator_encoder+generator": 53.64},
}


@dataclass
class Bench:
    """One built model with its inputs, and per stage the modules and the call to measure."""

    name: str
    cfg: ModelConfig
    model: torch.nn.Module
    stages: dict[str, object]  # name → jamsdk.stages.Stage
    modules: dict[str, list[torch.nn.Module]]
    calls: dict[str, Callable[[], object]]
    totals: dict[str, tuple[list[str], Callable[[], object]]]


def build_bench(name: str) -> Bench:
    """Build ``name`` (config name or YAML path) with random weights and precompute every stage's inputs."""
    from jamsdk.model.jam import build_model

    cfg = load_model_config(name)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    s = cfg.image_size
    source = torch.rand(1, cfg.num_channels, s, s)
    driving = torch.rand(1, cfg.num_channels, s, s)
    rp, dm, gen, avd, bgm = model.region_predictor, model.dense_motion, model.generator, model.avd, model.bg_motion
    table = stage_table(cfg)
    has_bg = "bg_motion" in table
    has_avd = "avd" in table

    with torch.inference_mode():
        src_p = rp(source)
        drv_p = rp(driving)
        bg = bgm(source, driving) if has_bg else None
        feats = gen.encode(source)
        motion = dm(source, drv_p, src_p, bg)
    flow, occ = motion["optical_flow"], motion["occlusion_map"]

    modules = {"region_predictor": [rp], "generator_encoder": [gen.first, gen.down_blocks],
               "bg_motion": [bgm], "avd": [avd], "dense_motion": [dm],
               "generator": [gen.bottleneck, gen.up_blocks, gen.final]}
    calls = {
        "region_predictor": lambda: rp(driving),
        "generator_encoder": lambda: gen.encode(source),
        "bg_motion": lambda: bgm(source, driving),
        "avd": lambda: avd(src_p, drv_p),
        "dense_motion": lambda: dm(source, drv_p, src_p, bg),
        "generator": lambda: gen.decode(source, feats, flow, occ),
    }
    unknown = set(table) - set(calls)
    if unknown:  # a new stage must be added here, not silently left out of the totals
        raise JamError(f"model_cost.py does not know how to run stage(s) {sorted(unknown)}")

    def frame(encode: bool, use_avd: bool) -> Callable[[], object]:
        def run() -> object:
            p = rp(driving)
            b = bgm(source, driving) if has_bg else None
            if use_avd:
                p = avd(src_p, p)
            m = dm(source, p, src_p, b)
            f = gen.encode(source) if encode else feats
            return gen.decode(source, f, m["optical_flow"], m["occlusion_map"])
        return run

    per_frame = ["region_predictor"] + (["bg_motion"] if has_bg else [])
    totals = {FULL: (per_frame + ["dense_motion", "generator_encoder", "generator"], frame(True, False)),
              STREAM: (per_frame + ["dense_motion", "generator"], frame(False, False))}
    if has_avd:
        totals[STREAM_AVD] = (per_frame + ["avd", "dense_motion", "generator"], frame(False, True))
    return Bench(cfg.name, cfg, model, table, {k: modules[k] for k in table}, {k: calls[k] for k in table}, totals)


def measure_macs(bench: Bench) -> dict[str, dict]:
    """MACs per stage (with a per-module breakdown) and per total; a total must equal its stages' sum."""
    out: dict[str, dict] = {}
    for name, call in list(bench.calls.items()) + [(k, v[1]) for k, v in bench.totals.items()]:
        counter = MacCounter(bench.model)
        with counter, torch.inference_mode():
            call()
        out[name] = {"macs": counter.total, "macs_by_module": dict(sorted(counter.grouped(3).items()))}
    for total, (parts, _) in bench.totals.items():
        summed = sum(out[p]["macs"] for p in parts)
        if out[total]["macs"] != summed:
            raise RuntimeError(f"{bench.name}: {total} counts {out[total]['macs']} MACs but its stages sum to {summed}")
    return out


def reference_check(params: dict[str, int], macs: dict[str, int]) -> dict[str, object]:
    """Compare mraa-256's counts with MRAA_FACTS §13; returns the rows and whether all match."""
    rows = []
    for key, want in MRAA_REFERENCE["params"].items():
        got = sum(params[k] for k in key.split("+"))
        rows.append({"what": f"params {key}", "reference": want, "measured": got, "ok": got == want})
    for key, want in MRAA_REFERENCE["gmacs"].items():
        got = sum(macs[k] for k in key.split("+")) / 1e9
        rows.append({"what": f"GMACs {key}", "reference": want, "measured": round(got, 4),
                     "ok": round(got, 2) == want})
    return {"source": "MRAA_FACTS.md §13 (mgif256)", "rows": rows, "all_match": all(r["ok"] for r in rows)}


def describe(total: str, parts: list[str]) -> str:
    driving = [p + "(driving)" if p == "region_predictor" else p for p in parts]
    return ("" if total == FULL else "source work cached, ") + " + ".join(driving)


def fmt_int(n: int) -> str:
    return f"{n:,}"


def fmt_macs(n: int) -> str:
    if n >= 1e8:
        return f"{n / 1e9:.2f} G"
    return f"{n / 1e6:.2f} M"


def fmt_ms(t: dict) -> str:
    return f"{t['median']:.1f} ({t['min']:.1f})"


def cell(row: dict | None, key: str, fmt: Callable) -> str:
    return "–" if row is None else fmt(row[key])


def ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b else "–"


def render(result: dict) -> str:
    """The markdown report: setup lines, the side-by-side table, the target and reference checks."""
    base, cand = result["baseline"], result["candidate"]
    rb, rc = result["configs"][base], result["configs"][cand]
    m, st, cal = result["machine"], result["settings"], result["calibration"]
    lines = [
        f"# Model cost: {cand} vs {base}",
        "",
        f"- machine: {m['cpu']}, {m['logical_cpus']} logical CPUs; torch {m['torch']} "
        f"(torch.set_num_threads({st['threads']})), Python {m['python']}",
        f"- PyTorch eager, batch 1, eval, inference_mode, random weights/inputs at "
        f"{rb['image_size']}² / {rc['image_size']}²; {st['warmup']} warm-ups + {st['rounds']} rounds "
        f"interleaved over configs and rows; latency = median (min) ms",
        f"- calibration (3×3 256→256 conv at 64², timed in every round): {cal['gmacs_best']:.0f} GMAC/s best, "
        f"{cal['gmacs_median']:.0f} median; {cal['slow_rounds']} of {st['rounds']} rounds > "
        f"{(SLOW_ROUND - 1) * 100:.0f} % slower than the best"
        + (" — the machine was busy, latency is unreliable (rerun on an idle machine)" if cal["unstable"] else ""),
        "- MACs: nn.Conv*/nn.Linear multiply-accumulates (no grid_sample, anti-alias blur, norms, elementwise)",
        "",
        f"| stage | per | params {base} | params {cand} | MACs {base} | MACs {cand} | MACs {cand}/{base} "
        f"| ms {base} | ms {cand} | ms {cand}/{base} |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in ("stages", "totals"):
        for row in dict.fromkeys(list(rb[kind]) + list(rc[kind])):
            b, c = rb[kind].get(row), rc[kind].get(row)
            label = row if kind == "stages" else f"**{row}**"
            per = (b or c).get("per", "frame")
            cells = [label, per, cell(b, "params", fmt_int), cell(c, "params", fmt_int),
                     cell(b, "macs", fmt_macs), cell(c, "macs", fmt_macs),
                     ratio(c["macs"], b["macs"]) if b and c else "–",
                     cell(b, "latency_ms", fmt_ms), cell(c, "latency_ms", fmt_ms),
                     ratio(c["latency_ms"]["median"], b["latency_ms"]["median"]) if b and c else "–"]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for total in dict.fromkeys(list(rb["totals"]) + list(rc["totals"])):
        docs = {name: describe(total, cfg["totals"][total]["stages"])
                for name, cfg in ((base, rb), (cand, rc)) if total in cfg["totals"]}
        if len(set(docs.values())) == 1:
            lines.append(f"- {total}: {next(iter(docs.values()))}")
        else:
            lines.append(f"- {total}: " + "; ".join(f"{n}: {d}" for n, d in docs.items()))
    lines.append("")
    t = result["target"]
    lines.append(f"Target: per-frame MACs {cand}/{base} ≤ {t['max_macs_ratio']}")
    for key in (FULL, STREAM):
        ok = t[key]["met"]
        lines.append(f"- {key}: {t[key]['macs_ratio']:.3f} → {'met' if ok else 'NOT met'}")
    lines.append(f"- (not like for like) {cand} {STREAM} vs {base} {FULL} (MRAA's reference loop): "
                 f"{t['streaming_vs_reference_full']:.3f}")
    ref = result.get("reference_check")
    if ref is not None:
        lines.append("")
        lines.append(f"{base} vs {ref['source']}: " + ("all match" if ref["all_match"] else "MISMATCH"))
        for r in ref["rows"]:
            if not r["ok"]:
                lines.append(f"- {r['what']}: reference {r['reference']}, measured {r['measured']}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    benches = [build_bench(args.baseline), build_bench(args.candidate)]
    names = [b.name for b in benches]
    if names[0] == names[1]:
        raise JamError(f"baseline and candidate must be different configs, got {names[0]!r} twice")

    configs: dict[str, dict] = {}
    fns: dict[str, Callable[[], object]] = {}
    for b in benches:
        macs = measure_macs(b)
        stages = {k: {"per": b.stages[k].per, "params": count_params(b.modules[k]), **macs[k]} for k in b.calls}
        # Weights a total needs loaded: its stages plus the encoder, which streaming runs once per source.
        totals = {k: {"stages": parts, "params": count_params(
                      [m for p in dict.fromkeys(parts + ["generator_encoder"]) for m in b.modules[p]]),
                      **macs[k]} for k, (parts, _) in b.totals.items()}
        configs[b.name] = {"image_size": b.cfg.image_size, "stages": stages, "totals": totals}
        for k, call in b.calls.items():
            fns[f"{b.name}/stages/{k}"] = call
        for k, (_, call) in b.totals.items():
            fns[f"{b.name}/totals/{k}"] = call
    # Interleave configs within each round: each row of one config, then the same row of the other.
    rows = list(dict.fromkeys(k.split("/", 1)[1] for k in fns))
    fns = {f"{n}/{row}": fns[f"{n}/{row}"] for row in rows for n in names if f"{n}/{row}" in fns}

    # The yardstick conv runs once per round too: its spread tells how busy the machine was.
    cal_call, cal_macs = calibration_call()
    fns[CALIBRATION] = cal_call
    timings = time_interleaved(fns, rounds=args.rounds, warmup=args.warmup)
    cal = timings.pop(CALIBRATION)
    slow = sum(t > SLOW_ROUND * min(cal.samples) for t in cal.samples)
    calibration = {"gmacs_best": cal_macs / cal.min_ms / 1e6, "gmacs_median": cal_macs / cal.median_ms / 1e6,
                   "slow_rounds": slow, "unstable": slow > 0.25 * len(cal.samples),
                   "samples_ms": [t * 1e3 for t in cal.samples]}
    for key, t in timings.items():
        cfg_name, kind, row = key.split("/", 2)
        configs[cfg_name][kind][row]["latency_ms"] = {
            "median": t.median_ms, "min": t.min_ms, "samples": [s * 1e3 for s in t.samples]}
    for c in configs.values():
        for total in c["totals"].values():
            total["sum_of_stage_medians_ms"] = sum(c["stages"][p]["latency_ms"]["median"] for p in total["stages"])

    base, cand = names
    rb, rc = configs[base], configs[cand]
    ratios = {}
    for kind in ("stages", "totals"):
        for row in rb[kind]:
            if row in rc[kind]:
                ratios[row] = {"macs": rc[kind][row]["macs"] / rb[kind][row]["macs"] if rb[kind][row]["macs"] else None,
                               "latency_median": rc[kind][row]["latency_ms"]["median"]
                               / rb[kind][row]["latency_ms"]["median"]}
    target = {"max_macs_ratio": TARGET_MACS_RATIO}
    for key in (FULL, STREAM):
        r = ratios[key]["macs"]
        target[key] = {"macs_ratio": r, "met": r <= TARGET_MACS_RATIO}
    target["streaming_vs_reference_full"] = rc["totals"][STREAM]["macs"] / rb["totals"][FULL]["macs"]

    result = {
        "baseline": base, "candidate": cand,
        "machine": machine_info(),
        "settings": {"threads": args.threads, "rounds": args.rounds, "warmup": args.warmup, "batch": 1,
                     "mode": "pytorch eager, eval, inference_mode", "weights": "random (seed 0)"},
        "calibration": calibration,
        "configs": configs, "ratios": ratios, "target": target,
    }
    if base == "mraa-256":
        result["reference_check"] = reference_check(
            {k: v["params"] for k, v in rb["stages"].items()}, {k: v["macs"] for k, v in rb["stages"].items()})
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", default="mraa-256", help="config name or YAML path (default: mraa-256)")
    p.add_argument("--candidate", default="jam-256", help="config name or YAML path (default: jam-256)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default: 2)")
    p.add_argument("--rounds", type=int, default=10, help="timed rounds after the warm-ups (default: 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed warm-up rounds (default: 3)")
    p.add_argument("--json", metavar="OUT", help="also write the full result (with all samples) as JSON")
    p.add_argument("--markdown", metavar="OUT", help="also write the markdown report to this file")
    args = p.parse_args(argv)
    require_at_least(p, args, 1, "threads", "rounds")
    require_at_least(p, args, 0, "warmup")
    return 0 if run_and_report(lambda: run(args), render, args.json, args.markdown) is not None else 2


if __name__ == "__main__":
    sys.exit(main())
