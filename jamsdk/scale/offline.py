"""Offline animation jobs on Ray: ``jamsdk batch --jobs JOBS --out-dir DIR``.

Each row of JOBS (:mod:`jamsdk.scale.jobs`) animates one picture with one driving video into one
output file. Nothing assumes that the nodes share a file system with the driver:

* the **model folder** is shipped once through the object store and written once per node
  (:mod:`jamsdk.scale.bundle`);
* the **inputs** are read by the driver, where the JOBS file names them, and travel to the actor
  as bytes with the row (at most two rows in flight per actor, so the driver holds little);
* the **outputs** come back to the driver as encoded video bytes and are written there, inside
  ``--out-dir``, atomically (:mod:`jamsdk.scale.outputs`).

So the driver's machine needs the inputs and room for the outputs; the other nodes need only Ray
and jamsdk. :class:`~jamsdk.scale.actor.RowAnimator` actors (``--actors N``, spread over the nodes)
each open the model once per mode, animate whole rows with :meth:`StreamBatch.animate_clip
<jamsdk.runtime.batch.StreamBatch.animate_clip>` and keep an LRU cache of encoded pictures (keyed
by the picture's SHA-256), so a popular photo is encoded once per actor.

A failed row never stops the job: an actor returns a row's error as data, a row whose actor dies
is reported failed and the actor replaced, an output that cannot be written is a failed row.
Rows whose output exists are skipped before anything starts (re-running resumes a job); each
result names the node that ran it.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from jamsdk.errors import ClusterError, InputError
from jamsdk.image_header import check_image_start, max_pixels
from jamsdk.input_files import cap, check_input, read_input
from jamsdk.scale.actor import RowAnimator
from jamsdk.scale.jobs import Row, read_jobs
from jamsdk.scale.outputs import clean_stale_temps, write_output

IN_FLIGHT_PER_ACTOR = 2   # one row running, the next one's inputs already shipped
START_GRACE_S = 20.0      # how long rows wait for the other actors once the first is up


@dataclass
class JobSummary:
    """What a job did: rows done, skipped (output existed) and failed (with errors), frames/s, nodes."""

    rows: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    frames: int = 0
    seconds: float = 0.0
    actors: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)   # node id → {"ip", "rows"}
    cleaned: list[str] = field(default_factory=list)                 # stale temporary files removed

    @property
    def runtimes(self) -> list[str]:
        """The backend and precision the rows ran on (``auto`` resolves per node), e.g. ``["openvino int8"]``."""
        return sorted({r["runtime"] for r in self.results if r.get("runtime")})

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def rows_per_s(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "done": self.done, "skipped": self.skipped, "failed": self.failed,
                "frames": self.frames, "seconds": round(self.seconds, 3), "frames_per_s": round(self.frames_per_s, 3),
                "rows_per_s": round(self.rows_per_s, 4), "actors": self.actors, "runtimes": self.runtimes,
                "nodes": self.nodes,
                "cleaned": self.cleaned, "results": self.results}


class _Inputs:
    """The driver's reader of row inputs; pictures cached by (real path, mtime, size) → (bytes, SHA-256).

    Every file is checked before it is read (:mod:`jamsdk.input_files`): a regular file with a
    picture or video extension, within its kind's size cap; a frame folder's frames count against
    the video cap together. The cache holds at most ``cache_size`` pictures and ``cache_bytes`` bytes.
    """

    def __init__(self, cache_size: int = 64, cache_bytes: int = 256 << 20):
        self._pictures: OrderedDict[tuple, tuple[bytearray, str]] = OrderedDict()
        self.cache_size, self.cache_bytes = cache_size, cache_bytes

    def picture(self, path: str) -> tuple[bytearray, str]:
        from jamsdk.pictures import IMAGE_EXTS

        _extension(path, "source", IMAGE_EXTS, "a picture")
        st = check_input(path, "picture", what="source")
        key = (os.path.realpath(path), st.st_mtime_ns, st.st_size)
        if key not in self._pictures:
            data = read_input(path, "picture", what="source",
                              head=lambda start: check_image_start(start, f"source {path}"))
            self._pictures[key] = (data, hashlib.sha256(data).hexdigest())
            while len(self._pictures) > self.cache_size or (
                    len(self._pictures) > 1 and sum(len(d) for d, _ in self._pictures.values()) > self.cache_bytes):
                self._pictures.popitem(last=False)
        self._pictures.move_to_end(key)
        return self._pictures[key]

    @staticmethod
    def driving(path: str) -> dict[str, bytearray]:
        from jamsdk.pictures import IMAGE_EXTS
        from jamsdk.video import VIDEO_EXTS, frame_files

        if os.path.isdir(path):
            files = frame_files(path)
            if not files:
                raise InputError(f"driving {path}: empty frame folder")
            total, frames = 0, {}
            for f in files:
                data = read_input(f, "picture", what="driving frame",
                                  head=lambda start, f=f: check_image_start(start, f"driving frame {f}"))
                total += len(data)
                if total > cap("video"):
                    raise InputError(f"driving {path}: its frames together are over the limit of {cap('video'):,} "
                                     "bytes for a video (refused before reading the rest)")
                frames[Path(f).name] = data
            return frames
        ext = _extension(path, "driving", VIDEO_EXTS + IMAGE_EXTS, "a video, a picture or a frame folder")
        kind = "video" if ext in VIDEO_EXTS else "picture"
        return {"": read_input(path, kind, what="driving")}


def _extension(path: str, what: str, allowed: tuple[str, ...], expected: str) -> str:
    """The file's extension when ``allowed`` has it, checked before the file is opened at all."""
    ext = Path(path).suffix.lower()
    if ext not in allowed:
        raise InputError(f"{what} {path}: expected {expected} ({', '.join(allowed)}), got "
                         f"{ext or 'a file without extension'!r}")
    return ext


