"""The actor of ``jamsdk batch``: one model per actor, rows animated from bytes, outputs returned as bytes.

The driver (:mod:`jamsdk.scale.offline`) sends each row with its input files' bytes and writes the
encoded output it gets back, so the actor needs no file of the driver's machine: the model folder
arrives through the object store (:mod:`jamsdk.scale.bundle`), inputs and outputs live in a
scratch folder of the actor's own (removed by :meth:`RowAnimator.close`, or by the next actor on
the node when this one was killed).
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

from jamsdk.errors import JamError
from jamsdk.scale.outputs import clean_stale_workdirs, new_workdir

DEFAULT_FPS = 25.0


class RowAnimator:
    """A Ray actor: the shipped model opened once per mode, rows animated from bytes, pictures cached.

    Args:
        bundle: the model folder (:class:`~jamsdk.scale.bundle.ModelBundle`), written on this node on first use.
        backend, precision, threads, max_batch: as for :class:`~jamsdk.runtime.batch.StreamBatch`.
        cache_size: encoded pictures kept (least recently used dropped first).
        max_pixels: the pixel limit of the pictures and frames it reads (the driver's, passed along
            because an actor on another node does not inherit the driver's environment); None: this
            process's own.
        allow_short: animate a driving video that ends before its declared frame count as far as it
            goes (:func:`jamsdk.video.iter_frames`); default: that row fails, saying how far it got.
    """

    def __init__(self, bundle: Any, backend: str = "auto", precision: str = "fp32", threads: int | None = None,
                 cache_size: int = 64, max_pixels: int | None = None, allow_short: bool = False,
                 max_batch: int | str | None = "auto"):
        import ray

        if max_pixels is not None:
            from jamsdk.image_header import set_max_pixels

            set_max_pixels(max_pixels)

        self.bundle, self.backend, self.precision, self.threads = bundle, backend, precision, threads
        self.cache_size, self.allow_short = cache_size, allow_short
        self.max_batch = max_batch
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
                  "seconds": 0.0, "error": "", "note": "", "source_cached": False, "pid": os.getpid(),
                  "node": self.node, "node_ip": self.node_ip}
        scratch = Path(self.workdir) / f"row{int(row['index'])}"
        names = {}
        try:
            from jamsdk.video import ShortVideoWarning, iter_frames, probe
            from jamsdk.video_write import write_video

            scratch.mkdir()
            sb = self._batch(str(row["mode"]))
            state, result["source_cached"] = self._source(sb, source_key, source, row, scratch, names)
            clip = self._unpack(driving, row, scratch, names)
            info = probe(str(clip))
            out = scratch / ("out" + Path(str(row["out"])).suffix)
            with warnings.catch_warnings(record=True) as said:
                warnings.simplefilter("always", ShortVideoWarning)
                result["frames"] = write_video(out, sb.animate_clip(state, iter_frames(
                    str(clip), allow_short=self.allow_short)), fps=float(info.fps or DEFAULT_FPS))
            result["note"] = "; ".join(str(w.message) for w in said if issubclass(w.category, ShortVideoWarning))
            # what auto chose on this node: runtime, precision, most frames per stage call
            result["runtime"] = f"{sb.backend} {sb.precision} b{sb.max_batch}"
            result["video"] = out.read_bytes()
        except Exception as exc:  # noqa: BLE001 - a row's failure is data for the report, not a crash
            kind = "" if isinstance(exc, JamError) else f"{type(exc).__name__}: "
            text = str(exc)
            result.update(status="failed", error=f"row {row['index']}: {kind}{_shown(text, names)}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        result["note"] = _shown(result["note"], names)
        result["seconds"] = time.perf_counter() - start
        return result

    def close(self) -> None:
        """Remove this actor's scratch folder (a killed actor's is removed by the next actor on its node)."""
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _batch(self, mode: str) -> Any:
        if mode not in self._batches:
            from jamsdk.runtime.batch import StreamBatch

            self._batches[mode] = StreamBatch(self.bundle.folder(), backend=self.backend, mode=mode,
                                              precision=self.precision, threads=self.threads,
                                              max_batch=self.max_batch)
        return self._batches[mode]

    def _source(self, sb: Any, key: str, data: bytes, row: dict, scratch: Path, names: dict) -> tuple[Any, bool]:
        from jamsdk.pictures import read_image

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


def _shown(text: str, names: dict) -> str:
    """``text`` naming the driver's files, not this actor's scratch copies."""
    for local, shown in names.items():
        text = text.replace(local, shown)
    return text
