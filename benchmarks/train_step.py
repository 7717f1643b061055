"""Seconds per training step (stage 1) of training configs on this machine, and their MACs.

    python benchmarks/train_step.py train/configs/jam.yaml train/configs/mraa.yaml
    python benchmarks/train_step.py train/configs/jam.yaml --batch 4 8 --threads 2 --steps 6 --json out.json

Each step is the trainer's own ``Trainer.train_step`` (forward, the full stage-1 loss — VGG-19
perceptual pyramid, pixel term, equivariance with its autograd Jacobian — backward and the Adam
update) on a fixed random batch, with the random-init VGG-19 (ImageNet weights cost the same).
Configs are timed interleaved (one step of each per round) so a busy phase of a shared machine is
spread over all of them; the calibration conv of ``_cost.py`` before and after shows how busy the
machine was. "CPU s/step" is the process's CPU time per step (all threads): on a machine shared
with other jobs it stays close to the quiet-machine work while wall time swings, and with
``--threads 1`` it is the single-core time. MACs are forward multiply-accumulates of convs/linears
(model, including the equivariance pass, + VGG), one step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from _cost import calibration_gmacs, machine_info
from jamsdk._atomic import write_bytes
from jamsdk.train.synth import write_dataset
from jamsdk.train.train_config import load_run_config, replace
from jamsdk.train.trainer import Trainer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("configs", nargs="+", help="training config files (model: + train:)")
    ap.add_argument("--batch", type=int, nargs="+", help="batch sizes (default: each config's)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per config and batch size")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.configs:
            model_cfg, train_cfg = load_run_config(path)
            size = model_cfg.image_size
            data = Path(tmp) / f"data{size}"
            if not data.exists():
                write_dataset(data, clips=4, frames=4, size=size, seed=0)
            for bs in args.batch or [train_cfg.batch_size]:
                name = f"{Path(path).stem} bs{bs}"
                cfg = replace(train_cfg, batch_size=bs, repeats=bs, num_workers=0)
                tr = Trainer(model_cfg, cfg, data, Path(tmp) / name.replace(" ", "_"), device="cpu",
                             progress=False, echo=lambda m: None)
                gen = torch.Generator().manual_seed(0)
                batch = (torch.rand(bs, 3, size, size, generator=gen), torch.rand(bs, 3, size, size, generator=gen))
                runs[name] = {"trainer": tr, "batch": batch, "samples": [], "cpu": [], "config": str(path), "batch_size": bs,
                              "image_size": size, "model": model_cfg.name}
        cal_before = calibration_gmacs()
        for r in range(args.warmup + args.steps):
            order = list(runs) if r % 2 == 0 else list(runs)[::-1]
            for name in order:
                run = runs[name]
                t0, c0 = time.perf_counter(), time.process_time()
                run["trainer"].train_step(*run["batch"])
                if r >= args.warmup:
                    run["samples"].append(time.perf_counter() - t0)
                    run["cpu"].append(time.process_time() - c0)
        cal_after = calibration_gmacs()
        for run in runs.values():
            run["gmacs"] = _step_gmacs(run["trainer"], run["batch"])

    result = {"machine": machine_info(), "calibration_gmacs_before": cal_before, "calibration_gmacs_after": cal_after,
              "runs": {}}
    print(f"calibration conv: {cal_before:.0f} GMAC/s before, {cal_after:.0f} after (≈135-140 with 2 threads on a quiet 2-core VM)")
    print(f"{'run':<22}{'s/step median':>14}{'min':>8}{'CPU s/step':>11}{'GMAC model+VGG':>16}{'steps/hour':>12}")
    for name, run in runs.items():
        med, low, cpu = statistics.median(run["samples"]), min(run["samples"]), statistics.median(run["cpu"])
        macs = f"{run['gmacs']['model']:.1f}+{run['gmacs']['vgg']:.1f}"
        print(f"{name:<22}{med:>14.2f}{low:>8.2f}{cpu:>11.2f}{macs:>16}{3600 / med:>12.0f}")
        result["runs"][name] = {k: run[k] for k in ("config", "model", "batch_size", "image_size", "samples", "cpu",
                                                     "gmacs")}
        result["runs"][name]["median_s"] = med
    if args.json:
        write_bytes(args.json, (json.dumps(result, indent=2) + "\n").encode())
    return 0


def _step_gmacs(tr: Trainer, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
    from _cost import MacCounter

    with MacCounter(tr.model) as model_macs, MacCounter(tr.objective.perceptual.vgg) as vgg_macs:
        tr.train_step(*batch)
    return {"model": model_macs.total / 1e9, "vgg": vgg_macs.total / 1e9,
            "total": (model_macs.total + vgg_macs.total) / 1e9}


if __name__ == "__main__":
    sys.exit(main())
