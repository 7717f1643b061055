"""jamsdk eval: score a model, by reconstruction L1 on test videos or animation against ground truth.

Reconstruction (--checkpoint CKPT --data DIR, the paper's Table I): each test video is rebuilt from
its first frame (standard mode); prints the L1 per video and overall, and the flow error (optical flow
of the reconstruction against the video's, pixels per frame) beside the video's own mean flow.

Animation (--animation DATA, with --checkpoint CKPT or --model DIR|demo): the model animates each
held-out pair's source picture by the pair's driving clip (pairs written by jamsdk synth --pairs N)
and is scored against the rendered ground truth per mode (--mode, repeatable; default relative), next
to two baselines of the same run: no motion (output = the source) and the ground truth itself (0).
Scores: L1 and PSNR, the part position error (where the figure's colour groups are against the
truth, pixels) and the flow error (optical flow between consecutive frames against the truth's).
--backend applies to an exported folder (--model) only.
A checkpoint runs in PyTorch, an exported folder through the Animator.

With --json the result is written atomically.
"""

from __future__ import annotations

import argparse

from jamsdk.commands._options import add_backend, add_json, add_max_pixels, add_mode, add_threads, given

OPERANDS = "--checkpoint CKPT --data DIR, or --animation DATA with --checkpoint CKPT or --model DIR"
QUIET = True  # the libraries' own output is hidden unless --verbose (jamsdk._quiet)
EXTRA = "train"  # what this command needs installed (named when a package of it is missing)


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="score a model: reconstruction L1 on test videos, or animation vs ground truth",
                       description=__doc__)
    p.add_argument("--checkpoint", metavar="CKPT", help="jamsdk checkpoint (e.g. runs/jam/checkpoint.pt)")
    p.add_argument("--data", metavar="DIR", help="data set folder with a test/ split (reconstruction)")
    p.add_argument("--animation", metavar="DATA",
                   help="score animation against ground truth on the pairs in DATA (written by jamsdk synth --pairs N)")
    p.add_argument("--model", metavar="DIR",
                   help="with --animation: an exported model folder run through the Animator, or the word demo "
                        "for the bundled demo model")
    add_mode(p, repeatable=True)
    add_json(p)
    p.add_argument("--device", help="cpu or cuda for a checkpoint (default: cuda when available)")
    add_backend(p, " for --model")
    add_threads(p)
    add_max_pixels(p)
    p.add_argument("--batch", type=int, default=16, metavar="N", help="frames per forward pass in reconstruction "
                                                                       "(default 16)")
    p.add_argument("--max-videos", type=int, metavar="N", help="evaluate only the first N test videos (or pairs)")
    return p


def run(args: argparse.Namespace) -> int:
    from jamsdk.errors import InputError

    if args.animation is not None:
        return _run_animation(args)
    if args.model is not None:
        raise InputError("--model (an exported folder) is scored with --animation DATA; reconstruction on --data "
                         "needs --checkpoint CKPT")
    if given(args, "--mode"):
        raise InputError("--mode applies to --animation; reconstruction is standard mode by definition")
    if given(args, "--backend"):
        raise InputError("--backend applies to an exported folder (--animation DATA --model DIR); a checkpoint runs "
                         "in PyTorch (--device)")
    if args.checkpoint is None or args.data is None:
        raise InputError("pass --checkpoint CKPT with --data DIR (reconstruction), or --animation DATA with "
                         "--checkpoint CKPT or --model DIR (animation against ground truth)")
    from jamsdk.train.evaluate import evaluate, write_json

    result = evaluate(args.checkpoint, args.data, device=args.device, batch=args.batch,
                      max_videos=args.max_videos, echo=print)
    print(f"mean L1 over {result['num_videos']} videos ({result['num_frames']} frames): {result['l1']:.5f}")
    if result["flow_epe"] is not None:
        print(f"flow error {result['flow_epe']:.3f} px per frame (no motion: the videos' own flow, "
              f"{result['video_flow']:.3f})")
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
    if (args.checkpoint is None) == (args.model is None):
        raise InputError("--animation needs one model to score: --checkpoint CKPT (PyTorch) or --model DIR "
                         "(an exported folder, or demo)")
    if args.checkpoint is not None and given(args, "--backend"):
        raise InputError("--backend applies to an exported folder (--model DIR); a checkpoint runs in PyTorch "
                         "(--device)")
    model_dir = None
    if args.model is not None:
        from jamsdk.bundled import resolve_model

        model_dir = resolve_model(args.model)
    modes = args.mode
    result = evaluate_animation(args.animation, checkpoint=args.checkpoint, model_dir=model_dir, modes=tuple(modes),
                                device=args.device, backend=args.backend, threads=args.threads,
                                max_pairs=args.max_videos, echo=print)
    print(f"{result['num_pairs']} pairs, {result['image_size']}×{result['image_size']}, pairs version "
          f"{result['pairs_version']}")
    print(format_table(result))
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0
