"""``jamsdk export``: checkpoint → model folder (stage graphs in FP32 and FP16 + ``manifest.json``).

Order of work: read the checkpoint and check the size (cheap errors first), make a staging
folder beside ``OUT_DIR`` (so an unwritable place fails before the slow part), export, check and
write every stage, write the manifest, optionally verify, then rename the folder into place. Any
failure (including a failed ``--verify`` or Ctrl-C) removes the staging folder, so ``OUT_DIR``
is either the complete new export, or what it was before. An existing ``OUT_DIR`` is replaced only
when it is provably a jamsdk model folder (:mod:`jamsdk._folders`); staging folders left by a
killed export are removed by the next export to the same folder.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from jamsdk import _folders
from jamsdk._lazy import require
from jamsdk.config import ModelConfig, size_problems
from jamsdk.errors import EngineError, InputError
from jamsdk.export.checks import check_graph
from jamsdk.export.fp16 import FP16_BODIES, precision_summary, to_mixed_fp16
from jamsdk.export.rewrite import SUBPIXEL_INT8, fp32_form
from jamsdk.export.samples import random_feeds
from jamsdk.export.torch2onnx import DEFAULT_OPSET, SUPPORTED_OPSETS, export_stage, save_model
from jamsdk.manifest import load_manifest
from jamsdk.manifest_write import model_folder_problem, new_manifest, stage_to_dict, write_manifest
from jamsdk.model_files import MANIFEST_NAME, file_ref, sha256_file
from jamsdk.stages import stage_table

# INT8 always comes with FP32: the quality gates measure against it, and stages the gates leave
# un-quantized use the FP32 graph as their "int8" file.
PRECISION_CHOICES = {"fp32": ("fp32",), "fp16": ("fp16",), "both": ("fp32", "fp16"), "int8": ("fp32", "int8"),
                     "all": ("fp32", "fp16", "int8")}
AVD_CHOICES = ("auto", "on", "off")
FP32_ISLANDS = ("the whole region predictor (hourglass, temperature softmax, heatmap moments, closed-form 2x2 PCA); "
                "dense motion: Gaussian heatmaps, 2x2 inverses, sparse motions (grid coordinates), deformed-source "
                "GridSample, mask/occlusion heads, mask softmax, final flow; generator: flow/occlusion resizes, "
                "every GridSample and occlusion blend, final sigmoid; AVD network; background linear layer")


@dataclass
class ExportResult:
    out_dir: Path
    manifest: dict[str, Any]
    seconds: float
    verify: Any = None  # jamsdk.export.verify.VerifyReport when --verify ran


def graph_file(stage: str, precision: str) -> str:
    """File name of a stage graph: ``<stage>.onnx`` (FP32), ``<stage>.fp16.onnx`` or ``<stage>.int8.onnx``."""
    return f"{stage}.onnx" if precision == "fp32" else f"{stage}.{precision}.onnx"


def describe_sizes(cfg: ModelConfig, limit: int = 12) -> str:
    sizes = cfg.supported_sizes(up_to=2048)
    shown = ", ".join(map(str, sizes[:limit]))
    return shown + (", …" if len(sizes) > limit else "") if sizes else "none up to 2048"


def check_size(cfg: ModelConfig, size: int) -> None:
    """Raise :class:`InputError` naming the reasons and the sizes that work when ``size`` does not fit."""
    if size < 1:
        raise InputError(f"--size: expected a positive size, got {size}")
    problems = size_problems(cfg, size)
    if problems:
        raise InputError(f"--size {size} does not fit model {cfg.name!r}: " + "; ".join(problems)
                         + f". Sizes it can take: {describe_sizes(cfg)}")


def avd_decision(cfg: ModelConfig, checkpoint: dict[str, Any], flag: str) -> tuple[bool, str]:
    """Whether to export ``avd.onnx``, and why (for the log and the manifest).

    ``auto`` exports it when the checkpoint's ``meta`` says ``avd_trained: true`` (the trainer sets
    it in checkpoints of its AVD stage), or when the checkpoint was converted from MRAA
    (``meta.converted_from == "mraa"``) with its AVD network: ``convert-mraa`` enables the network
    only when the MRAA file has ``avd_network`` weights, which MRAA writes only after its AVD
    training. An untrained AVD network would animate garbage, so the runtime must not offer avd
    mode for it.
    """
    if flag not in AVD_CHOICES:
        raise InputError(f"--avd: expected one of {AVD_CHOICES}, got {flag!r}")
    if not cfg.avd.enabled:
        if flag == "on":
            raise InputError("--avd on: this model has no AVD network (model.avd.enabled: false)")
        return False, "the model has no AVD network"
    if flag != "auto":
        return flag == "on", f"--avd {flag}"
    meta = checkpoint.get("meta") or {}
    if meta.get("avd_trained") is True:
        return True, "checkpoint meta.avd_trained is true"
    if meta.get("converted_from") == "mraa":
        return True, "converted MRAA checkpoint with avd_network weights"
    return False, "the checkpoint does not record a trained AVD network (meta.avd_trained); --avd on exports it anyway"


def prepare_out_dir(out_dir: Path) -> Path:
    """A new staging folder beside ``out_dir``; InputError, touching nothing, when ``out_dir`` may not be replaced.

    ``out_dir`` is replaced only when it is missing, empty, or provably a jamsdk model folder
    (:func:`jamsdk.manifest_write.model_folder_problem`). Staging folders that killed exports left for
    ``out_dir`` are removed first (:mod:`jamsdk._folders`).
    """
    _folders.check_replaceable(out_dir, model_folder_problem)
    return _folders.stage(out_dir, model_folder_problem)


def _replace_dir(tmp: Path, out_dir: Path) -> None:
    _folders.check_replaceable(out_dir, model_folder_problem)  # it may have changed during the export
    _folders.replace(tmp, out_dir)


def load_for_export(checkpoint: str | os.PathLike[str], size: int | None):
    """``(model at the export size, checkpoint dict, trained config, export size)``."""
    from jamsdk.model.checkpoint import config_of, load_state_strict, read_checkpoint
    from jamsdk.model.jam import build_model

    data = read_checkpoint(checkpoint)
    cfg = config_of(data, f"checkpoint {checkpoint}")
    size = cfg.image_size if size is None else size
    check_size(cfg, size)
    # The recorded config is the exported model's: the same weights at the export resolution.
    model = build_model(dataclasses.replace(cfg, image_size=size))
    load_state_strict(model, data["model"], f"checkpoint {checkpoint}")
    return model.eval(), data, cfg, size


def export_checkpoint(checkpoint: str | os.PathLike[str], out_dir: str | os.PathLike[str], size: int | None = None,
                      opset: int = DEFAULT_OPSET, precision: str = "both", verify: bool = False,
                      avd: str = "auto", log: Callable[[str], None] = print, seed: int = 0,
                      calibration: str | os.PathLike[str] | None = None, calibration_frames: int | None = None,
                      calibration_source: str | os.PathLike[str] | None = None,
                      min_psnr: float | None = None, threads: int | None = None,
                      batch_sizes: tuple[int, ...] = (), cpu_speed_gate: bool = True,
                      rewrite_fp32: bool = True) -> ExportResult:
    """Export a jamsdk checkpoint (own or converted MRAA) into the model folder ``out_dir``.

    ``batch_sizes`` (e.g. ``(2, 4, 8)``) adds the per-frame stages' graphs for that many streams
    per call (:mod:`jamsdk.export.batched`). ``cpu_speed_gate`` (INT8): also choose each stage's ONNX
    Runtime CPU graph by timing it on this machine (:mod:`jamsdk.export.int8_cpu`). ``rewrite_fp32``:
    write the FP32 graphs in the exact, faster forms of :mod:`jamsdk.export.rewrite` (the FP16
    graphs are made from the graphs as exported).

    Raises:
        CheckpointError: missing, corrupt or unsafe checkpoint.
        InputError: bad size, opset, precision, AVD choice, an output folder that cannot be written, or
            (INT8) a missing, unreadable or too-short calibration clip.
        EngineError: a graph failed export, the hygiene checks, or ``verify``.
    """
    start = time.perf_counter()
    if precision not in PRECISION_CHOICES:
        raise InputError(f"--precision: expected one of {tuple(PRECISION_CHOICES)}, got {precision!r}")
    if opset not in SUPPORTED_OPSETS:
        raise InputError(f"--opset: expected one of {SUPPORTED_OPSETS} (16–19: GridSample needs 16; from 20 "
                         f"TensorRT misreads its modes), got {opset}")
    precisions = PRECISION_CHOICES[precision]
    out_dir = Path(out_dir)
    from jamsdk.export.batched import check_batch_sizes, export_batched

    batch_sizes = check_batch_sizes(batch_sizes)

    model, data, trained_cfg, size = load_for_export(checkpoint, size)
    cfg = model.cfg
    n_params = sum(p.numel() for p in model.parameters())
    log(f"checkpoint {checkpoint}: model {cfg.name!r}, {n_params / 1e6:.2f} M parameters, "
        f"trained at {trained_cfg.image_size}px")
    with_avd, avd_reason = avd_decision(cfg, data, avd)
    clip = None
    if "int8" in precisions:  # read the clip before the slow part: a bad clip fails at once
        from jamsdk.export import calibration as calib

        clip = calib.load_calibration(calibration, size, calibration_frames or calib.DEFAULT_CALIBRATION_FRAMES,
                                      calibration_source)
    stages = stage_table(cfg, size, with_avd=with_avd)
    log(f"exporting {len(stages)} stages at {size}x{size}, opset {opset}, {'+'.join(precisions)} → {out_dir}")
    log(f"  avd: {'exported' if with_avd else 'skipped'} ({avd_reason})")

    tmp = prepare_out_dir(out_dir)
    try:
        gen = torch.Generator().manual_seed(seed)
        entries, rewrites = {}, {}
        int8_bases: dict[Any, Any] = {}  # stage (or (stage, B)) → the FP32 graph INT8 is quantized from
        for name, stage in stages.items():
            t0 = time.perf_counter()
            feeds = random_feeds(stage, gen)
            proto = export_stage(model, stage, [feeds[s.name] for s in stage.inputs], opset)
            check_graph(proto, stage, cfg.align_corners, opset, f"{name} (fp32)")
            t1 = time.perf_counter()
            files, line = {}, f"  {name:18s}"
            if "fp32" in precisions:
                fp32, done = fp32_form(proto, stage, cfg.align_corners, opset, f"{name} (fp32)", rewrite_fp32)
                if clip is not None and "subpixel_convs" in done and name not in SUBPIXEL_INT8:  # INT8's base
                    int8_bases[name], _ = fp32_form(proto, stage, cfg.align_corners, opset, f"{name} (fp32)",
                                                    rewrite_fp32, subpixel=False)
                save_model(fp32, tmp / graph_file(name, "fp32"))
                files["fp32"] = file_ref(tmp, graph_file(name, "fp32"))
                line += f" fp32 {len(fp32.graph.node)} nodes {t1 - t0:.1f}s"
                for kind, names in done.items():
                    rewrites.setdefault(kind, {})[name] = names
                    line += f" ({len(names)} conv(s) {kind.replace('_convs', '').replace('_', '-')})"
            if "fp16" in precisions:
                half = to_mixed_fp16(proto, name)
                check_graph(half, stage, cfg.align_corners, opset, f"{name} (fp16)")
                save_model(half, tmp / graph_file(name, "fp16"))
                files["fp16"] = file_ref(tmp, graph_file(name, "fp16"))
                counts = precision_summary(half)
                line += (f" | fp16 {counts['conv_fp16']}/{counts['conv']} convs in FP16, {counts['cast']} casts "
                         f"{time.perf_counter() - t1:.1f}s")
            entries[name] = stage_to_dict(stage, files)
            log(line)
        int8_info = int8_report = None
        if clip is not None:
            int8_info, int8_report = _export_int8(tmp, stages, entries, clip, cfg.align_corners, opset, min_psnr,
                                                  threads, log, cpu_speed_gate, int8_bases)

        info = {
            "exporter": "torch.onnx.export (TorchScript, dynamo=False) + onnxsim",
            "versions": _versions(),
            "checkpoint": os.path.basename(os.fspath(checkpoint)),
            "checkpoint_sha256": sha256_file(checkpoint),
            "trained_image_size": trained_cfg.image_size,
            "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "avd": avd_reason,
            "fp32_rewrites": ({"space_to_depth_convs": {}, "strided_convs": {}, "subpixel_convs": {}} | rewrites)
            if rewrite_fp32 else None,
            "fp16": {"body_scopes": {k: list(v) for k, v in FP16_BODIES.items() if k in stages},
                     "fp32_islands": FP32_ISLANDS} if "fp16" in precisions else None,
            "int8": int8_info,
            "verify": None,
        }
        # Pixel conversion and the relative algebra as tiny graphs: TensorRT keeps frames on the GPU.
        from jamsdk.runtime.helpers import write_helper_graphs

        extra = {"batched": export_batched(model, stages, batch_sizes, precisions, tmp, opset, gen, log,
                                           rewrite_fp32, int8_bases if clip is not None else None)}
        if extra["batched"] and int8_report is not None:  # the batched Q/DQ graphs, calibrated as batch 1's
            from jamsdk.export.int8_batched import add_batched_int8

            int8_info["batched"] = add_batched_int8(extra["batched"], tmp, stages, int8_report, cfg.align_corners,
                                                    opset, threads, log, int8_bases)
        manifest = new_manifest(cfg, size, opset, entries, precisions, export=info,
                                helpers=write_helper_graphs(tmp, size, cfg.num_regions),
                                **{k: v for k, v in extra.items() if v})
        write_manifest(tmp, manifest)

        report = None
        if verify:
            from jamsdk.export.verify import verify_model_dir

            log("verifying with ONNX Runtime (CPU) against PyTorch:")
            report = verify_model_dir(load_manifest(tmp), model, log=log, seed=seed, threads=threads)
            if not report.ok:
                worst = "; ".join(f"{c.what} = {c.value:.3g} (limit {c.limit:g})" for c in report.failures[:5])
                raise EngineError(f"verification failed ({len(report.failures)} checks): {worst}; nothing written")
            info["verify"] = report.summary()
            write_manifest(tmp, manifest)
        _replace_dir(tmp, out_dir)
    except BaseException:
        _folders.discard(tmp)
        raise
    seconds = time.perf_counter() - start
    log(f"done in {seconds:.1f}s: {out_dir}/{MANIFEST_NAME}")
    return ExportResult(out_dir, manifest, seconds, report)


def _export_int8(tmp: Path, stages, entries: dict, clip, align_corners: bool, opset: int,
                 min_psnr: float | None, threads: int | None, log: Callable[[str], None],
                 cpu_speed_gate: bool = True, bases: dict | None = None) -> tuple[dict[str, Any], Any]:
    """Quantize and gate the stages (jamsdk.export.int8); write ``<stage>.int8.onnx`` for accepted ones.

    A stage left un-quantized (by the gates, or not a candidate) records its FP32 graph as its
    ``int8`` file, so an INT8 folder always runs; the manifest's ``export.int8`` says which is which.
    With ``cpu_speed_gate`` every stage also gets an ``int8_cpu`` file (ONNX Runtime's CPU graph:
    its ``int8`` file, its FP32 file, or ``<stage>.int8-u8s8.onnx``; jamsdk.export.int8_cpu) and,
    where openvino is installed, an ``int8_openvino`` file (jamsdk.export.int8_openvino). Returns the
    manifest's ``export.int8`` and the report (the batched INT8 graphs are made from it). ``bases``:
    stage → the FP32 graph to quantize where it is not the written one (jamsdk.export.rewrite.SUBPIXEL_INT8).
    """
    from jamsdk.export.int8 import DEFAULT_MIN_PSNR, quantize_model

    chain = ("region_predictor", "generator_encoder", "dense_motion", "generator")
    written = {name: tmp / graph_file(name, "fp32") for name in chain}
    fp32 = {name: (bases or {}).get(name, written[name]) for name in chain}
    accepted, report = quantize_model(fp32, clip, DEFAULT_MIN_PSNR if min_psnr is None else min_psnr,
                                      threads=threads, log=log, cpu=cpu_speed_gate, fp32_timed=written)
    for name, stage in stages.items():
        files = entries[name]["files"]
        if name in accepted:
            check_graph(accepted[name], stage, align_corners, opset, f"{name} (int8)")
            save_model(accepted[name], tmp / graph_file(name, "int8"))
            files["int8"] = file_ref(tmp, graph_file(name, "int8"))
        else:
            files["int8"] = dict(files["fp32"])
        if report.openvino_graphs:  # OpenVINO's choice: the accepted S8S8 graph or the FP32 one
            files["int8_openvino"] = dict(files["int8" if report.openvino_graphs.get(name) == "int8" else "fp32"])
        if not cpu_speed_gate:
            continue
        form = report.cpu[name].form if name in report.cpu else "fp32"
        if form == "u8s8":  # ONNX Runtime's own form, never TensorRT's: all checks but TensorRT's Q/DQ rules
            check_graph(report.cpu_graphs[name], stage, align_corners, opset, f"{name} (int8-u8s8)", qdq_rules=False)
            save_model(report.cpu_graphs[name], tmp / graph_file(name, "int8-u8s8"))
            files["int8_cpu"] = file_ref(tmp, graph_file(name, "int8-u8s8"))
        else:
            files["int8_cpu"] = dict(files["int8" if form == "s8s8" else "fp32"])
    return report.summary(), report


def _versions() -> dict[str, str]:
    from jamsdk._version import __version__

    onnx, onnxsim = require("onnx"), require("onnxsim")

    return {"jamsdk": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxsim": getattr(onnxsim, "__version__", "?")}
