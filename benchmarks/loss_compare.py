"""Stage-1 reconstruction losses compared per CPU second: VGG-19 (random-init fallback) vs image pyramid.

    python benchmarks/loss_compare.py --config train/configs/demo.yaml --data DATA \\
        --init jamsdk/assets/demo.pt --steps 30 --videos 6 --json out.json

Each variant (``train.loss.reconstruction`` = ``vgg`` with the random-VGG fallback, ``pyramid`` =
image-pyramid L1 + SSIM, ``pyramid-l1`` = the pyramid without SSIM) starts from the same weights
(``--init``) and trains ``--steps`` steps with the trainer's own ``train_step`` on the same batches,
interleaved step by step so a busy phase of a shared machine hits all of them. Reported per variant:
process CPU seconds per step (all threads) and the held-out reconstruction L1 (``jamsdk eval``'s
metric on the first ``--videos`` test clips) before and after. A short run says which loss buys
more per CPU second from a given model, not which converges better.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from jamsdk._atomic import write_bytes
from jamsdk.train.datasets import FramesDataset
from jamsdk.train.evaluate import video_l1
from jamsdk.train.train_config import load_run_config, replace
from jamsdk.train.trainer import Trainer

VARIANTS = {
    "vgg": {"reconstruction": "vgg"},
    "pyramid": {"reconstruction": "pyramid"},
    "pyramid-l1": {"reconstruction": "pyramid", "pyramid_ssim": 0.0},
}


def held_out_l1(model: torch.nn.Module, videos: list[torch.Tensor]) -> float:
    was = model.training
    model.eval()
    try:
        return float(np.mean([np.mean(video_l1(model, v)) for v in videos]))
    finally:
        model.train(was)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--init", help="start every variant from these weights")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--videos", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model_cfg, train_cfg = load_run_config(args.config)
    test = FramesDataset(args.data, split="test", image_size=model_cfg.image_size)
    videos = [torch.as_tensor(np.asarray(test[i]["video"], dtype=np.float32))
              for i in range(min(args.videos, len(test)))]
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.variants:
            cfg = replace(train_cfg, loss=dataclasses.replace(train_cfg.loss, **VARIANTS[name]))
            tr = Trainer(model_cfg, cfg, args.data, Path(tmp) / name, init=args.init, device="cpu",
                         progress=False, echo=lambda m: None)
            runs[name] = {"trainer": tr, "cpu": [], "wall": [], "losses": []}
        before = held_out_l1(next(iter(runs.values()))["trainer"].model, videos)
        loader = next(iter(runs.values()))["trainer"].loader
        batches = iter(loader)
        for step in range(args.steps):
            batch = next(batches)
            for name in (args.variants if step % 2 == 0 else args.variants[::-1]):
                run = runs[name]
                c0, t0 = time.process_time(), time.perf_counter()
                run["losses"].append(run["trainer"].train_step(batch["source"], batch["driving"]))
                run["cpu"].append(time.process_time() - c0)
                run["wall"].append(time.perf_counter() - t0)
        result = {"config": args.config, "init": args.init, "steps": args.steps, "threads": args.threads,
                  "videos": len(videos), "l1_before": before, "variants": {}}
        print(f"held-out L1 before: {before:.5f} ({len(videos)} test clips); {args.steps} steps each")
        print(f"{'variant':<12}{'CPU s/step':>11}{'wall s/step':>12}{'L1 after':>10}{'ΔL1 per CPU min':>17}")
        for name, run in runs.items():
            after = held_out_l1(run["trainer"].model, videos)
            cpu = float(np.median(run["cpu"]))
            gain = (before - after) / (sum(run["cpu"]) / 60)
            print(f"{name:<12}{cpu:>11.2f}{np.median(run['wall']):>12.2f}{after:>10.5f}{gain:>17.6f}")
            result["variants"][name] = {"cpu_s_per_step": cpu, "wall_s_per_step": float(np.median(run["wall"])),
                                        "l1_after": after, "l1_gain_per_cpu_minute": gain,
                                        "last_losses": run["losses"][-1]}
    if args.json:
        write_bytes(args.json, (json.dumps(result, indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
