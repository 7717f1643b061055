"""INT8 stage graphs: explicit quantization (Q/DQ) calibrated on a real clip, with quality gates.

Quantization is ONNX Runtime's (``onnxruntime.quantization.quantize_static``, QDQ format, MinMax
calibration); this module chooses what to quantize and judges the result.

* **What TensorRT accepts** (its "explicit quantization" rules): symmetric INT8 only (zero point
  0), per-channel weight scales on the output-channel axis (0 for Conv), per-tensor activation
  scales. The ``s8s8`` variant written to ``<stage>.int8.onnx`` is exactly that: INT8 activations
  and weights, ``ActivationSymmetric``/``WeightSymmetric``, per-channel weights, and float biases
  (``QuantizeBias`` off: TensorRT dequantizes INT8 only, not ORT's INT32 biases).
  :func:`jamsdk.export.checks.qdq_problems` checks every graph against these rules.
  ``u8s8`` is ONNX Runtime's x86 form: asymmetric UINT8 activations, INT32 biases and 7-bit
  weights (``reduce_range``: ONNX Runtime's advice for x86 CPUs without VNNI, whose ``VPMADDUBSW``
  saturates on full-range weights), and FP32 readers of a quantized tensor reading the tensor
  itself (:func:`jamsdk.export.rewrite.float_readers_skip_qdq`: ONNX Runtime then fuses every
  quantized convolution). Not TensorRT's; :mod:`jamsdk.export.int8_cpu` may choose it for ONNX
  Runtime on the CPU (docs/export.md has the numbers and the decision).
* **What is quantized**: only ``Conv`` nodes (their activation input, weights and output) of the
  per-frame convolutional stages, :data:`CANDIDATES`. Everything else stays FP32 as in the FP32
  graph: the region statistics and the closed-form 2×2 solver, softmaxes, Gaussian heatmaps,
  sparse motions, every GridSample and its grid, the occlusion blends. Per stage,
  :data:`FP32_CONVS` keeps some convolutions in FP32 too: always the dense-motion mask and
  occlusion heads (their softmax/sigmoid decide the flow) and the region predictor's heatmap head (a
  softmax at temperature 0.1 multiplies its error by 10), and the input side of both: the
  anti-alias blur of the picture and the hourglass's first encoder block (on jam-256 with
  trained-like weights, each of the region predictor's convolutions alone in INT8: the blur 16.3 dB
  end to end, the first encoder block 17.7 dB, the second 44.7 dB, every other one ≥ 50 dB; dense
  motion's blur alone 36.7 dB, its first encoder block 40.7 dB, and the whole stage 35.4 dB with
  its heads in FP32, 45.8 dB with the input side too). If that is not enough, also the region
  predictor's second encoder block, and dense motion's hourglass decoder, which feeds its heads (on
  jam-256 dense motion went from 25.9 to 36.4 dB with its decoder in FP32 before its input side was
  kept FP32). The blurs cost nothing in FP32: they run strided (:mod:`jamsdk.export.rewrite`).
  ``generator_encoder`` runs once per
  source, ``avd`` is a small MLP of region geometry and ``bg_motion`` is off while animating: no
  time to gain, so they stay FP32.
* **The CPU's graphs**: after the gates, :mod:`jamsdk.export.int8_cpu` times FP32, S8S8 and U8S8
  per stage on this machine and records the fastest passing one as the stage's ``int8_cpu`` graph
  (what ONNX Runtime's CPU provider runs for ``precision="int8"``).
* **OpenVINO's graphs**: where openvino is installed, :mod:`jamsdk.export.int8_openvino` judges
  the accepted graphs again on OpenVINO (its own end-to-end PSNR and per-stage time) and records
  each stage's ``int8_openvino`` file.
* **Quality gates**: each candidate (the most expensive first) is quantized and accepted only if
  the end-to-end PSNR of the chain with it (and the stages accepted before it) against the FP32
  chain on the calibration frames stays ≥ ``min_psnr``; a stage that fails is retried with its
  larger FP32 island, and when that fails too it keeps its FP32 graph and the log and the manifest
  say so, with the numbers of every attempt. Also reported: each stage's own effect (the
  chain with only that stage in INT8) and the final chain on held-out frames of the clip.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from jamsdk._lazy import require
from jamsdk.errors import EngineError, InputError
from jamsdk.export.psnr import db_json, psnr

if TYPE_CHECKING:
    import onnx

    from jamsdk.export.calibration import CalibrationClip
    from jamsdk.export.int8_cpu import Timer

DEFAULT_MIN_PSNR = 35.0
#: per-frame stages worth quantizing, in the order the gates try them (most expensive first)
CANDIDATES = ("generator", "dense_motion", "region_predictor")
#: Conv node-name prefixes kept in FP32 inside a quantized stage, as alternatives the gates try in
#: order until one passes (see the module docstring)
_DM_HEADS = ("/dense_motion/mask/", "/dense_motion/occlusion/")
_DM_INPUT = ("/dense_motion/down/", "/dense_motion/hourglass/encoder/down_blocks.0/")
_RP_HEAD = ("/region_predictor/regions/",)
_RP_INPUT = ("/region_predictor/down/", "/region_predictor/predictor/encoder/down_blocks.0/")
_RP_ENC1 = ("/region_predictor/predictor/encoder/down_blocks.1/",)
FP32_CONVS: dict[str, tuple[tuple[str, ...], ...]] = {
    "generator": ((),),
    "dense_motion": (_DM_HEADS + _DM_INPUT, _DM_HEADS + _DM_INPUT + ("/dense_motion/hourglass/decoder/",)),
    "region_predictor": (_RP_HEAD, _RP_HEAD + _RP_INPUT, _RP_HEAD + _RP_INPUT + _RP_ENC1),
}
VARIANTS = ("s8s8", "u8s8")


class _Reader:
    """A ``CalibrationDataReader`` over recorded feeds (built lazily: the base class is onnxruntime's)."""

    def __new__(cls, feeds: Sequence[Mapping[str, np.ndarray]]):
        base = require("onnxruntime.quantization", "export").CalibrationDataReader

        class Reader(base):  # type: ignore[misc, valid-type]
            def __init__(self) -> None:
                self._it = iter(feeds)

            def get_next(self) -> dict[str, np.ndarray] | None:
                return dict(next(self._it, None) or {}) or None

        return Reader()


def quantize_stage(fp32: "str | os.PathLike[str] | onnx.ModelProto", stage: str,
                   feeds: Sequence[Mapping[str, np.ndarray]], variant: str = "s8s8",
                   fp32_convs: Sequence[str] | None = None) -> "onnx.ModelProto":
    """The Q/DQ graph of one stage, calibrated on ``feeds`` (the stage's inputs, call by call).

    Args:
        fp32: the stage's FP32 graph (file or proto).
        stage: its name (selects the first alternative of :data:`FP32_CONVS` unless ``fp32_convs`` is given).
        feeds: calibration inputs, e.g. recorded by :class:`~jamsdk.export.calibration.StageChain`.
        variant: ``s8s8`` (symmetric INT8, TensorRT's rules; ``<stage>.int8.onnx``) or ``u8s8``
            (ONNX Runtime's x86 form: UINT8 activations, 7-bit weights).
        fp32_convs: Conv node-name prefixes to leave in FP32.
    """
    if variant not in VARIANTS:
        raise InputError(f"variant: expected one of {VARIANTS}, got {variant!r}")
    if not feeds:
        raise InputError(f"{stage}: no calibration inputs")
    onnx = require("onnx")
    q = require("onnxruntime.quantization", "export")
    proto = onnx.load(os.fspath(fp32)) if isinstance(fp32, (str, os.PathLike)) else fp32
    prefixes = tuple(FP32_CONVS.get(stage, ((),))[0] if fp32_convs is None else fp32_convs)
    exclude = [n.name for n in proto.graph.node if n.op_type == "Conv" and n.name.startswith(prefixes)] \
        if prefixes else []
    symmetric = variant == "s8s8"
    extra = {"ActivationSymmetric": symmetric, "WeightSymmetric": True,
             # TensorRT dequantizes INT8 (not INT32) tensors: biases stay float, it fuses them itself
             "QuantizeBias": not symmetric}
    # Not "CalibMaxIntermediateOutputs": in onnxruntime 1.32 MinMax drops each full batch unused
    # (collect_data clears it without computing), and MinMax keeps only per-tensor min/max anyway.
    with tempfile.TemporaryDirectory(prefix="jamsdk-int8-") as tmp:
        src, dst = Path(tmp) / f"{stage}.onnx", Path(tmp) / f"{stage}.int8.onnx"
        onnx.save(proto, os.fspath(src))
        quiet = logging.root.manager.disable
        logging.disable(logging.WARNING)  # its "consider pre-processing" advice: the graphs are onnxsim'd already
        try:
            q.quantize_static(os.fspath(src), os.fspath(dst), _Reader(feeds), quant_format=q.QuantFormat.QDQ,
                              op_types_to_quantize=["Conv"], per_channel=True, reduce_range=not symmetric,
                              activation_type=q.QuantType.QInt8 if symmetric else q.QuantType.QUInt8,
                              weight_type=q.QuantType.QInt8, nodes_to_exclude=exclude,
                              calibrate_method=q.CalibrationMethod.MinMax, extra_options=extra)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises many types here
            raise EngineError(f"{stage}: ONNX Runtime quantization failed: {type(exc).__name__}: {exc}") from exc
        finally:
            logging.disable(quiet)
        out = onnx.load(os.fspath(dst))
    _drop_unused_domains(out)
    if not symmetric:
        from jamsdk.export.rewrite import float_readers_skip_qdq

        out, _ = float_readers_skip_qdq(out)
    return out


def _drop_unused_domains(proto: "onnx.ModelProto") -> None:
    """ONNX Runtime's quantizer declares com.microsoft even when no node uses it; TensorRT refuses it."""
    used = {n.domain for n in proto.graph.node} | {"", "ai.onnx"}
    keep = [o for o in proto.opset_import if o.domain in used]
    del proto.opset_import[:]
    proto.opset_import.extend(keep)


def conv_counts(proto: "onnx.ModelProto") -> tuple[int, int]:
    """``(quantized convs, all convs)``: a Conv is quantized when its weights come from a DequantizeLinear."""
    dq = {o for n in proto.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    return sum(len(n.input) > 1 and n.input[1] in dq for n in convs), len(convs)


@dataclass
class Int8Report:
    """What :func:`quantize_model` decided and measured (``summary()`` goes into the manifest)."""

    min_psnr: float
    variant: str
    clip: dict[str, Any]
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    psnr_calibration: float = float("nan")
    psnr_held_out: float = float("nan")
    seconds: float = 0.0
    #: ONNX Runtime CPU: stage → choice (jamsdk.export.int8_cpu), and the INT8 graphs chosen
    cpu: dict[str, Any] = field(default_factory=dict)
    cpu_graphs: dict[str, "onnx.ModelProto"] = field(default_factory=dict)
    cpu_psnr: dict[str, float] = field(default_factory=dict)
    cpu_threads: int | None = None
    #: OpenVINO (when installed): stage → "int8" | "fp32", and the numbers (jamsdk.export.int8_openvino)
    openvino_graphs: dict[str, str] = field(default_factory=dict)
    openvino: dict[str, Any] = field(default_factory=dict)
    #: what the batched INT8 graphs are made and judged with (jamsdk.export.int8_batched): each stage's
    #: recorded calibration inputs, the clip, and the FP32 chain's held-out predictions; not in the summary
    feeds: dict[str, list] = field(default_factory=dict, repr=False)
    fp32_files: dict[str, Any] = field(default_factory=dict, repr=False)
    calibration_clip: Any = field(default=None, repr=False)
    reference_held_out: Any = field(default=None, repr=False)

    @property
    def quantized(self) -> list[str]:
        return [s for s, r in self.stages.items() if r["int8"]]

    @property
    def fallback(self) -> dict[str, str]:
        return {s: r["reason"] for s, r in self.stages.items() if not r["int8"]}

    def summary_lines(self) -> list[str]:
        """The export log's closing lines: per target, which stages run INT8 and the end-to-end PSNR.

        One line per set of graphs the folder holds (TensorRT's ``int8`` files, ONNX Runtime's CPU
        choice, OpenVINO's choice), each naming every candidate stage with the form it got, so the
        summary never says INT8 where a later line chose FP32 for that target.
        """
        def listed(form_of: Callable[[str], str]) -> str:
            forms = {name: form_of(name) for name in self.stages}
            n = sum(f != "fp32" for f in forms.values())
            return f"{n} of {len(forms)} stage(s) INT8 (" + ", ".join(f"{k} {v}" for k, v in forms.items()) + ")"

        def db(pair: tuple[float, float]) -> str:
            return f"end to end vs FP32 {pair[0]:.1f} dB on the calibration frames, {pair[1]:.1f} dB held out" + (
                "" if pair[1] >= self.min_psnr else f" — BELOW --min-psnr {self.min_psnr:g} dB on held-out frames")

        trt = listed(lambda s: "int8" if self.stages[s]["int8"] else "fp32")
        lines = [f"int8: TensorRT's graphs (<stage>.int8.onnx): {trt}; {db((self.psnr_calibration, self.psnr_held_out))}"]
        if self.cpu:
            cpu = (self.cpu_psnr.get("calibration", float("nan")), self.cpu_psnr.get("held_out", float("nan")))
            lines.append(f"int8: ONNX Runtime on this CPU: "
                         f"{listed(lambda s: self.cpu[s].form if s in self.cpu else 'fp32')}; {db(cpu)}")
        if self.openvino:
            ov = self.openvino["psnr_db_end_to_end"]
            lines.append(f"int8: OpenVINO: {listed(lambda s: self.openvino_graphs.get(s, 'fp32'))}; "
                         + db((float(ov["calibration"]), float(ov["held_out"]))))
        return lines

    def summary(self) -> dict[str, Any]:
        return {"format": "QDQ", "variant": self.variant, "scheme": "symmetric INT8 (zero point 0), per-channel "
                "weights (axis 0), per-tensor activations, float biases; Conv only; MinMax calibration",
                "min_psnr_db": self.min_psnr, "calibration": self.clip, "quantized": self.quantized,
                "fp32_fallback": self.fallback, "stages": self.stages,
                "psnr_db_end_to_end": {"calibration": db_json(self.psnr_calibration),
                                       "held_out": db_json(self.psnr_held_out)},
                "held_out_ok": bool(self.psnr_held_out >= self.min_psnr), "seconds": round(self.seconds, 1),
                **({"cpu": self.cpu_summary()} if self.cpu else {}),
                **({"openvino": self.openvino} if self.openvino else {})}

    def cpu_summary(self) -> dict[str, Any]:
        from jamsdk.export.int8_cpu import SPEED_MARGIN
        from jamsdk.runtime.sysinfo import cpu_model

        return {"runtime": "onnxruntime CPUExecutionProvider", "cpu": cpu_model(), "threads": self.cpu_threads,
                "rule": f"per stage the fastest of fp32/s8s8/u8s8 passing --min-psnr; INT8 only when the median of its "
                        f"per-round time ratios to FP32 is ≤ {SPEED_MARGIN:g}", "graphs": {s: c.form for s, c in self.cpu.items()},
                "stages": {s: c.summary() for s, c in self.cpu.items()},
                "psnr_db_end_to_end": {k: db_json(v) for k, v in self.cpu_psnr.items()}}


class _EndToEnd:
    """End-to-end PSNR against the FP32 chain with some stages' graphs swapped in.

    The gates, the CPU choice and the final reports ask for the same chains more than once (the
    first candidate alone and "with the stages before"; the CPU chain while it equals the accepted
    one): each chain runs once per frame set. An empty swap is the FP32 chain itself (inf dB).
    """

    def __init__(self, fp32_files: Mapping[str, Any], clip: "CalibrationClip", ref_cal: np.ndarray,
                 ref_held: np.ndarray, threads: int | None):
        self.fp32_files, self.clip, self.threads = fp32_files, clip, threads
        self.refs = {False: ref_cal, True: ref_held}
        self._memo: dict[tuple, tuple[list, float]] = {}  # the graphs are kept so their ids stay theirs

    def __call__(self, changed: Mapping[str, Any], held_out: bool = False) -> float:
        from jamsdk.export.calibration import StageChain

        if not changed:
            return float("inf")
        key = (held_out, tuple(sorted((name, id(graph)) for name, graph in changed.items())))
        if key not in self._memo:
            frames = self.clip.held_out if held_out else self.clip.calibration
            out = StageChain({**self.fp32_files, **changed}, self.threads).animate(self.clip.source, frames)
            self._memo[key] = (list(changed.values()), psnr(out, self.refs[held_out]))
        return self._memo[key][1]


def quantize_model(fp32_files: Mapping[str, "str | os.PathLike[str] | onnx.ModelProto"], clip: "CalibrationClip",
                   min_psnr: float = DEFAULT_MIN_PSNR, variant: str = "s8s8",
                   candidates: Sequence[str] = CANDIDATES, threads: int | None = None,
                   log: Callable[[str], None] = print, fp32_convs: Mapping[str, Sequence[str]] | None = None,
                   cpu: bool = True, timer: "Timer | None" = None, openvino: bool | None = None,
                   fp32_timed: Mapping[str, Any] | None = None) -> tuple[dict[str, "onnx.ModelProto"], Int8Report]:
    """Calibrate, quantize and gate the stages of one model; ``({stage: int8 proto}, report)``.

    Only accepted stages get a proto; the others keep their FP32 graph (``report.fallback``
    says why). ``fp32_files`` maps every stage the chain needs to its FP32 graph. With ``cpu``,
    also choose each candidate's ONNX Runtime CPU graph by speed (``report.cpu``, ``report.cpu_graphs``;
    :mod:`jamsdk.export.int8_cpu`), timed by ``timer`` (default: :func:`~jamsdk.export.int8_cpu.time_graphs`),
    and, where openvino is installed (``openvino`` None) or when asked (True), judge and time the
    accepted graphs on OpenVINO (``report.openvino``; :mod:`jamsdk.export.int8_openvino`). The speed
    gates time INT8 against ``fp32_timed`` (stage → the FP32 graph that runs when the stage runs FP32,
    where it is not the one quantized; default ``fp32_files``).
    """
    from jamsdk.export.calibration import StageChain

    if not isinstance(min_psnr, (int, float)) or isinstance(min_psnr, bool) or not math.isfinite(min_psnr):
        raise InputError(f"--min-psnr: expected a number of dB, got {min_psnr!r}")
    start = time.perf_counter()
    chain = StageChain(fp32_files, threads)
    record: dict[str, list] = {}
    ref_cal = chain.animate(clip.source, clip.calibration, record)
    ref_held = chain.animate(clip.source, clip.held_out)
    report = Int8Report(float(min_psnr), variant,
                        {"clip": os.path.basename(clip.path), "source": clip.source_from,
                         "calibration_frames": len(clip.calibration), "held_out_frames": len(clip.held_out)})
    report.feeds, report.fp32_files = record, dict(fp32_files)
    report.calibration_clip, report.reference_held_out = clip, ref_held
    judge = _EndToEnd(fp32_files, clip, ref_cal, ref_held, threads)
    log(f"  int8: calibrating on {len(clip.calibration)} frames of {os.path.basename(clip.path)} "
        f"(source: {clip.source_from}); {len(clip.held_out)} frames held out; gate: end to end ≥ {min_psnr:g} dB")
    accepted: dict[str, Any] = {}
    for name in candidates:
        if name not in fp32_files:
            continue
        tries = [tuple(fp32_convs[name])] if fp32_convs and name in fp32_convs else list(FP32_CONVS.get(name, ((),)))
        attempts: list[dict[str, Any]] = []
        for islands in tries:  # from the most INT8 to the least
            t0 = time.perf_counter()
            proto = quantize_stage(fp32_files[name], name, record[name], variant, islands)
            n_q, n_all = conv_counts(proto)
            own, cumulative = judge({name: proto}), judge({**accepted, name: proto})
            ok = cumulative >= min_psnr
            attempts.append({"fp32_convs": list(islands), "convs_int8": n_q, "convs": n_all,
                             "psnr_db_stage_alone": db_json(own), "psnr_db_with_previous": db_json(cumulative)})
            log(f"  int8: {name:18s} {n_q}/{n_all} convs INT8; end to end alone {own:.1f} dB, with the stages "
                f"before {cumulative:.1f} dB → " + ("INT8" if ok else "too far from FP32")
                + f" [{time.perf_counter() - t0:.1f}s]")
            if ok:
                accepted[name] = proto
                break
        reason = "" if ok else (f"end-to-end PSNR {cumulative:.1f} dB with it in INT8 < --min-psnr {min_psnr:g} dB "
                                f"(alone: {own:.1f} dB"
                                + (f"; {len(tries)} sets of FP32 convs tried" if len(tries) > 1 else "") + ")")
        report.stages[name] = {"int8": ok, **attempts[-1], "reason": reason, "attempts": attempts}
        if not ok:
            log(f"  int8: {name:18s} left FP32: {reason}")
    timed = {**fp32_files, **(fp32_timed or {})}
    if cpu:
        _choose_cpu_graphs(fp32_files, accepted, record, judge, report, candidates, threads, log, timer, timed)
    from jamsdk.export import int8_openvino

    if openvino or (openvino is None and cpu and int8_openvino.available()):
        report.openvino_graphs, report.openvino = int8_openvino.choose_openvino_graphs(
            fp32_files, accepted, record, clip, (ref_cal, ref_held), report.min_psnr, candidates, threads, log,
            timed)
    report.psnr_calibration, report.psnr_held_out = judge(accepted), judge(accepted, held_out=True)
    report.seconds = time.perf_counter() - start
    for line in report.summary_lines():
        log(f"  {line}")
    return accepted, report


def _choose_cpu_graphs(fp32_files, accepted, record, judge: _EndToEnd, report: Int8Report,
                       candidates: Sequence[str], threads: int | None, log: Callable[[str], None],
                       timer: "Timer | None", fp32_timed: Mapping[str, Any]) -> None:
    """Per candidate, ONNX Runtime's CPU graph: the fastest of FP32/S8S8/U8S8 that passes (int8_cpu)."""
    from jamsdk.export.int8_cpu import choose, time_graphs

    onnx = require("onnx")
    chosen: dict[str, Any] = {}  # stage → INT8 proto on the CPU chain
    report.cpu_threads = threads
    for name in candidates:
        if name not in fp32_files or name not in report.stages:
            continue
        forms = {"s8s8": accepted[name]} if name in accepted else {}
        forms["u8s8"] = quantize_stage(fp32_files[name], name, record[name], "u8s8",
                                       report.stages[name]["fp32_convs"])
        fp32 = fp32_timed[name]  # the FP32 graph the stage runs when it stays FP32
        if not hasattr(fp32, "SerializeToString"):
            fp32 = onnx.load(os.fspath(fp32))
        c = choose(fp32, forms, lambda proto, name=name: judge({**chosen, name: proto}), record[name],
                   report.min_psnr, threads, timer or time_graphs)
        report.cpu[name] = c
        if c.form != "fp32":
            chosen[name] = forms[c.form]
            if c.form != "s8s8":
                report.cpu_graphs[name] = forms[c.form]
        times = ", ".join(f"{f} {v * 1e3:.1f} ms" + (f" ({c.verdicts[f].text()})" if f in c.verdicts else "")
                          for f, v in c.seconds.items())
        log(f"  int8: {name:18s} on this CPU (ONNX Runtime): {times or 'only FP32 passes'} → {c.form}")
    report.cpu_psnr = {"calibration": judge(chosen), "held_out": judge(chosen, held_out=True)}
