"""jamsdk train: train a model (stage 1: reconstruction; stage 2: the AVD network).

Examples:

    jamsdk train --config train/configs/jam.yaml --data data/shapes --out runs/jam --vgg-weights vgg19.pth
    jamsdk train --out runs/jam --resume                      # continue after Ctrl-C / SIGTERM / a crash
    jamsdk train --config train/configs/jam.yaml --data data/shapes --out runs/jam-avd \\
        --stage 2 --init runs/jam/checkpoint.pt               # AVD network on the stage-1 model
    torchrun --nproc-per-node 4 -m jamsdk train ...           # several GPUs (DDP, NCCL)
    jamsdk train --nproc 2 ...                                # the same, launched for you (CPU: gloo)

Command-line flags win over the config file; the resolved config is written to RUN/config.yaml.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jamsdk.commands._options import add_max_pixels

OPERANDS = "--config YAML --data DIR --out DIR"


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="train a model (stage 1) or its AVD network (stage 2)", description=__doc__)
    p.add_argument("--config", metavar="YAML", help="config YAML with model: and train: (e.g. train/configs/jam.yaml); "
                                    "on --resume defaults to RUN/config.yaml")
    p.add_argument("--data", metavar="DIR", help="dataset folder with train/ and test/ (on --resume defaults to the run's)")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder: checkpoint.pt, config.yaml, log.csv, tb/, loss.png")
    p.add_argument("--stage", type=int, choices=(1, 2), default=1,
                   help="1: reconstruction (default); 2: AVD network only, needs --init or --resume")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--init", metavar="CKPT", help="start from these weights (stage 2: the stage-1 checkpoint)")
    p.add_argument("--max-steps", type=int, metavar="N", help="train this many steps in total (overrides steps/epochs)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--vgg-weights", metavar="PATH",
                   help="torchvision vgg19 ImageNet weight file (vgg19-dcbb9e9d.pth) for the perceptual loss; "
                        "without it a random-init VGG-19 plus an L1 pixel term is used (a warning says so)")
    p.add_argument("--batch-size", type=int, metavar="N", help="override the batch size of the chosen stage")
    p.add_argument("--milestones", metavar="N,N,...",
                   help="override the chosen stage's learning-rate milestones (the steps after which lr × gamma), "
                        "e.g. --resume --milestones 2501 to decay a long run from step 2501 on; 'none' for none")
    p.add_argument("--num-workers", type=int, metavar="N", help="override train.num_workers")
    add_max_pixels(p)
    p.add_argument("--seed", type=int, metavar="K", help="override train.seed")
    p.add_argument("--plot", action="store_true", help="draw RUN/loss.png from the log at each checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="train with N processes (DistributedDataParallel) by launching torchrun on this machine: "
                        "one per GPU with --device cuda (NCCL), else N CPU processes (gloo); the batch size is "
                        "the global one (default 1: no launcher)")
    return p


# Options of this command that the --nproc launcher passes on to each process (flag, attribute).
_VALUE_FLAGS = (("--config", "config"), ("--data", "data"), ("--out", "out"), ("--stage", "stage"),
                ("--init", "init"), ("--max-steps", "max_steps"), ("--device", "device"),
                ("--vgg-weights", "vgg_weights"), ("--batch-size", "batch_size"), ("--num-workers", "num_workers"),
                ("--seed", "seed"), ("--milestones", "milestones"))
_SWITCHES = (("--resume", "resume"), ("--plot", "plot"), ("--no-progress", "no_progress"))


def _launch(args: argparse.Namespace) -> int:
    """Run this command again under ``torch.distributed.run`` (torchrun) with ``--nproc`` processes."""
    import os
    import subprocess
    import sys

    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}",
            "-m", "jamsdk", "train"]
    for flag, attr in _VALUE_FLAGS:
        value = getattr(args, attr)
        if value is not None:
            argv += [flag, str(value)]
    argv += [flag for flag, attr in _SWITCHES if getattr(args, attr)]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # N processes share the cores
    return subprocess.call(argv, env=env)


def _milestones(text: str) -> tuple[int, ...]:
    """``"2501,3001"`` → ``(2501, 3001)``; ``"none"`` → ``()`` (the schedule checks order and range)."""
    from jamsdk.errors import InputError

    if text.strip().lower() == "none":
        return ()
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--milestones: expected whole numbers separated by commas (or none), got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    import os

    from jamsdk.errors import InputError

    if args.nproc < 1:
        raise InputError(f"--nproc: expected ≥ 1, got {args.nproc}")
    if args.nproc > 1:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise InputError("--nproc inside a torchrun launch: pass one or the other")
        return _launch(args)
    out = Path(args.out)
    config = args.config
    if config is None:
        if not args.resume:
            raise InputError("--config is required (it may be omitted only with --resume)")
        config = out / "config.yaml"
        if not config.is_file():
            raise InputError(f"--resume without --config: {config} does not exist; pass --config")

    from jamsdk.train.train_config import load_run_config, replace
    from jamsdk.train.trainer import train

    model_cfg, train_cfg = load_run_config(config)
    changes: dict = {}
    stage_changes: dict = {}
    if args.max_steps is not None:
        if args.max_steps < 1:
            raise InputError(f"--max-steps: expected ≥ 1, got {args.max_steps}")
        stage_changes.update(steps=args.max_steps, epochs=None)
    if args.batch_size is not None:
        stage_changes["batch_size"] = args.batch_size
    if args.milestones is not None:
        stage_changes["milestones"] = _milestones(args.milestones)
    if args.stage == 1:
        changes.update(stage_changes)
    elif stage_changes:
        changes["avd"] = stage_changes
    if args.vgg_weights is not None:
        changes["vgg_weights"] = args.vgg_weights
    if args.num_workers is not None:
        changes["num_workers"] = args.num_workers
    if args.seed is not None:
        changes["seed"] = args.seed
    train_cfg = replace(train_cfg, **changes)

    data = args.data
    if data is None:
        if not args.resume:
            raise InputError("--data is required (it may be omitted only with --resume)")
        data = _recorded_data(out)

    result = train(model_cfg, train_cfg, data, out, stage=args.stage, resume=args.resume, init=args.init,
                   device=args.device, plot=args.plot, progress=not args.no_progress)
    shown = ", ".join(f"{k} {v:.4g}" for k, v in result.losses.items())
    how = "finished" if result.stopped_by == "finished" else f"stopped by {result.stopped_by}"
    if result.checkpoint is not None:
        print(f"{how} at step {result.step}: {result.checkpoint}" + (f" ({shown})" if shown else ""))
    return 0


def _recorded_data(out: Path) -> str:
    from jamsdk.errors import InputError
    from jamsdk.model.checkpoint import read_checkpoint

    meta = read_checkpoint(out / "checkpoint.pt").get("meta") or {}
    if not meta.get("data"):
        raise InputError(f"{out}/checkpoint.pt does not record its data folder; pass --data")
    return str(meta["data"])
