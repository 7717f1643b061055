"""The INT8 graphs OpenVINO runs: the export's Q/DQ graphs judged on OpenVINO itself.

The quality gates of :mod:`jamsdk.export.int8` run the chain on ONNX Runtime. OpenVINO reads the
same symmetric Q/DQ ``<stage>.int8.onnx`` files but fuses them into its own INT8 kernels, so its
numbers are its own: when openvino is installed, each stage the gates accepted is judged again
here on OpenVINO (end-to-end PSNR of the OpenVINO chain against the FP32 reference, with the
stages chosen before it in INT8) and timed against its FP32 graph on the same recorded inputs.
A stage keeps its INT8 graph on OpenVINO when it passes ``--min-psnr`` and the speed rule of
:func:`~jamsdk.export.int8_cpu.speed_verdict` keeps it (median per-round time ratio to FP32 at
most :data:`~jamsdk.export.int8_cpu.SPEED_MARGIN`); otherwise OpenVINO runs its FP32 graph. The choice is each stage's ``int8_openvino`` file, with the numbers in
``export.int8.openvino``. Export on the CPU that will run the model: times depend on its
instruction set (VNNI above all).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from jamsdk.export.calibration import StageChain
from jamsdk.export.psnr import db_json, psnr

if TYPE_CHECKING:
    import onnx


def available() -> bool:
    """Whether openvino is installed (the export then judges its INT8 graphs on it too)."""
    return importlib.util.find_spec("openvino") is not None


class _Graphs:
    """Temporary ``.onnx`` files for in-memory graphs (OpenVINO compiles files; the folder goes at close)."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="jamsdk-int8-ov-")
        self._files: dict[int, tuple[Any, Path]] = {}  # id → (proto kept alive, file)

    def path(self, graph: Any) -> str:
        if isinstance(graph, (str, os.PathLike)):
            return os.fspath(graph)
        if id(graph) not in self._files:
            path = Path(self._dir.name) / f"g{len(self._files)}.onnx"
            path.write_bytes(graph.SerializeToString())
            self._files[id(graph)] = (graph, path)
        return os.fspath(self._files[id(graph)][1])

    def close(self) -> None:
        self._dir.cleanup()


def compile_graph(path: str, threads: int | None) -> Any:
    """An infer request for the graph at ``path``, compiled as the OpenVINO backend compiles (no cache)."""
    from jamsdk.runtime.backends.openvino import compile_properties, core

    return core().compile_model(path, "CPU", compile_properties(threads)).create_infer_request()


class OpenVINOChain(StageChain):
    """:class:`~jamsdk.export.calibration.StageChain` on OpenVINO (same calls, same standard-mode chain)."""

    def __init__(self, graphs: Mapping[str, Any], threads: int | None = None, files: _Graphs | None = None):
        self.files = files or _Graphs()
        super().__init__(graphs, threads)

    def set(self, stage: str, graph: Any) -> None:
        self.sessions[stage] = compile_graph(self.files.path(graph), self.threads)

    def run(self, stage: str, feeds: Mapping[str, np.ndarray],
            record: dict[str, list] | None = None) -> dict[str, np.ndarray]:
        request = self.sessions[stage]
        compiled = request.get_compiled_model()
        feeds = {p.get_any_name(): np.ascontiguousarray(feeds[p.get_any_name()]) for p in compiled.inputs}
        if record is not None:
            record.setdefault(stage, []).append(feeds)
        return {p.get_any_name(): v for p, v in request.infer(feeds).items()}


def time_openvino(paths: Mapping[str, str], feeds: Sequence[Mapping[str, np.ndarray]], threads: int | None = None,
                  rounds: int | None = None, calls: int = 3) -> dict[str, list[float]]:
    """Seconds per call of each graph on OpenVINO, one median per round, as :func:`~jamsdk.export.int8_cpu.time_graphs`."""
    from jamsdk.export.int8_cpu import ROUNDS, interleaved_rounds

    requests = {form: compile_graph(path, threads).infer for form, path in paths.items()}
    return interleaved_rounds(requests, [{k: np.ascontiguousarray(v) for k, v in f.items()} for f in feeds[:calls]],
                              rounds or ROUNDS)


