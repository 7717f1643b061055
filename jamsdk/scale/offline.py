"""Offline animation jobs on Ray Data: ``jamsdk batch --jobs JOBS --out-dir DIR``.

Each row of JOBS (:mod:`jamsdk.scale.jobs`) animates one picture with one driving video into one
output file. Rows become a Ray Data dataset (one block per row, so any idle actor takes the next
row) mapped by :class:`RowAnimator` actors (``map_batches`` with a callable class and
``concurrency=N``): each actor opens the model once, animates whole rows with
:meth:`StreamBatch.animate_clip <jamsdk.runtime.batch.StreamBatch.animate_clip>` (several frames
of a clip per stage call when the folder has batched graphs), writes each output atomically, and
keeps an LRU cache of encoded pictures so a popular photo is encoded once per actor.

A failed row never stops the job: the actor catches the error and returns it with the row.
Rows whose output already exists are skipped before anything starts (re-running resumes a job).
"""

from __future__ import annotations

import os
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from jamsdk.errors import InputError, JamError
from jamsdk.scale._ray import init_ray, require_ray
from jamsdk.scale.jobs import Row, read_jobs

DEFAULT_FPS = 25.0


@dataclass
class JobSummary:
    """What a job did: rows done, skipped (output existed) and failed (with errors), frames/s."""

    rows: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    frames: int = 0
    seconds: float = 0.0
    actors: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "done": self.done, "skipped": self.skipped, "failed": self.failed,
                "frames": self.frames, "seconds": round(self.seconds, 3), "frames_per_s": round(self.frames_per_s, 3),
                "actors": self.actors, "results": self.results}


class RowAnimator:
    """A Ray Data actor: the model opened once, whole rows animated, encoded pictures cached.

    Args:
        model_dir: the exported model folder (readable by the worker).
        backend, precision, threads: as for :class:`~jamsdk.runtime.batch.StreamBatch`.
        cache_size: encoded pictures kept per actor (least recently used dropped first).
    """

    def __init__(self, model_dir: str, backend: str = "auto", precision: str = "fp32", threads: int | None = None,
                 cache_size: int = 64):
        self.model_dir, self.backend, self.precision, self.threads = model_dir, backend, precision, threads
        self.cache_size = cache_size
        self._batches: dict[str, Any] = {}
        self._sources: OrderedDict[tuple, Any] = OrderedDict()
        self.encoded = 0

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        keys = list(batch)
        rows = [{k: batch[k][i] for k in keys} for i in range(len(batch[keys[0]]))]
        results = [self.animate_row(row) for row in rows]
        return {k: [r[k] for r in results] for k in results[0]}

    def animate_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """Animate one row into its ``out`` (atomically); errors come back in the result, never raised."""
        start = time.perf_counter()
        result = {"index": int(row["index"]), "out": str(row["out"]), "status": "done", "frames": 0,
                  "seconds": 0.0, "error": "", "source_cached": False, "pid": os.getpid()}
        try:
            from jamsdk.video import iter_frames, probe, write_video

            sb = self._batch(str(row["mode"]))
            state, result["source_cached"] = self._source(sb, str(row["source"]))
            info = probe(str(row["driving"]))
            frames = iter_frames(str(row["driving"]))
            result["frames"] = write_video(str(row["out"]), sb.animate_clip(state, frames),
                                           fps=float(info.fps or DEFAULT_FPS))
        except Exception as exc:  # noqa: BLE001 - a row's failure is data for the report, not a crash
            kind = "" if isinstance(exc, JamError) else f"{type(exc).__name__}: "
            result.update(status="failed", error=f"row {row['index']}: {kind}{exc}")
        result["seconds"] = time.perf_counter() - start
        return result

    def _batch(self, mode: str) -> Any:
        if mode not in self._batches:
            from jamsdk.runtime.batch import StreamBatch

            self._batches[mode] = StreamBatch(self.model_dir, backend=self.backend, mode=mode,
                                              precision=self.precision, threads=self.threads)
        return self._batches[mode]

    def _source(self, sb: Any, path: str) -> tuple[Any, bool]:
        from jamsdk.video import read_image

        try:
            st = os.stat(path)
        except OSError as exc:
            raise InputError(f"source {path}: {exc.strerror or exc}") from None
        key = (os.path.realpath(path), st.st_mtime_ns, st.st_size)
        if key in self._sources:
            self._sources.move_to_end(key)
            return self._sources[key], True
        # Encoded pictures do not depend on the mode: any StreamBatch of this model encodes them.
        state = sb.encode(read_image(path))
        self.encoded += 1
        self._sources[key] = state
        while len(self._sources) > self.cache_size:
            self._sources.popitem(last=False)
        return state, False


