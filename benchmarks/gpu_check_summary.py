"""The summary of ``benchmarks/gpu_check.sh``: ``gpu_check.json`` with a verdict and the numbers per part.

Called by the script after every part (standard library only: it runs wherever the script does)::

    python benchmarks/gpu_check_summary.py OUT_DIR "name status seconds json log" ...

Verdicts: ``PASS`` (the part ran to the end and its own checks held: the pipeline and engine parts'
``verdict``; for the numerics, every figure finite; for the latency, no row failed), ``FAIL`` (it
failed, timed out, or a check did not hold; the numbers it wrote before are still listed),
``SKIPPED`` (no CUDA there; for the engine part no TensorRT, with its ``reason``), ``NOT AVAILABLE``
(the checkout lacks the part). ``ran`` and ``skipped`` list the parts by whether they ran. The run
passes when no part is ``FAIL``; the exit status is then 0, else 1.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any


def _load(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _finite(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    if isinstance(value, str):  # gpu_fp16_numerics writes non-finite floats as strings
        return value.lower() not in ("nan", "-inf")
    return not (isinstance(value, float) and (math.isnan(value) or (math.isinf(value) and value < 0)))


def pipeline_numbers(data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    pipeline = data.get("pipeline", data)
    keys = ("max_abs_diff_model_space", "max_abs_diff_uint8", "h2d_bytes_per_frame", "d2h_bytes_per_frame",
            "syncs_per_frame", "graph_launches_per_frame", "wall_ms_per_frame", "ok", "problems")
    numbers: dict[str, Any] = {"modes": {name: {k: m.get(k) for k in keys}
                                         for name, m in (pipeline.get("modes") or {}).items()}}
    if "plumbing" in data:
        numbers["plumbing"] = data["plumbing"]
    for key in ("gpu_name", "device", "tf32", "image_size", "frames"):
        if key in data or key in pipeline:
            numbers[key] = data.get(key, pipeline.get(key))
    return numbers, data.get("verdict") == "PASS"


def numerics_numbers(data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    numbers: dict[str, Any] = {}
    for model in data.get("models") or []:
        name = model.get("config", model.get("name", f"model{len(numbers)}"))
        numbers[name] = {
            "stages_psnr_db_min": {stage: {v: r.get("psnr_db_min") for v, r in variants.items()}
                                   for stage, variants in (model.get("stages") or {}).items()},
            "end_to_end_psnr_db": {mode: {v: {"mean": r.get("psnr_db_mean"), "min": r.get("psnr_db_min")}
                                          for v, r in variants.items()}
                                   for mode, variants in (model.get("end_to_end") or {}).items()},
        }
    return numbers, data.get("status") == "ok" and bool(numbers) and _finite(numbers)


def engines_numbers(data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    keep = ("max_abs_diff_uint8", "psnr_db_uint8", "max_abs_diff_model_space", "psnr_db_model_space",
            "frame_wall_ms_p50", "frame_wall_ms_p50_cuda_graph", "stage_gpu_ms_p50", "h2d_bytes_per_frame",
            "d2h_bytes_per_frame", "syncs_per_frame", "device_bytes_opened", "scratch_bytes", "activation_bytes",
            "precision", "chunk_ms_p50", "h2d_bytes_per_chunk", "d2h_bytes_per_chunk", "syncs_per_chunk")
    numbers: dict[str, Any] = {key: data.get(key) for key in ("tensorrt", "gpu_name", "kind", "export_seconds")
                               if key in data}
    for precision, folder in (data.get("folders") or {}).items():
        numbers[precision] = {"build": folder.get("build"), "problems": folder.get("problems"),
                              **{part: {k: v for k, v in (folder.get(part) or {}).items() if k in keep}
                                 for part in ("animator", "stream_batch")}}
    return numbers, data.get("verdict") == "PASS"


def latency_numbers(data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    numbers = {config: {row: {k: v for k, v in r.items() if k != "samples_ms"} for row, r in rows.items()}
               for config, rows in (data.get("rows") or {}).items()}
    errors = any("error" in r for rows in numbers.values() for r in rows.values())
    return numbers, data.get("status") == "ok" and bool(numbers) and not errors


READERS = {"pipeline": pipeline_numbers, "engines": engines_numbers, "fp16_numerics": numerics_numbers,
           "latency": latency_numbers}


def summarise(out: str, entries: list[str]) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    for entry in entries:
        name, status, seconds, json_file, log = entry.split(" ")
        part: dict[str, Any] = {"status": status.replace("_", " "), "seconds": int(seconds),
                                "json": None if json_file == "-" else json_file, "log": None if log == "-" else log}
        data = _load(os.path.join(out, json_file)) if json_file != "-" else None
        numbers, passed = READERS[name](data) if data is not None and name in READERS else ({}, False)
        if status == "not_available":
            verdict = "NOT AVAILABLE"
        elif status == "skipped":
            verdict = "SKIPPED"
        else:
            verdict = "PASS" if status == "ok" and passed else "FAIL"
        part.update(verdict=verdict, numbers=numbers)
        if status == "skipped" and data is not None and data.get("reason"):
            part["reason"] = data["reason"]
        if data is not None and data.get("status") == "running":
            part["partial"] = True  # written before the part finished (it timed out or crashed)
        parts[name] = part
    verdict = "FAIL" if any(p["verdict"] == "FAIL" for p in parts.values()) else "PASS"
    ran = [name for name, p in parts.items() if p["verdict"] in ("PASS", "FAIL")]
    skipped = [name for name, p in parts.items() if p["verdict"] not in ("PASS", "FAIL")]
    return {"verdict": verdict, "ran": ran, "skipped": skipped, "parts": parts, "env": "env.txt"}


def main(argv: list[str]) -> int:
    out, entries = argv[0], argv[1:]
    summary = summarise(out, entries)
    path = os.path.join(out, "gpu_check.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(summary, fh, indent=1)
    os.replace(tmp, path)
    verdicts = ", ".join(f"{name} {p['verdict']}" for name, p in summary["parts"].items())
    print(f"wrote {path}: {summary['verdict']} ({verdicts}; ran: {', '.join(summary['ran']) or 'none'}; "
          f"skipped: {', '.join(summary['skipped']) or 'none'})")
    return 1 if summary["verdict"] == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