def choose_openvino_graphs(fp32_files: Mapping[str, Any], accepted: Mapping[str, "onnx.ModelProto"],
                           record: Mapping[str, list], clip: Any, refs: tuple[np.ndarray, np.ndarray],
                           min_psnr: float, candidates: Sequence[str], threads: int | None,
                           log: Callable[[str], None] = print, fp32_timed: Mapping[str, Any] | None = None,
                           ) -> tuple[dict[str, str], dict[str, Any]]:
    """Per accepted stage, OpenVINO's INT8 choice: ``({stage: "int8" | "fp32"}, summary for the manifest)``.

    ``refs`` are the FP32 chain's predictions on the calibration and held-out frames (the gates'
    reference); ``record`` the stages' recorded inputs (timing feeds); ``fp32_timed`` the FP32 graphs
    INT8 is timed against (default ``fp32_files``).
    """
    from jamsdk.export.int8_cpu import SPEED_MARGIN, speed_verdict, timed_with_retry
    from jamsdk.runtime.backends.openvino import import_openvino
    from jamsdk.runtime.sysinfo import cpu_flags, cpu_model

    files = _Graphs()
    try:
        chain = OpenVINOChain(fp32_files, threads, files)
        current = dict(fp32_files)  # what each stage of the chain is compiled from now
        memo: dict[tuple, float] = {}

        def judge(graphs: Mapping[str, Any], held_out: bool = False) -> float:
            key = (held_out, tuple(sorted((n, id(g)) for n, g in graphs.items())))
            if key not in memo:
                for name in fp32_files:
                    want = graphs.get(name, fp32_files[name])
                    if current[name] is not want:  # compiling a jam-256 graph takes seconds
                        chain.set(name, want)
                        current[name] = want
                frames = clip.held_out if held_out else clip.calibration
                memo[key] = psnr(chain.animate(clip.source, frames), refs[held_out])
            return memo[key]

        chosen: dict[str, Any] = {}
        stages: dict[str, Any] = {}
        graphs = {name: "fp32" for name in fp32_files}
        for name in candidates:
            if name not in accepted:
                continue
            db = judge({**chosen, name: accepted[name]})
            paths = {"fp32": files.path((fp32_timed or fp32_files)[name]), "int8": files.path(accepted[name])}
            times = timed_with_retry(lambda paths=paths, name=name: time_openvino(paths, record[name], threads),
                                     ["int8"])
            seconds = {k: float(np.median(v)) for k, v in times.items()}
            verdict = speed_verdict(times, "int8")
            ok = db >= min_psnr and verdict.keep
            if ok:
                chosen[name] = accepted[name]
                graphs[name] = "int8"
            why = "" if ok else (f"end to end {db:.1f} dB < {min_psnr:g} dB" if db < min_psnr
                                 else f"{verdict.text()} (kept only at ≤ {SPEED_MARGIN:g}×)")
            stages[name] = {"graph": graphs[name], "ms": {k: round(v * 1e3, 2) for k, v in seconds.items()},
                            "over_fp32": round(verdict.ratio, 3), "over_fp32_rounds": verdict.summary(),
                            "psnr_db_end_to_end": db_json(db), "rejected": why}
            log(f"  int8: {name:18s} on OpenVINO: fp32 {seconds['fp32'] * 1e3:.1f} ms, int8 "
                f"{seconds['int8'] * 1e3:.1f} ms ({verdict.text()}), end to end {db:.1f} dB → {graphs[name]}")
        cal, held = judge(chosen), judge(chosen, held_out=True)
    finally:
        files.close()
    log(f"  int8: on OpenVINO, end to end vs FP32: {cal:.1f} dB on the calibration frames, {held:.1f} dB held out")
    summary = {"runtime": f"openvino {import_openvino().__version__.split('-')[0]} CPU", "cpu": cpu_model(),
               "cpu_flags": cpu_flags(), "threads": threads,
               "rule": f"per stage the export's S8S8 graph when the OpenVINO chain stays ≥ --min-psnr and the median "
                       f"of its per-round time ratios to FP32 on OpenVINO is ≤ {SPEED_MARGIN:g}, else FP32",
               "graphs": graphs, "stages": stages,
               "psnr_db_end_to_end": {"calibration": db_json(cal), "held_out": db_json(held)},
               "held_out_ok": bool(held >= min_psnr)}
    return graphs, summary
