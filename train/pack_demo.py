"""Pack a trained checkpoint as the bundled demo: ``jamsdk/assets/demo.pt`` + ``demo_model/``.

The shipped checkpoint keeps the model config and meta, drops the training state and stores the
weights as FP16 (half the bytes; the model loads them back into FP32 parameters). The exported
folder is made FROM those rounded weights, so the PyTorch checkpoint and the bundled ONNX graphs
compute the same frames. FP32 graphs only: the demo runs on the CPU through ONNX Runtime.

    python train/pack_demo.py --checkpoint runs/demo-avd/checkpoint.pt
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "jamsdk" / "assets"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="trained jamsdk checkpoint (stage 2 if the demo should offer avd)")
    parser.add_argument("--assets", default=str(ASSETS), help="assets folder (default: the package's)")
    args = parser.parse_args(argv)

    import torch

    from jamsdk.export.pipeline import export_checkpoint
    from jamsdk.model.checkpoint import config_of, load_model, save_checkpoint

    model, data = load_model(args.checkpoint)
    cfg = config_of(data)
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    model.load_state_dict(half)  # back into FP32 parameters, now holding FP16-rounded values
    meta = dict(data.get("meta") or {})
    meta["packed_from"] = {"file": Path(args.checkpoint).name, "step": (data.get("train_state") or {}).get("step")}
    assets = Path(args.assets)
    demo_pt = assets / "demo.pt"
    save_checkpoint(demo_pt, model, cfg, train_state=None, meta=meta)
    # Store the FP16 weights themselves (save_checkpoint wrote FP32 copies of the rounded values).
    payload = torch.load(demo_pt, weights_only=True)
    payload["model"] = half
    from jamsdk._atomic import atomic_path

    with atomic_path(demo_pt) as tmp:
        torch.save(payload, tmp)

    out = assets / "demo_model"
    if out.exists():
        shutil.rmtree(out)
    export_checkpoint(demo_pt, out, precision="fp32")
    size = demo_pt.stat().st_size + sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {demo_pt} and {out} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
