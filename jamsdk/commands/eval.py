"""``jamsdk eval``: reconstruction L1 on a data set's test videos, or animation against ground truth.

Reconstruction (the paper's Table I): each test video is rebuilt from its first frame (standard
mode); prints the L1 per video and overall.

Animation (``--animation DATA``): the model animates each held-out pair's source picture by the
pair's driving clip (pairs written by ``jamsdk synth --pairs N``) and is scored against the
rendered ground truth per mode, next to the no-motion and ground-truth baselines of the same run.
The model is a checkpoint (``--checkpoint``, PyTorch) or an exported folder (``--model``, through
the Animator). With ``--json`` the result is written atomically.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="score a model: reconstruction L1 on test videos, or animation vs ground truth",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="jamsdk checkpoint (e.g. runs/jam/checkpoint.pt)")
    p.add_argument("--model", metavar="DIR",
                   help="exported model folder (with --animation; run through the Animator), or 'demo'")
    p.add_argument("--data", help="dataset folder with a test/ split (reconstruction)")
    p.add_argument("--animation", metavar="DATA",
                   help="score animation against ground truth on the pairs in DATA (jamsdk synth --pairs N)")
    p.add_argument("--mode", nargs="+", default=None, choices=("relative", "standard", "avd"),
                   help="animation modes to score (default: relative)")
    p.add_argument("--json", metavar="OUT", help="also write the result as JSON")
    p.add_argument("--device", help="cpu or cuda for a checkpoint (default: cuda when available)")
    p.add_argument("--backend", default="onnxruntime", help="Animator backend for --model (default onnxruntime)")
    p.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads for --model")
    p.add_argument("--batch", type=int, default=16, help="frames per forward pass in reconstruction (default 16)")
    p.add_argument("--max-videos", type=int, help="evaluate only the first N test videos (or pairs)")
    return p


def run(args: argparse.Namespace) -> int:
    from jamsdk.errors import InputError

    if args.animation is not None:
        return _run_animation(args)
    if args.model is not None:
        raise InputError("--model (an exported folder) is scored with --animation DATA; reconstruction on --data "
                         "needs --checkpoint")
    if args.checkpoint is None or args.data is None:
        raise InputError("pass --checkpoint CKPT with --data DIR (reconstruction) or --animation DATA (animation)")
    if args.mode is not None:
        raise InputError("--mode applies to --animation; reconstruction is standard mode by definition")
    from jamsdk.train.evaluate import evaluate, write_json

    result = evaluate(args.checkpoint, args.data, device=args.device, batch=args.batch,
                      max_videos=args.max_videos, echo=print)
    print(f"mean L1 over {result['num_videos']} videos ({result['num_frames']} frames): {result['l1']:.5f}")
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


def _run_animation(args: argparse.Namespace) -> int:
    from jamsdk.errors import InputError
    from jamsdk.train.animation_eval import evaluate_animation, format_table
    from jamsdk.train.evaluate import write_json

    if args.data is not None:
        raise InputError("--data scores reconstruction, --animation scores animation pairs: pass one of them")
    model_dir = args.model
    if model_dir == "demo":
        from pathlib import Path

        import jamsdk

        model_dir = str(Path(jamsdk.__file__).parent / "assets" / "demo_model")
    if args.checkpoint is None and model_dir is None:
        raise InputError("--animation needs the model to score: --checkpoint CKPT or --model DIR")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads: expected ≥ 1, got {args.threads}")
    result = evaluate_animation(args.animation, checkpoint=args.checkpoint, model_dir=model_dir,
                                modes=tuple(args.mode or ("relative",)), device=args.device, backend=args.backend,
                                threads=args.threads, max_pairs=args.max_videos, echo=print)
    print(f"{result['num_pairs']} pairs, {result['image_size']}×{result['image_size']}, pairs version "
          f"{result['pairs_version']}")
    print(format_table(result))
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0
