"""A Serve replica's streams: its one StreamBatch, every call under one lock and off the event loop.

The StreamBatch is not thread-safe, and on TensorRT all its calls share one device pipeline (one
stream, one activation memory): a stream opening (``cudaMalloc``, its source's uploads and a sync)
or closing (a sync, ``cudaFree``) while a batch of frames runs would wait for that batch on the event
loop, stalling every WebSocket of the replica, and its bookkeeping would race the worker thread's.
So :class:`ReplicaStreams` runs each call (encode and add, remove, reset, a batch of frames) as one
job in a worker thread while holding the replica's ``asyncio.Lock``; the loop only awaits.

Frames go in as the uint8 ``S × S × 3`` centre crop (decoded and cropped in the decode pool) and
results come back as uint8: on TensorRT with helper engines that is ``S²·3`` bytes each way per
frame, normalised and converted on the GPU (a float32 tensor would be ``S²·12`` each way plus the
host-side conversions).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from jamsdk.pixels import center_crop_resize
from jamsdk.serve.protocol import Limits, decode_image

if TYPE_CHECKING:
    from jamsdk.runtime.batch import StreamBatch


class ReplicaStreams:
    """The replica's :class:`~jamsdk.runtime.batch.StreamBatch` behind ``lock`` (see the module docstring).

    Args:
        sb: the replica's StreamBatch.
        lock: the replica's lock (one StreamBatch call at a time); a new one by default.
    """

    def __init__(self, sb: "StreamBatch", lock: Optional[asyncio.Lock] = None):
        self.sb = sb
        self.lock = lock or asyncio.Lock()

    async def _locked(self, fn: Callable[..., Any], *args: Any) -> Any:
        async with self.lock:
            return await asyncio.to_thread(fn, *args)

    def prepare(self, data: bytes, limits: Limits, what: str) -> np.ndarray:
        """PNG/JPEG bytes → the ``(S, S, 3)`` uint8 centre crop the model takes (for the decode pool)."""
        return np.ascontiguousarray(center_crop_resize(decode_image(data, limits, what), self.sb.image_size))

    async def open(self, picture: np.ndarray) -> int:
        """A new stream animating ``picture``: its id. Encoding and the device writes in one job."""
        return await self._locked(lambda: self.sb.add_stream(self.sb.encode(picture)))

    async def close(self, sid: int) -> None:
        """Forget stream ``sid`` (its device slots are freed); finishes even if the caller is cancelled."""
        await asyncio.shield(self._locked(self._remove, sid))

    def _remove(self, sid: int) -> None:
        if sid in self.sb.streams:
            self.sb.remove_stream(sid)

    async def reset(self, sid: int) -> None:
        """The stream's next frame becomes its relative reference."""
        await self._locked(self.sb.reset, sid)

    async def animate(self, items: list[tuple[int, np.ndarray]]) -> list[Optional[np.ndarray]]:
        """One batch: ``(stream id, uint8 crop)`` → its ``(S, S, 3)`` uint8 result (None: the stream is gone)."""
        def run() -> dict[int, np.ndarray]:
            live = {sid: crop for sid, crop in items if sid in self.sb.streams}  # read under the lock
            return self.sb.run(live) if live else {}

        results = await self._locked(run)
        return [results.get(sid) for sid, _ in items]
