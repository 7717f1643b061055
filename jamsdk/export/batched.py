"""Batched stage graphs: the per-frame stages for B independent streams per call (``--batch-sizes``).

Design: fixed batch sizes exported side by side (``dense_motion.b4.onnx`` next to
``dense_motion.onnx``), not one graph with a dynamic batch dimension. Static shapes keep every
graph-hygiene check of :mod:`jamsdk.export.checks` (TensorRT wants static shapes; no optimization
profile is needed), CUDA-graph replay stays possible, and onnxsim still folds all shape arithmetic.
The cost is disk (one graph per size and precision) and that a call runs at an exported size:
:class:`jamsdk.runtime.batch.StreamBatch` splits n streams into exported sizes (7 → 4 + 2 + 1).

The per-source ``generator_encoder`` is not batched: its outputs are cached per picture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from jamsdk.errors import InputError
from jamsdk.export.checks import check_graph
from jamsdk.export.fp16 import to_mixed_fp16
from jamsdk.export.rewrite import SUBPIXEL_INT8, fp32_form
from jamsdk.export.samples import random_feeds
from jamsdk.export.torch2onnx import export_stage, save_model
from jamsdk.model_files import file_ref
from jamsdk.stages import Stage, batchable, batched

MAX_BATCH = 64


def check_batch_sizes(sizes: Sequence[int] | None) -> tuple[int, ...]:
    """Sorted unique sizes 2 … :data:`MAX_BATCH`; size 1 is always exported and is dropped here."""
    out = set()
    for b in sizes or ():
        if isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= MAX_BATCH:
            raise InputError(f"--batch-sizes: expected whole numbers 1–{MAX_BATCH}, got {b!r}")
        if b > 1:
            out.add(b)
    return tuple(sorted(out))


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """``"2,4,8"`` → ``(2, 4, 8)`` (for the CLI)."""
    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise InputError(f"--batch-sizes: expected comma-separated whole numbers such as 2,4,8, got {text!r}") from None
    return check_batch_sizes(values)


def batched_file(stage: str, batch: int, precision: str) -> str:
    """``<stage>.b<B>.onnx`` (FP32) or ``<stage>.b<B>.fp16.onnx``."""
    return f"{stage}.b{batch}.onnx" if precision == "fp32" else f"{stage}.b{batch}.{precision}.onnx"


def batched_feeds(stage: Stage, batch: int, gen: torch.Generator) -> list[torch.Tensor]:
    """Example inputs for ``batch`` streams: independent batch-1 samples stacked (distinct per row)."""
    rows = [random_feeds(stage, gen) for _ in range(batch)]
    return [torch.cat([row[s.name] for row in rows]) for s in stage.inputs]


def export_batched(model: Any, stages: Mapping[str, Stage], sizes: Sequence[int], precisions: Sequence[str],
                   out_dir: Path, opset: int, gen: torch.Generator,
                   log: Callable[[str], None], rewrite_fp32: bool = True,
                   int8_bases: dict | None = None) -> dict[str, Any] | None:
    """Export every per-frame stage at every size into ``out_dir``; the manifest's ``batched`` section.

    ``rewrite_fp32``: FP32 graphs in the forms of :mod:`jamsdk.export.rewrite`, as the batch-1 ones.
    ``int8_bases`` (INT8 exports): filled with ``(stage, B) →`` the FP32 graph to quantize where it is
    not the written one (:data:`jamsdk.export.rewrite.SUBPIXEL_INT8`).
    """
    sizes = check_batch_sizes(sizes)
    if not sizes:
        return None
    align = model.cfg.align_corners
    section: dict[str, Any] = {"sizes": list(sizes), "stages": {}}
    for name, stage in stages.items():
        if not batchable(stage):
            continue
        section["stages"][name] = {}
        for b in sizes:
            big = batched(stage, b)
            proto = export_stage(model, big, batched_feeds(stage, b, gen), opset)
            check_graph(proto, big, align, opset, f"{name} b{b} (fp32)")
            files = {}
            if "fp32" in precisions:
                fp32, done = fp32_form(proto, big, align, opset, f"{name} b{b} (fp32)", rewrite_fp32)
                if int8_bases is not None and "subpixel_convs" in done and name not in SUBPIXEL_INT8:
                    int8_bases[(name, b)], _ = fp32_form(proto, big, align, opset, f"{name} b{b} (fp32)",
                                                         rewrite_fp32, subpixel=False)
                save_model(fp32, out_dir / batched_file(name, b, "fp32"))
                files["fp32"] = file_ref(out_dir, batched_file(name, b, "fp32"))
            if "fp16" in precisions:
                half = to_mixed_fp16(proto, name)
                check_graph(half, big, align, opset, f"{name} b{b} (fp16)")
                save_model(half, out_dir / batched_file(name, b, "fp16"))
                files["fp16"] = file_ref(out_dir, batched_file(name, b, "fp16"))
            section["stages"][name][str(b)] = files
        log(f"  {name:18s} batched: b{', b'.join(map(str, sizes))}")
    return section
