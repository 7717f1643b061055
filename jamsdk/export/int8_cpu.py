"""The INT8 graphs ONNX Runtime's CPU provider runs: per stage, the fastest that passes the gates.

TensorRT gets one scheme, symmetric S8S8 (``<stage>.int8.onnx``, :mod:`jamsdk.export.int8`), and
picks its own kernels when the engine is built. ONNX Runtime on a CPU does not: what is fastest
depends on the CPU and on which Q/DQ groups its graph optimizer fuses into ``QLinearConv``. Measured
on jam-256 (docs/export.md, AVX2 without VNNI): the generator runs at 0.55× its FP32 time in
S8S8, dense motion at 0.95× in S8S8 but 0.71× in U8S8 (ORT converts an INT8 Q→DQ pair to UINT8
only where the pair has one consumer, so S8S8 leaves every Conv whose input is shared in FP32
between a DequantizeLinear and a QuantizeLinear), and the region predictor is *slower* in any INT8
(1.4–1.6×: small convolutions, where the layout transposes INT8 kernels need cost more than they save).

So each candidate stage is timed here, on the exporting machine, in each form that passes the
quality gate: FP32, the S8S8 graph the gates accepted, and ONNX Runtime's x86 form (UINT8
activations, 7-bit weights, see :data:`jamsdk.export.int8.VARIANTS`). The fastest is kept for the
CPU when it beats FP32 by :data:`SPEED_MARGIN`, otherwise the stage runs FP32 on the CPU. The choice
goes into the manifest as each stage's ``int8_cpu`` file (which may be its ``int8`` or its FP32 file)
with the times; ``<stage>.int8.onnx`` (TensorRT's) is unchanged. Export on the CPU that will run
the model: the times, and so the choice, are that machine's.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from jamsdk._lazy import require

if TYPE_CHECKING:
    import onnx

#: an INT8 form is kept for the CPU only if its time is at most this fraction of the FP32 graph's
#: (a few per cent of a median is within this machine's run-to-run noise)
SPEED_MARGIN = 0.95
FORMS = ("fp32", "s8s8", "u8s8")

#: ``timer(graphs, feeds, threads) -> {form: median seconds per call}``
Timer = Callable[[Mapping[str, "onnx.ModelProto"], Sequence[Mapping[str, np.ndarray]], "int | None"],
                 Mapping[str, float]]


def time_graphs(graphs: Mapping[str, "onnx.ModelProto"], feeds: Sequence[Mapping[str, np.ndarray]],
                threads: int | None = None, rounds: int = 5, calls: int = 3) -> dict[str, float]:
    """Median seconds per call of each graph on the same ``feeds`` (CPU provider), interleaved.

    Each graph runs one untimed call, then ``rounds`` rounds of ``calls`` feeds each; the order of
    the graphs is reversed every other round so a busy phase of the machine hits all of them.
    """
    from jamsdk.runtime.backends.onnxruntime import session_options

    ort = require("onnxruntime")
    sessions = {}
    for form, proto in graphs.items():
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = int(threads)
        session_options(opts)  # as the Animator runs them: no spinning pool stealing the next one's cores
        sessions[form] = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    calls_of = {form: (lambda feed, s=s: s.run(None, feed)) for form, s in sessions.items()}
    return interleaved_medians(calls_of, [dict(f) for f in feeds[:calls]], rounds)


def interleaved_medians(calls: Mapping[str, Callable[[Any], Any]], feeds: Sequence[Any], rounds: int) -> dict[str, float]:
    """Median seconds per call of each of ``calls`` (one runtime's graphs): one untimed call each on the
    first feed, then ``rounds`` rounds of every feed, the order reversed every other round."""
    for call in calls.values():
        call(feeds[0])
    times: dict[str, list[float]] = {form: [] for form in calls}
    order = list(calls)
    for r in range(rounds):
        for form in order if r % 2 == 0 else order[::-1]:
            for feed in feeds:
                t0 = time.perf_counter()
                calls[form](feed)
                times[form].append(time.perf_counter() - t0)
    return {form: statistics.median(ts) for form, ts in times.items()}


@dataclass
class CpuChoice:
    """The CPU graph chosen for one stage, and why."""

    form: str  # "fp32", "s8s8" or "u8s8"
    seconds: dict[str, float] = field(default_factory=dict)  # median per call, per form timed
    psnr_db: dict[str, float] = field(default_factory=dict)  # end to end with the CPU chain so far
    rejected: dict[str, str] = field(default_factory=dict)  # form → why it was not a candidate

    def summary(self) -> dict[str, Any]:
        fp32 = self.seconds.get("fp32")
        return {"graph": self.form,
                "ms": {k: round(v * 1e3, 2) for k, v in self.seconds.items()},
                "over_fp32": {k: round(v / fp32, 3) for k, v in self.seconds.items()} if fp32 else {},
                "psnr_db_end_to_end": {k: (round(v, 2) if math.isfinite(v) else "inf")
                                       for k, v in self.psnr_db.items()},
                "rejected": dict(self.rejected)}


def choose(fp32: "onnx.ModelProto", int8: Mapping[str, "onnx.ModelProto"],
           chain_psnr: Callable[["onnx.ModelProto"], float], feeds: Sequence[Mapping[str, np.ndarray]],
           min_psnr: float, threads: int | None = None, timer: Timer = time_graphs) -> CpuChoice:
    """Pick a stage's CPU graph among its FP32 graph and the INT8 forms in ``int8`` (form → graph).

    ``chain_psnr(graph)`` is the end-to-end PSNR against FP32 with this stage's graph swapped in
    (and the CPU choices already made): a form below ``min_psnr`` is not timed.
    """
    choice = CpuChoice("fp32")
    timed: dict[str, "onnx.ModelProto"] = {"fp32": fp32}
    for form, proto in int8.items():
        db = chain_psnr(proto)
        choice.psnr_db[form] = db
        if db >= min_psnr:
            timed[form] = proto
        else:
            choice.rejected[form] = f"end to end {db:.1f} dB < {min_psnr:g} dB"
    choice.seconds = dict(timer(timed, feeds, threads)) if len(timed) > 1 else {}
    best = min((f for f in timed if f != "fp32"), key=lambda f: choice.seconds[f], default=None)
    if best is not None:
        if choice.seconds[best] <= SPEED_MARGIN * choice.seconds["fp32"]:
            choice.form = best
        for form in timed:
            if form not in ("fp32", choice.form):
                ratio = choice.seconds[form] / choice.seconds["fp32"]
                choice.rejected[form] = (f"{ratio:.2f}× FP32's time" + (
                    f" (kept only at ≤ {SPEED_MARGIN:g}×)" if ratio > SPEED_MARGIN else
                    f", {choice.form} faster"))
    return choice
