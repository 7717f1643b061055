"""JAM against the MRAA-shaped baseline: stage-1 training from scratch, same data, steps and seed.

    python benchmarks/ablation.py                       # jam.yaml vs mraa.yaml, 150 steps each (≈ 12 min, 2 idle cores)
    python benchmarks/ablation.py --json abl.json --markdown abl.md --workdir runs/ablation
    python benchmarks/ablation.py --config-jam tiny-jam --config-mraa tiny-mraa \\
        --train-config train/configs/tiny.yaml --steps 3 --chunk 2 --threads 1 --clips 4 --frames 4   # smoke

Both configs train through the real trainer (:class:`jamsdk.train.trainer.Trainer`, stage 1, from
scratch) on one data set (``--data ROOT``, or clips written by :func:`jamsdk.train.synth.write_dataset`)
with one training recipe (the ``train:`` sections must match, or ``--train-config`` gives one for
both) and one seed, so data order, augmentation and equivariance warps are the same on both sides.

Training is interleaved: ``--chunk`` steps of one config, then of the other (the order flips every
round), each chunk a new ``Trainer(..., resume=True)`` on the run's checkpoint. Resume is exact
(weights, Adam, schedule, RNGs, data position), so each side ends with the weights of a straight
``jamsdk train --max-steps N`` run, while a slow phase of a shared machine hits both sides alike.
Seconds per step are the trainer's own ``train_step`` (forward, the stage-1 loss, backward, Adam;
no data loading), the median over every step but the first ``--warmup`` of each chunk; the
calibration conv of ``_cost.py`` runs before every chunk and shows how busy the machine was.

Before training, a short interleaved phase times the same step on a fixed batch with and without
the VGG-19 perceptual pyramid (``train.loss.perceptual`` all 0 skips VGG; everything else — model
forward and backward, pixel and equivariance losses, Adam — is unchanged) and counts forward MACs of
model and VGG: the VGG part is the same for both configs and dominates a CPU step, which bounds the
step-time ratio however light the model gets (skipped with ``train.loss.reconstruction: pyramid``,
which has no VGG). After training, :func:`jamsdk.train.evaluate.evaluate` scores each final
checkpoint (mean L1 over the test videos, standard mode) and
:func:`jamsdk.train.animation_eval.evaluate_animation` scores its animation against ground truth on
held-out pairs (relative mode, ``--pairs`` of them written with the synthetic data, or the
``pairs/`` of ``--data``): L1 and PSNR, and L1 relative to leaving the source still.

    python benchmarks/ablation.py --train-config train/configs/demo-continue.yaml --steps 1000 --data data/demo \
        --max-pairs 16 --threads 1 --chunk 50 --workdir runs/ablation-1000 --json abl.json --markdown abl.md
        # the issue's budget (78 min here; README "Training ablation" has the result)
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from _cost import MacCounter, calibration_gmacs, count_params, machine_info
from _report import require_at_least, run_and_report
from jamsdk.config import ModelConfig, first_difference, model_config_from_dict, size_problems
from jamsdk.errors import ConfigError, InputError, JamError
from jamsdk.model.jam import build_model
from jamsdk.train.train_config import TrainConfig, load_run_config, replace
from jamsdk.train.trainer import Trainer

TARGET_STEP_RATIO = 0.6  # JAM's seconds per training step at most 0.6× MRAA's ...
# ... at no worse L1. The paper (MGif, 256², its Tables I and II): L1 and seconds per iteration.
PAPER = {"l1": {"jam": 0.0193, "mraa": 0.0218},
         "stage1_s_per_it": {"jam": 2380.73, "mraa": 2762.61},
         "stage2_s_per_it": {"jam": 711.90, "mraa": 894.93}}
SLOW_CHECK = 1.2  # a calibration this much slower than the best one means the machine was busy
SIDES = ("jam", "mraa")
LABELS = {"jam": "JAM", "mraa": "MRAA"}
LAST_LOSSES = 10  # the training loss shown is the mean total of the last this many steps
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Side:
    """One config of the comparison and everything measured on it."""

    key: str  # "jam" or "mraa"
    config: str
    model_cfg: ModelConfig
    train_cfg: TrainConfig
    run_dir: Path | None = None
    steps: list[dict[str, float]] = field(default_factory=list)  # per step: wall, cpu, total, chunk, warmup
    chunks: list[dict[str, float]] = field(default_factory=list)
    perceptual: str = ""
    pixel_weight: float = 0.0

    @property
    def label(self) -> str:
        return f"{LABELS[self.key]} ({self.model_cfg.name})"


# ---------------------------------------------------------------------------------------------
# Configs


def load_sides(args: argparse.Namespace) -> dict[str, Side]:
    """Both configs with the command-line overrides applied; the same recipe on both sides or an error."""
    loaded = {key: load_run_config(getattr(args, f"config_{key}")) for key in SIDES}
    if args.train_config is not None:
        shared = load_run_config(args.train_config)[1]
        loaded = {k: (m, shared) for k, (m, _) in loaded.items()}
    diff = first_difference(loaded["jam"][1].to_dict(), loaded["mraa"][1].to_dict(), "train")
    if diff:
        where, jam, mraa = diff
        raise ConfigError(f"the two configs train differently ({where}: {jam!r} vs {mraa!r}); an ablation needs one "
                          "recipe: align their train: sections or pass --train-config FILE to use its train: for both")
    sizes = {k: m.image_size for k, (m, _) in loaded.items()}
    size = args.size
    if size is None and sizes["jam"] != sizes["mraa"]:
        raise ConfigError(f"the configs run at different sizes (JAM {sizes['jam']}, MRAA {sizes['mraa']}); "
                          "pass --size to train both at one size")
    changes: dict[str, Any] = {"steps": args.steps, "epochs": None, "checkpoint_every": args.steps}
    if args.batch_size is not None:
        changes["batch_size"] = args.batch_size
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.vgg_weights is not None:
        changes["vgg_weights"] = args.vgg_weights
    sides = {}
    for key, (model_cfg, train_cfg) in loaded.items():
        if size is not None and size != model_cfg.image_size:
            problems = size_problems(model_cfg, size)
            if problems:
                raise ConfigError(f"--size {size} does not fit {model_cfg.name}: " + "; ".join(problems))
            model_cfg = model_config_from_dict({**model_cfg.to_dict(), "image_size": size})
        sides[key] = Side(key, str(getattr(args, f"config_{key}")), model_cfg, replace(train_cfg, **changes))
    return sides


# ---------------------------------------------------------------------------------------------
# Measuring


def _sync(device: str) -> Callable[[], None]:
    if device.startswith("cuda"):
        return torch.cuda.synchronize
    return lambda: None


def _timed_steps(trainer: Trainer, record: Callable[[float, float, dict[str, float]], None],
                 sync: Callable[[], None]) -> None:
    """Make ``trainer.run()`` report the wall and CPU time of each of its ``train_step`` calls.

    Only the step itself is timed (the loop's data loading, logging and checkpoints are not); the
    trainer's code is unchanged, the instance attribute just shadows the method for this object.
    """
    inner = trainer.train_step

    def train_step(source: torch.Tensor, driving: torch.Tensor,
                   animation: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        values = inner(source, driving, animation)
        sync()
        record(time.perf_counter() - t0, time.process_time() - c0, values)
        return values

    trainer.train_step = train_step  # type: ignore[method-assign]


def _note(notes: list[str]) -> Callable[[str], None]:
    def echo(msg: str) -> None:
        # Resume lines repeat every chunk and the TensorBoard note says nothing about the result.
        if not msg.startswith(("resumed ", "note: tensorboard")) and msg not in notes:
            notes.append(msg)
    return echo


def vgg_share(sides: dict[str, Side], data: Path, work: Path, rounds: int, device: str,
              notes: list[str], log: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """Time a full step and one without the VGG-19 pyramid on a fixed batch, interleaved; count MACs.

    The first round is a warm-up and counts forward MACs (conv/linear, ``_cost.MacCounter``) of the
    model (incl. the equivariance pass) and of VGG in the full step.
    """
    sync = _sync(device)
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    if any(side.train_cfg.loss.reconstruction != "vgg" for side in sides.values()):
        log("no VGG in this recipe (train.loss.reconstruction: pyramid): VGG-share phase skipped")
        return {}
    for key, side in sides.items():
        no_vgg = replace(side.train_cfg, loss=dataclasses.replace(side.train_cfg.loss, perceptual=(0.0,) * 5))
        for variant, cfg in (("full", side.train_cfg), ("no_vgg", no_vgg)):
            tr = Trainer(side.model_cfg, cfg, data, work / f"{key}-{variant}", device=device, progress=False,
                         echo=_note(notes))
            items = [tr.dataset[i % len(tr.dataset)] for i in range(tr.local_batch)]
            batch = tuple(torch.stack([torch.as_tensor(it[k]) for it in items]) for k in ("source", "driving"))
            runs[(key, variant)] = {"trainer": tr, "batch": batch, "wall": [], "cpu": []}
    order = list(runs)
    gmacs: dict[str, dict[str, float]] = {}
    for r in range(1 + rounds):
        for name in order if r % 2 == 0 else order[::-1]:
            run = runs[name]
            tr = run["trainer"]
            if r == 0 and name[1] == "full":
                with MacCounter(tr.model) as model_macs, MacCounter(tr.objective.perceptual.vgg) as vgg_macs:
                    tr.train_step(*run["batch"])
                gmacs[name[0]] = {"model": model_macs.total / 1e9, "vgg": vgg_macs.total / 1e9}
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            tr.train_step(*run["batch"])
            sync()
            if r > 0:
                run["wall"].append(time.perf_counter() - t0)
                run["cpu"].append(time.process_time() - c0)
    out: dict[str, dict[str, Any]] = {}
    for key in sides:
        full, bare = runs[(key, "full")], runs[(key, "no_vgg")]
        t_full, t_bare = statistics.median(full["wall"]), statistics.median(bare["wall"])
        c_full, c_bare = statistics.median(full["cpu"]), statistics.median(bare["cpu"])
        out[key] = {"full_s": t_full, "no_vgg_s": t_bare, "vgg_s": t_full - t_bare,
                    "vgg_share": (t_full - t_bare) / t_full,
                    "full_cpu_s": c_full, "no_vgg_cpu_s": c_bare, "vgg_share_cpu": (c_full - c_bare) / c_full,
                    "gmacs": gmacs[key], "samples": {"full": full["wall"], "no_vgg": bare["wall"]}}
        log(f"[{key}] step {t_full:.2f} s, without VGG {t_bare:.2f} s (VGG {100 * out[key]['vgg_share']:.0f} %); "
            f"forward GMAC model {gmacs[key]['model']:.1f} + VGG {gmacs[key]['vgg']:.1f}")
    for run in runs.values():
        del run["trainer"]
    return out


def train_interleaved(sides: dict[str, Side], data: Path, steps: int, chunk: int, warmup: int, device: str,
                      calibration: list[dict[str, Any]], notes: list[str], log: Callable[[str], None]) -> None:
    """Train both sides to ``steps`` in alternating chunks (a resumed Trainer per chunk)."""
    sync = _sync(device)
    rounds = math.ceil(steps / chunk)
    for r in range(rounds):
        end = min((r + 1) * chunk, steps)
        for key in SIDES if r % 2 == 0 else SIDES[::-1]:
            side = sides[key]
            calibration.append({"before": f"{key} chunk {r + 1}", "gmacs": calibration_gmacs(repeats=3)})
            t0 = time.perf_counter()
            cfg = replace(side.train_cfg, steps=end)
            tr = Trainer(side.model_cfg, cfg, data, side.run_dir, resume=r > 0, device=device, progress=False,
                         echo=_note(notes))
            side.perceptual, side.pixel_weight = tr.perceptual_source or "", tr.pixel_weight
            built = time.perf_counter() - t0
            first = len(side.steps)

            def record(wall: float, cpu: float, values: dict[str, float], side: Side = side, first: int = first,
                       chunk_no: int = r) -> None:
                side.steps.append({"wall": wall, "cpu": cpu, "total": values["total"], "chunk": chunk_no,
                                   "warmup": len(side.steps) - first < warmup})

            _timed_steps(tr, record, sync)
            result = tr.run()
            wall = time.perf_counter() - t0
            if result.stopped_by != "finished":
                raise JamError(f"{key}: training stopped by {result.stopped_by} at step {result.step}")
            new = side.steps[first:]
            stepped = sum(s["wall"] for s in new)
            side.chunks.append({"round": r, "steps": len(new), "wall_s": wall, "steps_s": stepped,
                                "construct_s": built, "other_s": wall - built - stepped})
            span = f"steps {first + 1}-{len(side.steps)}" if len(new) > 1 else f"step {len(side.steps)}"
            log(f"[{key}] {span}: {statistics.median(s['wall'] for s in new):.2f} s/step "
                f"(calibration {calibration[-1]['gmacs']:.0f} GMAC/s)")
    calibration.append({"before": "end", "gmacs": calibration_gmacs(repeats=3)})


def evaluate_run(checkpoint: Path, data: Path, device: str, max_videos: int | None,
                 max_frames: int | None) -> dict[str, Any]:
    """:func:`jamsdk.train.evaluate.evaluate`; with ``max_frames``, the same per-video scoring on fewer frames.

    ``evaluate`` has no frame limit; the fallback reads test videos with ``max_test_frames`` and
    scores them with the evaluator's own :func:`~jamsdk.train.evaluate.video_l1`.
    """
    from jamsdk.train.evaluate import evaluate, video_l1

    if max_frames is None:
        return evaluate(checkpoint, data, device=device, max_videos=max_videos)
    import numpy as np

    from jamsdk.model.checkpoint import load_model
    from jamsdk.train.datasets import FramesDataset

    model, _ = load_model(checkpoint)
    model.to(device)
    dataset = FramesDataset(data, split="test", image_size=model.cfg.image_size, max_test_frames=max_frames)
    n = len(dataset) if max_videos is None else min(max_videos, len(dataset))
    videos = []
    for i in range(n):
        item = dataset[i]
        errs = video_l1(model, torch.as_tensor(np.asarray(item["video"], dtype=np.float32)).to(device))
        videos.append({"name": str(item["name"]), "frames": len(errs), "l1": float(np.mean(errs))})
    overall = float(np.mean([v["l1"] for v in videos]))
    if not math.isfinite(overall):
        raise JamError(f"evaluation of {checkpoint} produced a non-finite L1 ({overall})")
    return {"checkpoint": str(checkpoint), "data": str(data), "split": "test", "mode": "standard",
            "model": model.cfg.name, "num_videos": len(videos), "num_frames": sum(v["frames"] for v in videos),
            "l1": overall, "videos": videos, "max_frames": max_frames}


# ---------------------------------------------------------------------------------------------
# The run


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _summary(side: Side) -> dict[str, Any]:
    kept = [s for s in side.steps if not s["warmup"]] or side.steps
    wall = [s["wall"] for s in kept]
    cpu = [s["cpu"] for s in kept]
    last = [s["total"] for s in side.steps[-LAST_LOSSES:]]
    return {
        "median_s": statistics.median(wall), "min_s": min(wall), "mean_all_s": statistics.mean(s["wall"] for s in side.steps),
        "cpu_median_s": statistics.median(cpu), "timed_steps": len(kept),
        "train_wall_s": sum(c["wall_s"] for c in side.chunks),
        "construct_s_per_chunk": statistics.mean(c["construct_s"] for c in side.chunks),
        "other_s_per_chunk": statistics.mean(c["other_s"] for c in side.chunks),
        "loss_last": statistics.mean(last), "loss_first": side.steps[0]["total"],
    }


def run(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    t_start = time.perf_counter()
    sides = load_sides(args)
    torch.set_num_threads(args.threads)
    size = sides["jam"].model_cfg.image_size
    notes: list[str] = []
    own_work = args.workdir is None
    work = Path(tempfile.mkdtemp(prefix="jam-ablation-")) if own_work else Path(args.workdir)
    if not own_work:
        if work.exists() and any(work.iterdir()):
            raise InputError(f"--workdir {work}: folder is not empty (runs would clash); pick a new one")
        work.mkdir(parents=True, exist_ok=True)
    try:
        if args.data is not None:
            data = Path(args.data)
            data_info: dict[str, Any] = {"root": str(data), "synthetic": False}
        else:
            from jamsdk.train.synth import write_dataset

            data = work / "data"
            seed = sides["jam"].train_cfg.seed
            s = write_dataset(data, clips=args.clips, frames=args.frames, size=size, seed=seed, pairs=args.pairs)
            data_info = {"root": str(data) if not own_work else None, "synthetic": True, "seed": seed,
                         "train_clips": s.train, "test_clips": s.test, "frames": s.frames, "size": s.size,
                         "pairs": s.pairs}
            log(f"data: {s.train} train / {s.test} test synthetic clips × {s.frames} frames at {s.size}²")
        for side in sides.values():
            side.run_dir = work / side.key

        vgg = vgg_share(sides, data, work / "vgg-phase", args.vgg_rounds, args.device, notes, log)
        eta = args.steps * sum(v["full_s"] for v in vgg.values())
        log(f"training {args.steps} steps each in {args.chunk}-step chunks; expect ≈ {eta / 60:.1f} min of steps")
        calibration: list[dict[str, Any]] = []
        train_interleaved(sides, data, args.steps, args.chunk, args.warmup, args.device, calibration, notes, log)

        evals = {}
        for key, side in sides.items():
            t0 = time.perf_counter()
            evals[key] = evaluate_run(side.run_dir / "checkpoint.pt", data, args.device, args.max_test_videos,
                                      args.max_frames)
            evals[key]["wall_s"] = time.perf_counter() - t0
            log(f"[{key}] eval L1 {evals[key]['l1']:.5f} over {evals[key]['num_videos']} videos")
        anims = {}
        if (data / "pairs").is_dir():
            from jamsdk.train.animation_eval import evaluate_animation

            for key, side in sides.items():
                t0 = time.perf_counter()
                a = evaluate_animation(data, checkpoint=side.run_dir / "checkpoint.pt", modes=("relative",),
                                       device=args.device, max_pairs=args.max_pairs)
                rel = a["modes"]["relative"]
                anims[key] = {"num_pairs": a["num_pairs"], "pairs_version": a["pairs_version"], "mode": "relative",
                              "model": rel["model"], "no_motion": rel["no_motion"],
                              "l1_vs_no_motion": rel["l1_vs_no_motion"],
                              "motion_vs_no_motion": rel["motion_vs_no_motion"],
                              "flow_vs_no_motion": rel["flow_vs_no_motion"],
                              "pairs": [{"name": r["name"], "l1": r["model"]["l1"], "part_px": r["model"]["part_px"]}
                                        for r in rel["pairs"]],
                              "wall_s": time.perf_counter() - t0}
                log(f"[{key}] animation L1 {rel['model']['l1']:.5f} = {rel['l1_vs_no_motion']:.3f}× no motion "
                    f"over {a['num_pairs']} pairs")
        else:
            notes.append(f"{data} has no pairs/ folder: no animation metric (jamsdk synth --pairs N)")
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)

    configs: dict[str, Any] = {}
    for key, side in sides.items():
        model = build_model(side.model_cfg)
        params = count_params(model)
        params_stage1 = params - (count_params(model.avd) if model.avd is not None else 0)
        configs[key] = {
            "config": side.config, "model": side.model_cfg.name, "image_size": side.model_cfg.image_size,
            "params": params, "params_stage1": params_stage1, "perceptual": side.perceptual,
            "pixel_weight": side.pixel_weight, **_summary(side), "vgg_phase": vgg.get(key, {}),
            "eval": evals[key], "animation": anims.get(key), "steps": side.steps, "chunks": side.chunks,
        }
    j, m = configs["jam"], configs["mraa"]
    names = [v["name"] for v in j["eval"]["videos"]]
    paired = [(a["l1"], b["l1"]) for a, b in zip(j["eval"]["videos"], m["eval"]["videos"])]
    if names != [v["name"] for v in m["eval"]["videos"]]:
        raise JamError("the two evaluations scored different test videos")
    ja, ma = j["animation"], m["animation"]
    ratios = {
        "l1": _ratio(j["eval"]["l1"], m["eval"]["l1"]),
        "animation_l1": _ratio(ja["model"]["l1"], ma["model"]["l1"]) if ja and ma else None,
        "s_per_step": _ratio(j["median_s"], m["median_s"]),
        "cpu_s_per_step": _ratio(j["cpu_median_s"], m["cpu_median_s"]),
        "no_vgg_s_per_step": _ratio(vgg["jam"]["no_vgg_s"], vgg["mraa"]["no_vgg_s"]) if vgg else None,
        "model_gmacs": _ratio(vgg["jam"]["gmacs"]["model"], vgg["mraa"]["gmacs"]["model"]) if vgg else None,
        "params": _ratio(j["params"], m["params"]),
        "params_stage1": _ratio(j["params_stage1"], m["params_stage1"]),
    }
    gm = [c["gmacs"] for c in calibration]
    slow = sum(g < max(gm) / SLOW_CHECK for g in gm)
    result = {
        "machine": machine_info(),
        "settings": {"steps": args.steps, "batch_size": sides["jam"].train_cfg.batch_size, "threads": args.threads,
                     "seed": sides["jam"].train_cfg.seed, "chunk": args.chunk, "warmup_per_chunk": args.warmup,
                     "vgg_rounds": args.vgg_rounds, "device": args.device, "image_size": size,
                     "train_config": args.train_config, "train": sides["jam"].train_cfg.to_dict(),
                     "max_test_videos": args.max_test_videos, "max_frames": args.max_frames,
                     "pairs": args.pairs, "max_pairs": args.max_pairs},
        "data": data_info,
        "calibration": {"checks": calibration, "gmacs_best": max(gm), "gmacs_median": statistics.median(gm),
                        "slow_checks": slow, "unstable": slow > 0.25 * len(gm)},
        "configs": configs,
        "ratios": ratios,
        "l1_paired": {"videos": len(paired), "jam_better": sum(a < b for a, b in paired)},
        "vgg_floor_ratio": vgg["jam"]["vgg_s"] / vgg["mraa"]["full_s"] if vgg else None,
        "target": {"max_step_ratio": TARGET_STEP_RATIO, "step_ratio_met": ratios["s_per_step"] <= TARGET_STEP_RATIO,
                   "l1_no_worse": j["eval"]["l1"] <= m["eval"]["l1"]},
        "paper": {**PAPER, "ratios": {"l1": PAPER["l1"]["jam"] / PAPER["l1"]["mraa"],
                                      "stage1": PAPER["stage1_s_per_it"]["jam"] / PAPER["stage1_s_per_it"]["mraa"],
                                      "stage2": PAPER["stage2_s_per_it"]["jam"] / PAPER["stage2_s_per_it"]["mraa"]}},
        "notes": notes,
        "elapsed_s": time.perf_counter() - t_start,
    }
    return result


# ---------------------------------------------------------------------------------------------
# Report


def _r(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def render(res: dict[str, Any]) -> str:
    """The markdown report: setup, the side-by-side table, the target and paper lines, the explanation."""
    j, m = res["configs"]["jam"], res["configs"]["mraa"]
    st, mc, cal, d, rt = res["settings"], res["machine"], res["calibration"], res["data"], res["ratios"]
    vj, vm = j["vgg_phase"], m["vgg_phase"]
    ja, ma = j.get("animation"), m.get("animation")
    data = (f"synthetic (jamsdk.train.synth, seed {d['seed']}): {d['train_clips']} train / {d['test_clips']} test "
            f"clips × {d['frames']} frames" if d["synthetic"] else d["root"])
    ev = j["eval"]
    lines = [
        f"# Ablation: JAM ({j['model']}) vs MRAA ({m['model']}), stage 1 from scratch",
        "",
        f"- machine: {mc['cpu']}, {mc['logical_cpus']} logical CPUs; torch {mc['torch']} "
        f"(torch.set_num_threads({st['threads']})), Python {mc['python']}; device {st['device']}",
        f"- data: {data}, at {st['image_size']}²",
        f"- training: `Trainer` stage 1, {st['steps']} steps each, batch {st['batch_size']}, seed {st['seed']}, "
        f"one train: recipe for both; perceptual: {j['perceptual']}, pixel L1 weight {j['pixel_weight']:g}",
        f"- interleaved in {st['chunk']}-step chunks (each a resumed Trainer; order flips every round); "
        f"s/step = the trainer's train_step (forward, loss, backward, Adam; no data loading), median over "
        f"{j['timed_steps']} / {m['timed_steps']} steps (first {st['warmup_per_chunk']} of each chunk dropped)",
        f"- calibration conv before every chunk: {cal['gmacs_best']:.0f} GMAC/s best, {cal['gmacs_median']:.0f} median; "
        f"{cal['slow_checks']} of {len(cal['checks'])} checks > {(SLOW_CHECK - 1) * 100:.0f} % slower than the best"
        + (" — the machine was busy, timings are unreliable (rerun on an idle machine)" if cal["unstable"] else ""),
        f"- evaluation: jamsdk.train.evaluate, standard mode, mean L1 over {ev['num_videos']} test videos "
        f"({ev['num_frames']} frames)",
        "",
        f"| | JAM ({j['model']}) | MRAA ({m['model']}) | JAM/MRAA |",
        "|---|---:|---:|---:|",
        f"| eval L1 (lower is better) | {j['eval']['l1']:.5f} | {m['eval']['l1']:.5f} | {_r(rt['l1'])} |",
        f"| test videos with the lower L1 | {res['l1_paired']['jam_better']} | "
        f"{res['l1_paired']['videos'] - res['l1_paired']['jam_better']} | |",
        *_animation_rows(ja, ma, rt),
        f"| s/step, median (min) | {j['median_s']:.3f} ({j['min_s']:.3f}) | {m['median_s']:.3f} ({m['min_s']:.3f}) "
        f"| {_r(rt['s_per_step'])} |",
        f"| CPU s/step (all threads), median | {j['cpu_median_s']:.3f} | {m['cpu_median_s']:.3f} "
        f"| {_r(rt['cpu_s_per_step'])} |",
        *_vgg_rows(vj, vm, rt),        f"| params, all (stage 1 trains) | {j['params']:,} ({j['params_stage1']:,}) | "
        f"{m['params']:,} ({m['params_stage1']:,}) | {_r(rt['params'])} ({_r(rt['params_stage1'])}) |",
        f"| training loss, first step → mean of last {min(LAST_LOSSES, st['steps'])} | "
        f"{j['loss_first']:.3f} → {j['loss_last']:.3f} | {m['loss_first']:.3f} → {m['loss_last']:.3f} | |",
        f"| training wall time, s | {j['train_wall_s']:.0f} | {m['train_wall_s']:.0f} | |",
        "",
        f"Target: JAM s/step ≤ {res['target']['max_step_ratio']}× MRAA at no worse L1: s/step ratio "
        f"{rt['s_per_step']:.3f} → {'met' if res['target']['step_ratio_met'] else 'NOT met'}; L1 ratio "
        f"{rt['l1']:.3f} → {'no worse' if res['target']['l1_no_worse'] else 'WORSE'}.",
        f"Paper (MGif 256², to convergence): L1 {PAPER['l1']['jam']} vs {PAPER['l1']['mraa']} "
        f"({res['paper']['ratios']['l1']:.3f}); stage-1 s/it {PAPER['stage1_s_per_it']['jam']} vs "
        f"{PAPER['stage1_s_per_it']['mraa']} ({res['paper']['ratios']['stage1']:.3f}, "
        f"{1 / res['paper']['ratios']['stage1']:.2f}× faster); stage 2 {res['paper']['ratios']['stage2']:.3f} "
        f"({1 / res['paper']['ratios']['stage2']:.2f}×).",
        "",
        *([] if not vj else [
            f"Why the step ratio is what it is: the VGG-19 perceptual pyramid is the same for both configs "
            f"(≈ {vj['vgg_s']:.2f} s vs {vm['vgg_s']:.2f} s per step measured, {vj['gmacs']['vgg']:.1f} forward GMAC) "
            f"and takes {100 * vj['vgg_share']:.0f} % / {100 * vm['vgg_share']:.0f} % of a step here. The rest of the "
            f"step (model forward and backward, pixel and equivariance losses, Adam) is where the configs differ: "
            f"JAM/MRAA {_r(rt['no_vgg_s_per_step'])} in time, {_r(rt['model_gmacs'])} in forward MACs. Even a model "
            f"that cost nothing would leave JAM at {res['vgg_floor_ratio']:.2f}× MRAA's step with this loss."]),
        f"L1 after {st['steps']} steps from scratch measures early training (how fast each model learns to "
        f"reconstruct), not converged quality; the paper's figures are after full training.",
    ]
    if res["notes"]:
        lines.append("")
        lines += [f"- trainer: {n}" for n in res["notes"]]
    lines.append(f"\nTotal run time: {res['elapsed_s'] / 60:.1f} min.")
    return "\n".join(lines) + "\n"


def _vgg_rows(vj: dict[str, Any], vm: dict[str, Any], rt: dict[str, Any]) -> list[str]:
    if not vj:
        return ["| VGG share of a step | no VGG in this recipe | | |"]
    return [
        f"| s/step without VGG (fixed batch) | {vj['no_vgg_s']:.3f} | {vm['no_vgg_s']:.3f} "
        f"| {_r(rt['no_vgg_s_per_step'])} |",
        f"| VGG share of a step (fixed batch) | {100 * vj['vgg_share']:.0f} % ({vj['vgg_s']:.3f} s) | "
        f"{100 * vm['vgg_share']:.0f} % ({vm['vgg_s']:.3f} s) | |",
        f"| forward GMAC/step, model + VGG | {vj['gmacs']['model']:.2f} + {vj['gmacs']['vgg']:.2f} | "
        f"{vm['gmacs']['model']:.2f} + {vm['gmacs']['vgg']:.2f} | {_r(rt['model_gmacs'])} (model) |",
    ]


def _animation_rows(ja: dict[str, Any] | None, ma: dict[str, Any] | None, rt: dict[str, Any]) -> list[str]:
    if not ja or not ma:
        return ["| animation vs ground truth | no pairs in the data | | |"]
    return [
        f"| animation L1 vs ground truth, relative mode ({ja['num_pairs']} held-out pairs) | "
        f"{ja['model']['l1']:.5f} | {ma['model']['l1']:.5f} | {_r(rt['animation_l1'])} |",
        f"| animation L1 / no-motion L1 ({ja['no_motion']['l1']:.5f}) | {ja['l1_vs_no_motion']:.3f} | "
        f"{ma['l1_vs_no_motion']:.3f} | |",
        f"| animation PSNR, dB (no motion {ja['no_motion']['psnr']:.2f}) | {ja['model']['psnr']:.2f} | "
        f"{ma['model']['psnr']:.2f} | |",
        f"| part position error, px (no motion {ja['no_motion']['part_px']:.2f}) / no motion | "
        f"{ja['model']['part_px']:.2f} / {ja['motion_vs_no_motion']:.3f} | "
        f"{ma['model']['part_px']:.2f} / {ma['motion_vs_no_motion']:.3f} | |",
        f"| flow error, px/frame (no motion {ja['no_motion']['flow_epe']:.3f}) / no motion | "
        f"{ja['model']['flow_epe']:.3f} / {ja['flow_vs_no_motion']:.3f} | "
        f"{ma['model']['flow_epe']:.3f} / {ma['flow_vs_no_motion']:.3f} | |",
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-jam", default=str(REPO / "train/configs/jam.yaml"),
                   help="JAM config (model: + train:; default: train/configs/jam.yaml)")
    p.add_argument("--config-mraa", default=str(REPO / "train/configs/mraa.yaml"),
                   help="MRAA-shaped config (default: train/configs/mraa.yaml)")
    p.add_argument("--train-config", metavar="FILE", help="use this file's train: section for both sides")
    p.add_argument("--steps", type=int, default=150, help="stage-1 steps per config, from scratch (default: 150)")
    p.add_argument("--batch-size", type=int, default=4, help="batch size for both (default: 4)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default: 2)")
    p.add_argument("--size", type=int, help="image size for both (default: the configs', which must agree)")
    p.add_argument("--seed", type=int, help="train.seed for both, also the synthetic data's (default: the config's)")
    p.add_argument("--vgg-weights", metavar="PATH", help="torchvision vgg19 ImageNet weights (default: the fallback)")
    p.add_argument("--data", metavar="ROOT", help="data set with train/ and test/ (default: synthesize one)")
    p.add_argument("--clips", type=int, default=40, help="synthetic clips, 20 %% of them test (default: 40)")
    p.add_argument("--frames", type=int, default=32, help="frames per synthetic clip (default: 32)")
    p.add_argument("--pairs", type=int, default=8,
                   help="held-out animation pairs written with the synthetic data (default: 8; 0: none)")
    p.add_argument("--max-pairs", type=int, help="score animation on only the first N pairs")
    p.add_argument("--max-test-videos", type=int, help="evaluate only the first N test videos")
    p.add_argument("--max-frames", type=int, help="evaluate only the first N frames of each test video")
    p.add_argument("--chunk", type=int, default=10, help="steps per interleaved chunk (default: 10)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps at the start of each chunk (default: 1)")
    p.add_argument("--vgg-rounds", type=int, default=3, help="timed rounds of the VGG-share phase (default: 3)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--workdir", metavar="DIR", help="keep data, runs and checkpoints here (default: a temporary folder)")
    p.add_argument("--json", metavar="OUT", help="also write the full result (every step's time) as JSON")
    p.add_argument("--markdown", metavar="OUT", help="also write the markdown report to this file")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    require_at_least(p, args, 1, "steps", "threads", "chunk", "vgg_rounds", "clips", "frames")
    require_at_least(p, args, 0, "pairs")
    require_at_least(p, args, 1, "max_test_videos", "max_frames", "max_pairs")
    if not 0 <= args.warmup < args.chunk:
        p.error(f"--warmup: expected 0 ≤ warmup < chunk ({args.chunk}), got {args.warmup}")
    if args.data is None and args.clips < 2:
        p.error("--clips: expected ≥ 2 (the synthetic data set needs a train and a test clip)")
    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    return 0 if run_and_report(lambda: run(args, log), render, args.json, args.markdown) is not None else 2


if __name__ == "__main__":
    sys.exit(main())