def run_job(jobs: str | os.PathLike[str], out_dir: str | os.PathLike[str], model_dir: str | os.PathLike[str], *,
            ray_address: str | None = None, actors: int = 1, gpus_per_actor: float = 0.0,
            cpus_per_actor: float = 1.0, backend: str = "auto", precision: str = "fp32", threads: int | None = None,
            log: Callable[[str], None] | None = None) -> JobSummary:
    """Animate every row of ``jobs`` into ``out_dir`` on Ray (local unless ``ray_address``).

    Args:
        jobs: the JOBS file (CSV or JSONL, see :mod:`jamsdk.scale.jobs`).
        out_dir: where outputs go (rows name files inside it).
        model_dir: the exported model folder (a path every worker can read).
        ray_address: a Ray cluster (``ray://host:10001`` or ``auto``); None starts a local Ray.
        actors: how many model-holding actors animate rows in parallel.
        gpus_per_actor: GPUs each actor reserves (0: CPU; TensorRT is used when the folder has engines).
        cpus_per_actor: CPUs each actor reserves.
        backend, precision, threads: as for :class:`~jamsdk.runtime.batch.StreamBatch`.
        log: progress lines (None: quiet).

    Returns:
        The :class:`JobSummary`; failed rows carry their error in ``results``.
    """
    for name, value, low in (("--actors", actors, 1), ("--gpus-per-actor", gpus_per_actor, 0),
                             ("cpus_per_actor", cpus_per_actor, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
            raise InputError(f"{name}: expected a number ≥ {low}, got {value!r}")
    out_dir = Path(out_dir)
    rows = read_jobs(jobs, out_dir)
    rows = _mark_duplicates(rows)
    summary = JobSummary(rows=len(rows), actors=actors)
    say = log or (lambda _line: None)
    todo: list[Row] = []
    for row in rows:
        if row.error:
            summary.failed += 1
            summary.results.append({"index": row.index, "out": row.out, "status": "failed", "error": row.error})
            say(f"failed: {row.error}")
        elif Path(row.out).exists():
            summary.skipped += 1
            summary.results.append({"index": row.index, "out": row.out, "status": "skipped", "error": ""})
        else:
            todo.append(row)
    if summary.skipped:
        say(f"{summary.skipped} row(s) skipped: their output exists")
    if not todo:
        return summary
    ray = init_ray(ray_address)
    data = require_ray("ray.data")
    ctx = data.DataContext.get_current()
    ctx.enable_progress_bars = False  # one line per row instead (below)
    ctx.print_on_execution_start = False
    start = time.perf_counter()
    ds = data.from_items([r.to_dict() for r in todo], override_num_blocks=len(todo))
    # A fixed pool of `actors` model-holding actors (Ray ≥ 2.51 spells it `compute=`, not `concurrency=`).
    ds = ds.map_batches(RowAnimator, batch_size=1, compute=data.ActorPoolStrategy(size=actors),
                        num_cpus=cpus_per_actor,
                        num_gpus=gpus_per_actor or None,
                        fn_constructor_kwargs={"model_dir": str(Path(model_dir).resolve()), "backend": backend,
                                               "precision": precision, "threads": threads})
    say(f"animating {len(todo)} row(s) with {actors} actor(s) on Ray {ray.__version__}")
    finished = 0
    for result in ds.iter_rows():
        result = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in result.items()}
        finished += 1
        summary.results.append(result)
        if result["status"] == "done":
            summary.done += 1
            summary.frames += int(result["frames"])
            say(f"[{finished}/{len(todo)}] row {result['index']}: {result['out']} ({result['frames']} frames, "
                f"{result['seconds']:.1f} s{', picture cached' if result['source_cached'] else ''})")
        else:
            summary.failed += 1
            say(f"[{finished}/{len(todo)}] failed: {result['error']}")
    summary.seconds = time.perf_counter() - start
    summary.results.sort(key=lambda r: r["index"])
    return summary


def _mark_duplicates(rows: list[Row]) -> list[Row]:
    """Two rows writing one file would race; the later one is reported as failed."""
    seen: dict[str, int] = {}
    out = []
    for row in rows:
        if not row.error and row.out in seen:
            row = Row(row.index, row.source, row.driving, row.out, row.mode,
                      f"row {row.index}: out {row.out} is also written by row {seen[row.out]}")
        elif not row.error:
            seen[row.out] = row.index
        out.append(row)
    return out


def print_summary(summary: JobSummary, file: Any = sys.stdout) -> None:
    """The job's last lines: counts, frames/s, and every failed row with its error."""
    print(f"{summary.rows} rows: {summary.done} done, {summary.skipped} skipped (output existed), "
          f"{summary.failed} failed; {summary.frames} frames in {summary.seconds:.1f} s "
          f"({summary.frames_per_s:.1f} frames/s, {summary.actors} actor(s))", file=file)
    for r in summary.results:
        if r["status"] == "failed":
            print(f"  failed: {r['error']}", file=file)
