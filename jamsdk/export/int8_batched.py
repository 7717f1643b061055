"""Batched INT8 graphs: the per-frame stages for B streams per call, quantized like the batch-1 ones.

``jamsdk export --precision int8 --batch-sizes 4,8`` writes, next to each batched FP32 graph
``<stage>.b<B>.onnx`` (:mod:`jamsdk.export.batched`), its Q/DQ form ``<stage>.b<B>.int8.onnx``, so a
:class:`~jamsdk.runtime.batch.StreamBatch` (``jamsdk batch``, ``jamsdk serve``) runs INT8 at every
batch size, with one precision for all of them.

* **Which stages.** Exactly those the batch-1 gates accepted (:mod:`jamsdk.export.int8`), with the
  same FP32 islands; a stage left FP32 at batch 1 lists its batched FP32 graph as its batched
  ``int8`` file. Each runtime's choice follows batch 1's too: ``int8_cpu`` (ONNX Runtime) is the
  batched S8S8, U8S8 or FP32 graph as the batch-1 speed gate chose, ``int8_openvino`` the S8S8 or
  FP32 graph as OpenVINO's did. The batched graphs are not timed again (a stage that pays in INT8
  for one row pays for B).
* **Calibrated like batch 1.** The batched graph is quantized on the batch-1 calibration inputs
  stacked B at a time (every recorded call used; the last group filled up from the first), with the
  same MinMax calibration: per-tensor minima and maxima over the same values, so the same scales —
  each row of a batched call computes what the batch-1 graph computes.
* **Judged on held-out frames.** Per batch size and runtime, the chain of batched graphs (ONNX
  Runtime with its ``int8_cpu`` files, OpenVINO with its ``int8_openvino`` files where the export
  judged OpenVINO) animates the clip's held-out frames B at a time, against the FP32 batch-1 chain's
  predictions: end-to-end PSNR ≥ ``--min-psnr``. A size that fails falls back to its FP32 graphs for
  that runtime (the log and ``export.int8.batched`` say so), so INT8 at size B is never worse than
  the gate.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from jamsdk.export.psnr import db_json, psnr

if TYPE_CHECKING:
    from jamsdk.export.int8 import Int8Report
    from jamsdk.stages import Stage


def stacked_feeds(rows: Sequence[Mapping[str, np.ndarray]], batch: int) -> list[dict[str, np.ndarray]]:
    """Batch-1 feeds stacked ``batch`` at a time: every row once, the last group filled up from the first rows."""
    if not rows:
        return []
    calls = math.ceil(len(rows) / batch)
    return [{name: np.concatenate([rows[(c * batch + j) % len(rows)][name] for j in range(batch)])
             for name in rows[0]} for c in range(calls)]


def _judge(files: Mapping[str, Any], report: "Int8Report", batch: int, threads: int | None, openvino: bool) -> float:
    """End-to-end PSNR of the batched chain ``files`` against the FP32 chain on the held-out frames."""
    from jamsdk.export.calibration import StageChain

    clip = report.calibration_clip
    if openvino:
        from jamsdk.export.int8_openvino import OpenVINOChain

        chain: StageChain = OpenVINOChain(files, threads)
        try:
            out = chain.animate_batched(clip.source, clip.held_out, batch)
        finally:
            chain.files.close()
    else:
        out = StageChain(files, threads).animate_batched(clip.source, clip.held_out, batch)
    return psnr(out, report.reference_held_out)


def add_batched_int8(section: dict[str, Any], out_dir: Path, stages: Mapping[str, "Stage"], report: "Int8Report",
                     align_corners: bool, opset: int, threads: int | None,
                     log: Callable[[str], None], bases: Mapping[Any, Any] | None = None) -> dict[str, Any]:
    """Write the batched INT8 graphs into ``out_dir`` and their entries into ``section`` (the manifest's
    ``batched``); returns the judge's record for ``export.int8.batched``. ``bases``: ``(stage, B) →`` the
    FP32 graph to quantize where it is not the written one (as at batch 1)."""
    from jamsdk.export.batched import batched_file
    from jamsdk.export.checks import check_graph
    from jamsdk.export.int8 import quantize_stage
    from jamsdk.export.torch2onnx import save_model
    from jamsdk.model_files import file_ref
    from jamsdk.stages import batched

    def ref(name: str) -> dict[str, Any]:
        return file_ref(out_dir, name)

    accepted = set(report.quantized)
    for name, per_size in section["stages"].items():
        islands = report.stages.get(name, {}).get("fp32_convs", [])
        cpu_form = report.cpu[name].form if name in report.cpu else "fp32"
        for key, files in per_size.items():
            b = int(key)
            big = batched(stages[name], b)
            feeds = stacked_feeds(report.feeds.get(name, []), b)
            base = (bases or {}).get((name, b), out_dir / files["fp32"]["file"])
            if name in accepted:
                proto = quantize_stage(base, name, feeds, "s8s8", islands)
                check_graph(proto, big, align_corners, opset, f"{name} b{b} (int8)")
                save_model(proto, out_dir / batched_file(name, b, "int8"))
                files["int8"] = ref(batched_file(name, b, "int8"))
            else:
                files["int8"] = dict(files["fp32"])
            if report.cpu:
                if cpu_form == "u8s8":
                    proto = quantize_stage(base, name, feeds, "u8s8", islands)
                    check_graph(proto, big, align_corners, opset, f"{name} b{b} (int8-u8s8)", qdq_rules=False)
                    save_model(proto, out_dir / batched_file(name, b, "int8-u8s8"))
                    files["int8_cpu"] = ref(batched_file(name, b, "int8-u8s8"))
                else:
                    files["int8_cpu"] = dict(files["int8" if cpu_form == "s8s8" else "fp32"])
            if report.openvino_graphs:
                files["int8_openvino"] = dict(files["int8" if report.openvino_graphs.get(name) == "int8" else "fp32"])
    return _judge_sizes(section, out_dir, report, threads, log)


#: the per-frame stages of the chain the judge runs (standard mode; no AVD, no background motion)
JUDGED = ("region_predictor", "dense_motion", "generator")


def _judge_sizes(section: dict[str, Any], out_dir: Path, report: "Int8Report", threads: int | None,
                 log: Callable[[str], None]) -> dict[str, Any]:
    """Judge every batch size on each runtime; a size below ``--min-psnr`` falls back to its FP32 graphs there."""
    runtimes = {"onnxruntime": "int8_cpu" if report.cpu else "int8"}
    if report.openvino_graphs:
        runtimes["openvino"] = "int8_openvino"
    record: dict[str, Any] = {"rule": f"each size's chain of batched INT8 graphs ≥ --min-psnr {report.min_psnr:g} dB "
                                      "end to end against FP32 on the held-out frames, per runtime; else that "
                                      "size runs its FP32 graphs there", "sizes": {}}
    encoder = report.fp32_files["generator_encoder"]  # per source: never batched or quantized
    for size in section["sizes"]:
        record["sizes"][str(size)] = {}
        for runtime, key in runtimes.items():
            per_stage = {name: per_size[str(size)] for name, per_size in section["stages"].items()}
            files = {name: os.fspath(out_dir / per_stage[name][key]["file"]) for name in JUDGED}
            db = _judge({**files, "generator_encoder": encoder}, report, size, threads, runtime == "openvino")
            ok = db >= report.min_psnr
            if not ok:
                for f in per_stage.values():
                    f[key] = dict(f["fp32"])
            record["sizes"][str(size)][runtime] = {"psnr_db_held_out": db_json(db), "ok": bool(ok),
                                                   "graphs": key if ok else "fp32 (fallback)"}
            log(f"  int8: batch {size} on {runtime}: end to end {db:.1f} dB held out → "
                + ("INT8" if ok else f"FP32 (below --min-psnr {report.min_psnr:g} dB)"))
    return record