def run_job(jobs: str | os.PathLike[str], out_dir: str | os.PathLike[str], model_dir: str | os.PathLike[str], *,
            ray_address: str | None = None, actors: int = 1, gpus_per_actor: float = 0.0,
            cpus_per_actor: float = 1.0, backend: str = "auto", precision: str = "fp32", threads: int | None = None,
            overwrite: bool = False, log: Callable[[str], None] | None = None,
            allow_short: bool = False, max_batch: int | str | None = "auto") -> JobSummary:
    """Animate every row of ``jobs`` into ``out_dir`` on Ray (local unless ``ray_address`` or ``RAY_ADDRESS``).

    Args:
        jobs: the JOBS file (CSV or JSONL, see :mod:`jamsdk.scale.jobs`), read on this machine.
        out_dir: where outputs go (rows name files inside it), written on this machine.
        model_dir: the exported model folder on this machine (shipped to the nodes).
        ray_address: ``HOST:PORT`` of a cluster's head, ``ray://HOST:PORT`` or ``auto``
            (:mod:`jamsdk.scale.connect`); None: ``RAY_ADDRESS``, else a local Ray.
        actors: how many model-holding actors animate rows in parallel (spread over the nodes).
        gpus_per_actor: GPUs each actor reserves (0: CPU; TensorRT is used when the folder has engines).
        cpus_per_actor: CPUs each actor reserves.
        backend, precision, threads: as for :class:`~jamsdk.runtime.batch.StreamBatch`.
        overwrite: run rows whose output exists too, each new output replacing the old one only once
            it is complete (default: skip them, so a re-run resumes the job).
        log: progress lines (None: quiet).
        allow_short: a driving video that stops decoding before its declared frame count is animated as
            far as it goes instead of failing its row (:func:`jamsdk.video.iter_frames`).
        max_batch: the most frames of a clip per stage call, as ``StreamBatch(max_batch=...)`` takes it
            (default ``"auto"``: 1 on the CPU backends, the largest exported size on TensorRT; None: the
            largest everywhere).

    Returns:
        The :class:`JobSummary`; failed rows carry their error in ``results``, every row run names its node.

    Raises:
        InputError: a bad argument or JOBS file, before anything runs.
        ClusterError: Ray cannot be reached or used (one line naming the cause and the fix).
    """
    for name, value, low in (("--actors", actors, 1), ("--gpus-per-actor", gpus_per_actor, 0),
                             ("--cpus-per-actor", cpus_per_actor, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
            raise InputError(f"{name}: expected a number ≥ {low}, got {value!r}")
    out_root = Path(out_dir).resolve()
    rows = _mark_duplicates(read_jobs(jobs, out_root))
    summary = JobSummary(rows=len(rows), actors=actors)
    say = log or (lambda _line: None)
    summary.cleaned = [str(p) for p in clean_stale_temps([Path(r.out) for r in rows if not r.error])]
    if summary.cleaned:
        say(f"removed {len(summary.cleaned)} temporary file(s) an interrupted run left: {', '.join(summary.cleaned)}")
    todo: list[Row] = []
    for row in rows:
        if row.error:
            _fail(summary, row, row.error, say)
        elif Path(row.out).exists() and not overwrite:
            summary.skipped += 1
            summary.results.append({"index": row.index, "out": row.out, "status": "skipped", "error": ""})
        else:
            todo.append(row)
    if summary.skipped:
        say(f"{summary.skipped} row(s) skipped: their output exists")
    if not todo:
        return summary
    from jamsdk.scale.bundle import ship
    from jamsdk.scale.connect import connect, disconnect

    conn = connect(ray_address, log=say)
    try:
        _check_fits(conn.nodes, cpus_per_actor, gpus_per_actor)
        bundle = ship(conn.ray, model_dir)
        say(f"animating {len(todo)} row(s) with {actors} actor(s) on {conn.describe()}")
        start = time.perf_counter()
        _ActorPool(conn.ray, todo, out_root, summary, say, bundle=bundle, actors=actors,
                   options={"num_cpus": cpus_per_actor, "num_gpus": gpus_per_actor or None},
                   kwargs={"backend": backend, "precision": precision, "threads": threads, "max_batch": max_batch,
                           # the driver's limit: actors on other nodes do not inherit its environment
                           "max_pixels": max_pixels(), "allow_short": allow_short}).run()
        summary.seconds = time.perf_counter() - start
    finally:
        if conn.address is not None or conn.started_here:
            disconnect(conn)
    summary.results.sort(key=lambda r: r["index"])
    return summary


def _check_fits(nodes: list, cpus: float, gpus: float) -> None:
    if nodes and not any(n.cpus >= cpus and n.gpus >= gpus for n in nodes):
        have = ", ".join(f"{n.ip} {n.cpus:g} CPU {n.gpus:g} GPU" for n in nodes)
        raise ClusterError(f"no node of the cluster can hold an actor of {cpus:g} CPU and {gpus:g} GPU "
                           f"(nodes: {have}): lower --cpus-per-actor / --gpus-per-actor or add such a node")


class _ActorPool:
    """The driver's side of the job: actors start, rows go to ready actors (two each at most), results are written.

    Rows wait until every actor is up, or :data:`START_GRACE_S` after the first one is, so that a
    short job is not finished by the first actor alone while the others still start.
    """

    def __init__(self, ray: Any, todo: list[Row], out_root: Path, summary: JobSummary, say: Callable[[str], None], *,
                 bundle: Any, actors: int, options: dict[str, Any], kwargs: dict[str, Any]):
        self.ray, self.out_root, self.summary, self.say = ray, out_root, summary, say
        self.remote = ray.remote(RowAnimator).options(scheduling_strategy="SPREAD", **options)
        self.bundle, self.kwargs = bundle, kwargs
        self.pool: list[Any] = [None] * actors
        self.starting: dict[Any, int] = {}              # ready() ref → slot
        self.ready: dict[int, dict[str, Any]] = {}      # slot → where its actor runs
        self.load = [0] * actors
        self.failed_starts = [0] * actors
        self.last_start_error = ""
        self.first_ready = 0.0
        self.inflight: dict[Any, tuple[int, Any, Row]] = {}
        self.queue, self.inputs, self.finished, self.total = deque(todo), _Inputs(), 0, len(todo)

    def run(self) -> None:
        from ray.exceptions import RayActorError

        for i in range(len(self.pool)):
            self._start(i)
        try:
            while self.queue or self.inflight:
                if not self.ready and not self.starting and not self.inflight:  # every slot gave up starting
                    while self.queue:
                        self._fail(self.queue.popleft(), f"no actor could start: {self.last_start_error}")
                    break
                wait_s = self._dispatch()
                if not self.queue and not self.inflight:
                    break
                done, _ = self.ray.wait(list(self.inflight) + list(self.starting), num_returns=1, timeout=wait_s)
                if not done:
                    continue
                if done[0] in self.starting:
                    self._on_ready(done[0], RayActorError)
                else:
                    self._on_result(done[0], RayActorError)
        finally:
            self._close()

    def _start(self, i: int) -> None:
        self.pool[i] = self.remote.remote(self.bundle, **self.kwargs)
        self.starting[self.pool[i].ready.remote()] = i
        self.ready.pop(i, None)
        self.load[i] = 0

    def _dispatch(self) -> float | None:
        """Give queued rows to ready actors; returns how long to wait before dispatching may begin (None: no limit)."""
        live = sum(a is not None for a in self.pool)
        if self.starting and len(self.ready) < live:
            left = START_GRACE_S - (time.monotonic() - self.first_ready) if self.first_ready else None
            if left is None or left > 0:
                return left
        for i in list(self.ready):
            while self.pool[i] is not None and self.load[i] < IN_FLIGHT_PER_ACTOR and self.queue:
                row = self.queue.popleft()
                try:
                    source, key = self.inputs.picture(row.source)
                    driving = self.inputs.driving(row.driving)
                except InputError as exc:
                    self._fail(row, f"row {row.index}: {exc}")
                    continue
                ref = self.pool[i].animate.remote(row.to_dict(), source, key, driving)
                self.inflight[ref] = (i, self.pool[i], row)
                self.load[i] += 1
        return None

    def _on_ready(self, ref: Any, actor_error: type) -> None:
        i = self.starting.pop(ref)
        try:
            self.ready[i] = self.ray.get(ref)
            self.first_ready = self.first_ready or time.monotonic()
        except actor_error as exc:
            self.last_start_error = _short(exc)
            self.failed_starts[i] += 1
            self.pool[i] = None
            if self.failed_starts[i] < 3:
                self.say(f"an actor could not start ({self.last_start_error}); starting another")
                self._start(i)

    def _on_result(self, ref: Any, actor_error: type) -> None:
        i, actor, row = self.inflight.pop(ref)
        try:
            result = self.ray.get(ref)
        except actor_error as exc:
            where = self.ready.get(i, {}).get("node_ip", "?") if self.pool[i] is actor else "?"
            self._fail(row, f"row {row.index}: the actor animating it (node {where}) died: {_short(exc)}")
            if self.pool[i] is actor:  # replace it once, not once per row it held
                self._start(i)
            return
        if self.pool[i] is actor:
            self.load[i] -= 1
        self.finished += 1
        _finish(self.summary, row, result, self.out_root, self.say, f"[{self.finished}/{self.total}] ")

    def _fail(self, row: Row, error: str) -> None:
        self.finished += 1
        _fail(self.summary, row, error, self.say, f"[{self.finished}/{self.total}] ")

    def _close(self) -> None:
        closing = [a.close.remote() for a in self.pool if a is not None]
        try:
            self.ray.wait(closing, num_returns=len(closing), timeout=10)
        except Exception:  # noqa: BLE001 - dead actors cannot close; their scratch is cleaned next time
            pass
        for a in self.pool:
            if a is not None:
                self.ray.kill(a)


def _finish(summary: JobSummary, row: Row, result: dict[str, Any], out_root: Path, say: Callable[[str], None],
            prefix: str) -> None:
    video = result.pop("video", None)
    if result["status"] == "done":
        try:
            write_output(out_root, Path(row.out), video)
        except (InputError, OSError) as exc:
            result.update(status="failed", error=f"row {row.index}: {exc}")
    node = summary.nodes.setdefault(result["node"], {"ip": result["node_ip"], "rows": 0})
    node["rows"] += 1
    summary.results.append(result)
    if result["status"] == "done":
        summary.done += 1
        summary.frames += int(result["frames"])
        say(f"{prefix}row {result['index']}: {result['out']} ({result['frames']} frames, {result['seconds']:.1f} s, "
            f"node {result['node_ip']} {result['node'][:8]}{', picture cached' if result['source_cached'] else ''})"
            + (f"; note: {result['note']}" if result.get("note") else ""))
    else:
        summary.failed += 1
        say(f"{prefix}failed: {result['error']}")


def _fail(summary: JobSummary, row: Row, error: str, say: Callable[[str], None], prefix: str = "") -> None:
    summary.failed += 1
    summary.results.append({"index": row.index, "out": row.out, "status": "failed", "error": error})
    say(f"{prefix}failed: {error}")


def _short(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:200]


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
    """The job's last lines: counts, frames/s, nodes, and every failed row with its error."""
    print(f"{summary.rows} rows: {summary.done} done, {summary.skipped} skipped (output existed), "
          f"{summary.failed} failed; {summary.frames} frames in {summary.seconds:.1f} s "
          f"({summary.frames_per_s:.1f} frames/s, {summary.actors} actor(s) on {len(summary.nodes)} node(s)"
          + (f"; {', '.join(summary.runtimes)}" if summary.runtimes else "") + ")", file=file)
    for r in summary.results:
        if r["status"] == "failed":
            print(f"  failed: {r['error']}", file=file)
