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
activations, 7-bit weights, FP32 readers reading FP32, see :data:`jamsdk.export.int8.VARIANTS`).
The choice goes into the manifest as each stage's ``int8_cpu`` file (which may be its ``int8`` or
its FP32 file) with the times; ``<stage>.int8.onnx`` (TensorRT's) is unchanged. Export on the CPU
that will run the model: the times, and so the choice, are that machine's.

**The rule, made to give the same answer twice** (:func:`speed_verdict`). Each round times every
form back to back (the order reversed every other round), so a busy phase of a shared machine slows
all of them alike, and the verdict reads the *per-round ratios* to FP32, not a ratio of medians
taken at different moments. An INT8 form is kept only when the median of its per-round ratios is
at most :data:`SPEED_MARGIN`; a median within :data:`CLOSE_CALL` of the margin is timed again with
as many rounds and decided on all of them. The log and the manifest give the median and the range
of the per-round ratios with the number of rounds, so a choice can be checked. Before, one median
per form against 0.95 flipped dense motion between FP32 and INT8 from one export to the next on
the same machine.
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

#: an INT8 form is kept only if the median of its per-round time ratios to FP32 is at most this
#: (the per-round ratios of one form spread over ±0.05 on a loaded 2-core machine)
SPEED_MARGIN = 0.90
#: a median ratio this close to the margin, either side, is timed again before it is decided
CLOSE_CALL = 0.05
#: interleaved rounds per timing (each round: every form on every feed)
ROUNDS = 7
FORMS = ("fp32", "s8s8", "u8s8")

#: ``timer(graphs, feeds, threads) -> {form: [seconds per call, one median per round]}``
Timer = Callable[[Mapping[str, "onnx.ModelProto"], Sequence[Mapping[str, np.ndarray]], "int | None"],
                 Mapping[str, Sequence[float]]]


def time_graphs(graphs: Mapping[str, "onnx.ModelProto"], feeds: Sequence[Mapping[str, np.ndarray]],
                threads: int | None = None, rounds: int = ROUNDS, calls: int = 3) -> dict[str, list[float]]:
    """Seconds per call of each graph on the same ``feeds`` (CPU provider), one median per round.

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
    return interleaved_rounds(calls_of, [dict(f) for f in feeds[:calls]], rounds)


def interleaved_rounds(calls: Mapping[str, Callable[[Any], Any]], feeds: Sequence[Any],
                       rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each of ``calls`` (one runtime's graphs), the median of each round: one
    untimed call each on the first feed, then ``rounds`` rounds of every feed, the order reversed
    every other round."""
    for call in calls.values():
        call(feeds[0])
    times: dict[str, list[float]] = {form: [] for form in calls}
    order = list(calls)
    for r in range(rounds):
        for form in order if r % 2 == 0 else order[::-1]:
            this = []
            for feed in feeds:
                t0 = time.perf_counter()
                calls[form](feed)
                this.append(time.perf_counter() - t0)
            times[form].append(statistics.median(this))
    return times


@dataclass(frozen=True)
class Verdict:
    """One INT8 form against FP32: its per-round time ratios and whether it is kept."""

    form: str
    ratio: float  # median of the per-round ratios
    low: float
    high: float
    rounds: int
    keep: bool

    def text(self) -> str:
        return f"{self.ratio:.2f}× FP32 [{self.low:.2f}–{self.high:.2f} over {self.rounds} rounds]"

    def summary(self) -> dict[str, Any]:
        return {"median": round(self.ratio, 3), "min": round(self.low, 3), "max": round(self.high, 3),
                "rounds": self.rounds}


def round_ratios(times: Mapping[str, Sequence[float]], form: str) -> list[float]:
    """``form``'s time over FP32's, round by round (both timed in the same round)."""
    return [t / f for t, f in zip(times[form], times["fp32"], strict=True)]


def speed_verdict(times: Mapping[str, Sequence[float]], form: str) -> Verdict:
    """Keep ``form`` when the median of its per-round ratios to FP32 is ≤ :data:`SPEED_MARGIN`."""
    ratios = round_ratios(times, form)
    median = statistics.median(ratios)
    return Verdict(form, median, min(ratios), max(ratios), len(ratios), median <= SPEED_MARGIN)


def timed_with_retry(timer: Callable[[], Mapping[str, Sequence[float]]],
                     forms: Sequence[str]) -> dict[str, list[float]]:
    """``timer()``'s rounds, and as many again when one of ``forms`` is within :data:`CLOSE_CALL` of the margin."""
    times = {k: list(v) for k, v in timer().items()}
    if any(abs(speed_verdict(times, f).ratio - SPEED_MARGIN) <= CLOSE_CALL for f in forms):
        more = timer()
        times = {k: v + list(more[k]) for k, v in times.items()}
    return times


@dataclass
class CpuChoice:
    """The CPU graph chosen for one stage, and why."""

    form: str  # "fp32", "s8s8" or "u8s8"
    seconds: dict[str, float] = field(default_factory=dict)  # median per call, per form timed
    psnr_db: dict[str, float] = field(default_factory=dict)  # end to end with the CPU chain so far
    rejected: dict[str, str] = field(default_factory=dict)  # form → why it was not a candidate
    verdicts: dict[str, Verdict] = field(default_factory=dict)  # INT8 form timed → its per-round ratios

    def summary(self) -> dict[str, Any]:
        return {"graph": self.form,
                "ms": {k: round(v * 1e3, 2) for k, v in self.seconds.items()},
                "over_fp32": {k: round(v.ratio, 3) for k, v in self.verdicts.items()},
                "over_fp32_rounds": {k: v.summary() for k, v in self.verdicts.items()},
                "psnr_db_end_to_end": {k: (round(v, 2) if math.isfinite(v) else "inf")
                                       for k, v in self.psnr_db.items()},
                "rejected": dict(self.rejected)}


def choose(fp32: "onnx.ModelProto", int8: Mapping[str, "onnx.ModelProto"],
           chain_psnr: Callable[["onnx.ModelProto"], float], feeds: Sequence[Mapping[str, np.ndarray]],
           min_psnr: float, threads: int | None = None, timer: Timer = time_graphs) -> CpuChoice:
    """Pick a stage's CPU graph among its FP32 graph and the INT8 forms in ``int8`` (form → graph).

    ``chain_psnr(graph)`` is the end-to-end PSNR against FP32 with this stage's graph swapped in
    (and the CPU choices already made): a form below ``min_psnr`` is not timed. Of the forms timed,
    the one with the lowest median per-round ratio is kept when :func:`speed_verdict` keeps it.
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
    if len(timed) == 1:
        return choice
    forms = [f for f in timed if f != "fp32"]
    times = timed_with_retry(lambda: timer(timed, feeds, threads), forms)
    choice.seconds = {f: statistics.median(v) for f, v in times.items()}
    choice.verdicts = {f: speed_verdict(times, f) for f in forms}
    best = min(forms, key=lambda f: choice.verdicts[f].ratio)
    if choice.verdicts[best].keep:
        choice.form = best
    for form in forms:
        if form != choice.form:
            v = choice.verdicts[form]
            choice.rejected[form] = v.text() + (f", {choice.form} faster" if v.keep
                                                else f" (kept only at ≤ {SPEED_MARGIN:g}×)")
    return choice
