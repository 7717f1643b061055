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
and jamsdk. :class:`RowAnimator` actors (``--actors N``, spread over the nodes) each open the model
once per mode, animate whole rows with :meth:`StreamBatch.animate_clip
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
import shutil
import sys
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from jamsdk.errors import ClusterError, InputError, JamError
from jamsdk.scale.jobs import Row, read_jobs
from jamsdk.scale.outputs import clean_stale_temps, clean_stale_workdirs, new_workdir, write_output

DEFAULT_FPS = 25.0
IN_FLIGHT_PER_ACTOR = 2   # one row running, the next one's inputs already shipped


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
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def rows_per_s(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "done": self.done, "skipped": self.skipped, "failed": self.failed,
                "frames": self.frames, "seconds": round(self.seconds, 3), "frames_per_s": round(self.frames_per_s, 3),
                "rows_per_s": round(self.rows_per_s, 4), "actors": self.actors, "nodes": self.nodes,
                "cleaned": self.cleaned, "results": self.results}


class RowAnimator:
    """A Ray actor: the shipped model opened once per mode, rows animated from bytes, pictures cached.

    Args:
        bundle: the model folder (:class:`~jamsdk.scale.bundle.ModelBundle`), written on this node on first use.
        backend, precision, threads: as for :class:`~jamsdk.runtime.batch.StreamBatch`.
        cache_size: encoded pictures kept (least recently used dropped first).
    """

    def __init__(self, bundle: Any, backend: str = "auto", precision: str = "fp32", threads: int | None = None,
                 cache_size: int = 64):
        import ray

        self.bundle, self.backend, self.precision, self.threads = bundle, backend, precision, threads
        self.cache_size = cache_size
        self._batches: dict[str, Any] = {}
        self._sources: OrderedDict[str, Any] = OrderedDict()
        self.encoded = 0
        clean_stale_workdirs()  # scratch folders of actors killed on this node earlier
        self.workdir = new_workdir()
        self.node = ray.get_runtime_context().get_node_id()
        self.node_ip = ray.util.get_node_ip_address()

    def ready(self) -> dict[str, Any]:
        """Where this actor runs (answered once the actor exists)."""
        return {"node": self.node, "node_ip": self.node_ip, "pid": os.getpid()}

    def animate(self, row: dict[str, Any], source: bytes, source_key: str, driving: dict[str, bytes]) -> dict[str, Any]:
        """Animate one row; the result carries the encoded output (``video``) or the error, never raises.

        Args:
            row: the row (index, source, driving, out, mode), paths as the driver knows them.
            source: the picture file's bytes; source_key: their SHA-256.
            driving: the driving video's bytes by file name (one file, or the frames of a folder).
        """
        start = time.perf_counter()
        result = {"index": int(row["index"]), "out": str(row["out"]), "status": "done", "frames": 0,
                  "seconds": 0.0, "error": "", "source_cached": False, "pid": os.getpid(), "node": self.node,
                  "node_ip": self.node_ip}
        scratch = Path(self.workdir) / f"row{int(row['index'])}"
        names = {}
        try:
            from jamsdk.video import iter_frames, probe, write_video

            scratch.mkdir()
            sb = self._batch(str(row["mode"]))
            state, result["source_cached"] = self._source(sb, source_key, source, row, scratch, names)
            clip = self._unpack(driving, row, scratch, names)
            info = probe(str(clip))
            out = scratch / ("out" + Path(str(row["out"])).suffix)
            result["frames"] = write_video(out, sb.animate_clip(state, iter_frames(str(clip))),
                                           fps=float(info.fps or DEFAULT_FPS))
            result["video"] = out.read_bytes()
        except Exception as exc:  # noqa: BLE001 - a row's failure is data for the report, not a crash
            kind = "" if isinstance(exc, JamError) else f"{type(exc).__name__}: "
            text = str(exc)
            for local, shown in names.items():  # name the driver's files, not this actor's scratch copies
                text = text.replace(local, shown)
            result.update(status="failed", error=f"row {row['index']}: {kind}{text}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        result["seconds"] = time.perf_counter() - start
        return result

    def close(self) -> None:
        """Remove this actor's scratch folder (a killed actor's is removed by the next actor on its node)."""
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _batch(self, mode: str) -> Any:
        if mode not in self._batches:
            from jamsdk.runtime.batch import StreamBatch

            self._batches[mode] = StreamBatch(self.bundle.folder(), backend=self.backend, mode=mode,
                                              precision=self.precision, threads=self.threads)
        return self._batches[mode]

    def _source(self, sb: Any, key: str, data: bytes, row: dict, scratch: Path, names: dict) -> tuple[Any, bool]:
        from jamsdk.video import read_image

        if key in self._sources:
            self._sources.move_to_end(key)
            return self._sources[key], True
        path = scratch / ("source" + Path(str(row["source"])).suffix)
        path.write_bytes(data)
        names[str(path)] = str(row["source"])
        # Encoded pictures do not depend on the mode: any StreamBatch of this model encodes them.
        state = sb.encode(read_image(path))
        self.encoded += 1
        self._sources[key] = state
        while len(self._sources) > self.cache_size:
            self._sources.popitem(last=False)
        return state, False

    @staticmethod
    def _unpack(driving: dict[str, bytes], row: dict, scratch: Path, names: dict) -> Path:
        shown = str(row["driving"])
        if list(driving) == [""]:  # a single file
            path = scratch / ("driving" + Path(shown).suffix)
            path.write_bytes(driving[""])
        else:  # the frames of a folder
            path = scratch / "driving"
            path.mkdir()
            for name, data in driving.items():
                (path / name).write_bytes(data)
        names[str(path)] = shown
        return path


class _Inputs:
    """The driver's reader of row inputs; pictures cached by (real path, mtime, size) → (bytes, SHA-256)."""

    def __init__(self, cache_size: int = 64):
        self._pictures: OrderedDict[tuple, tuple[bytes, str]] = OrderedDict()
        self.cache_size = cache_size

    def picture(self, path: str) -> tuple[bytes, str]:
        st = _stat(path, "source")
        key = (os.path.realpath(path), st.st_mtime_ns, st.st_size)
        if key not in self._pictures:
            data = _read(path, "source")
            self._pictures[key] = (data, hashlib.sha256(data).hexdigest())
            while len(self._pictures) > self.cache_size:
                self._pictures.popitem(last=False)
        self._pictures.move_to_end(key)
        return self._pictures[key]

    @staticmethod
    def driving(path: str) -> dict[str, bytes]:
        from jamsdk.video import frame_files

        if os.path.isdir(path):
            files = frame_files(path)
            if not files:
                raise InputError(f"driving {path}: empty frame folder")
            return {Path(f).name: _read(str(f), "driving") for f in files}
        return {"": _read(path, "driving")}


def _stat(path: str, what: str) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError as exc:
        raise InputError(f"{what} {path}: {exc.strerror or exc}") from None


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise InputError(f"{what} {path}: {exc.strerror or exc}") from None


def run_job(jobs: str | os.PathLike[str], out_dir: str | os.PathLike[str], model_dir: str | os.PathLike[str], *,
            ray_address: str | None = None, actors: int = 1, gpus_per_actor: float = 0.0,
            cpus_per_actor: float = 1.0, backend: str = "auto", precision: str = "fp32", threads: int | None = None,
            log: Callable[[str], None] | None = None) -> JobSummary:
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
        log: progress lines (None: quiet).

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
        elif Path(row.out).exists():
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
        _run_rows(conn.ray, todo, out_root, summary, say, bundle=bundle, actors=actors,
                  options={"num_cpus": cpus_per_actor, "num_gpus": gpus_per_actor or None},
                  kwargs={"backend": backend, "precision": precision, "threads": threads})
        summary.seconds = time.perf_counter() - start
    finally:
        if conn.address is not None or conn.started_here:
            disconnect(conn)
    summary.results.sort(key=lambda r: r["index"])
    return summary


def _check_fits(nodes: list, cpus: float, gpus: float) -> None:
    if nodes and not any(n.cpus >= cpus and n.gpus >= gpus for n in nodes):
        have = ", ".join(f"{n.ip} {n.cpus:g} CPU {n.gpus:g} GPU" for n in nodes)
        raise ClusterError(f"no node of the cluster can hold an actor of {cpus:g} CPU and {gpus:g} GPU (nodes: {have}): "
                           "lower --cpus-per-actor / --gpus-per-actor or add such a node")


def _run_rows(ray: Any, todo: list[Row], out_root: Path, summary: JobSummary, say: Callable[[str], None], *,
              bundle: Any, actors: int, options: dict[str, Any], kwargs: dict[str, Any]) -> None:
    """The driver's loop: actors become ready, rows go to ready actors (two each at most), results are written."""
    from ray.exceptions import RayActorError

    remote = ray.remote(RowAnimator).options(scheduling_strategy="SPREAD", **options)
    pool: list[Any] = [None] * actors
    ready_refs: dict[Any, int] = {}
    ready: dict[int, dict] = {}
    load = [0] * actors
    inflight: dict[Any, tuple[int, Any, Row]] = {}
    queue, inputs, finished = deque(todo), _Inputs(), 0
    failed_starts = [0] * actors
    last_start_error = ""

    def start(i: int) -> None:
        pool[i] = remote.remote(bundle, **kwargs)
        ready_refs[pool[i].ready.remote()] = i
        ready.pop(i, None)
        load[i] = 0

    for i in range(actors):
        start(i)
    try:
        while queue or inflight:
            if not ready and not ready_refs and not inflight:  # every actor slot gave up starting
                while queue:
                    finished += 1
                    _fail(summary, queue.popleft(), f"no actor could start: {last_start_error}", say,
                          f"[{finished}/{len(todo)}] ")
                break
            for i in list(ready):
                while pool[i] is not None and load[i] < IN_FLIGHT_PER_ACTOR and queue:
                    row = queue.popleft()
                    try:
                        source, key = inputs.picture(row.source)
                        driving = inputs.driving(row.driving)
                    except InputError as exc:
                        finished += 1
                        _fail(summary, row, f"row {row.index}: {exc}", say, f"[{finished}/{len(todo)}] ")
                        continue
                    ref = pool[i].animate.remote(row.to_dict(), source, key, driving)
                    inflight[ref] = (i, pool[i], row)
                    load[i] += 1
            if not queue and not inflight:
                break
            done, _ = ray.wait(list(inflight) + list(ready_refs), num_returns=1)
            ref = done[0]
            if ref in ready_refs:
                i = ready_refs.pop(ref)
                try:
                    ready[i] = ray.get(ref)
                except RayActorError as exc:
                    last_start_error = _short(exc)
                    failed_starts[i] += 1
                    pool[i] = None
                    if failed_starts[i] < 3:
                        say(f"an actor could not start ({last_start_error}); starting another")
                        start(i)
                continue
            i, actor, row = inflight.pop(ref)
            finished += 1
            prefix = f"[{finished}/{len(todo)}] "
            try:
                result = ray.get(ref)
            except RayActorError as exc:
                where = ready.get(i, {}).get("node_ip", "?") if pool[i] is actor else "?"
                _fail(summary, row, f"row {row.index}: the actor animating it (node {where}) died: {_short(exc)}",
                      say, prefix)
                if pool[i] is actor:  # replace it once, not once per row it held
                    start(i)
                continue
            if pool[i] is actor:
                load[i] -= 1
            _finish(summary, row, result, out_root, say, prefix)
    finally:
        closing = [a.close.remote() for a in pool if a is not None]
        try:
            ray.wait(closing, num_returns=len(closing), timeout=10)
        except Exception:  # noqa: BLE001 - dead actors cannot close; their scratch is cleaned next time
            pass
        for a in pool:
            if a is not None:
                ray.kill(a)


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
            f"node {result['node_ip']} {result['node'][:8]}{', picture cached' if result['source_cached'] else ''})")
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
          f"({summary.frames_per_s:.1f} frames/s, {summary.actors} actor(s) on {len(summary.nodes)} node(s))", file=file)
    for r in summary.results:
        if r["status"] == "failed":
            print(f"  failed: {r['error']}", file=file)
