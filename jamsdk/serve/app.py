"""The Ray Serve application of ``jamsdk serve``: one WebSocket per stream, batched inside a replica.

The ingress deployment is a FastAPI app (``serve.ingress``) whose WebSocket route holds one stream
per connection. A connection lives on one replica for its whole life, so the replica owns its
streams' state (a :class:`~jamsdk.runtime.batch.StreamBatch` per replica: sources, references).
Frames of the replica's concurrent streams are gathered by ``serve.batch`` (up to the model's
largest batch size, waiting at most ``batch_wait_s``) and advanced with one call per stage.

Protocol and limits: :mod:`jamsdk.serve.protocol`. This module imports Ray, FastAPI and the model
runtime; import it only to serve (``pip install "jamsdk[ray]"``).
"""

# No `from __future__ import annotations` here: Serve's class-based view rebuilds the route
# signatures, and FastAPI must see the real WebSocket class (a string annotation turns `ws` into a
# query parameter and every connection is refused with HTTP 403).

import asyncio
import json
import os
from dataclasses import asdict
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from fastapi import FastAPI, WebSocket
from ray import serve

from jamsdk.errors import InputError
from jamsdk.runtime.frames import to_image, to_model_input
from jamsdk.serve.protocol import CLOSE_CODES, ROUTE, Limits, decode_image, encode_png, message

api = FastAPI(title="jamsdk serve")


class _Closed(Exception):
    """The client went away (or must be sent away); the stream ends."""


@serve.deployment
@serve.ingress(api)
class AnimationService:
    """The ingress replica: streams of one model, their state, and the micro-batcher.

    Args:
        model_dir: exported model folder (readable on every node that runs a replica).
        limits: :class:`~jamsdk.serve.protocol.Limits` as a dict.
        backend, mode, precision, threads: as for :class:`~jamsdk.runtime.batch.StreamBatch`.
        batch_wait_s: how long a frame waits for others to share its stage calls.
    """

    def __init__(self, model_dir: str, limits: Dict[str, Any], backend: str = "auto", mode: str = "relative",
                 precision: str = "fp32", threads: Optional[int] = None, batch_wait_s: float = 0.005):
        from jamsdk.runtime.batch import StreamBatch

        self.limits = Limits(**limits)
        self._sb = StreamBatch(model_dir, backend=backend, mode=mode, precision=precision, threads=threads)
        self._lock = asyncio.Lock()  # the StreamBatch runs one call at a time, in a worker thread
        self._active = 0
        self.batches = 0
        self.frames = 0
        self._animate.set_max_batch_size(max(2, self._sb.max_batch))
        self._animate.set_batch_wait_timeout_s(batch_wait_s)

    @api.get("/health")
    def health(self) -> Dict[str, Any]:
        """Streams held, frames and stage-call batches so far (frames / batches = mean batch size)."""
        return {"pid": os.getpid(), "streams": self._active, "frames": self.frames, "batches": self.batches,
                "batch_sizes": list(self._sb.batch_sizes), "backend": self._sb.backend, "limits": asdict(self.limits)}

    @api.websocket(ROUTE)
    async def stream(self, ws: WebSocket) -> None:
        await ws.accept()
        if self._active >= self.limits.max_streams:  # checked and taken without an await in between
            await self._fail(ws, "busy", f"server busy: this replica already holds {self.limits.max_streams} "
                                         "streams (max streams per replica); try again later")
            return
        self._active += 1
        sid = None
        try:
            sid = await self._open_stream(ws)
            if sid is None:
                return
            count = 0
            while True:
                msg = await self._receive(ws)
                if msg.get("text") is not None:
                    if self._is_reset(msg["text"]):
                        self._sb.reset(sid)
                        await ws.send_text(message("reset"))
                        continue
                    await ws.send_text(message("error", fatal=False, message=f"frame {count + 1}: expected a binary "
                                               "message (PNG or JPEG) or {\"type\": \"reset\"}, got text"))
                    continue
                count += 1
                try:
                    x = self._prepare(msg.get("bytes") or b"", f"frame {count}")
                except InputError as exc:
                    await ws.send_text(message("error", fatal=False, message=str(exc)))
                    continue
                pred = await self._animate((sid, x))
                await ws.send_bytes(encode_png(to_image(pred, pred.shape[-1])))
        except _Closed:
            pass
        except Exception as exc:  # noqa: BLE001 - a server-side failure: tell the client why, then close
            await self._fail(ws, "internal", f"server error: {type(exc).__name__}: {exc}")
            raise
        finally:
            self._active -= 1
            if sid is not None:
                self._sb.remove_stream(sid)

    # -- internals -------------------------------------------------------------------------------

    async def _open_stream(self, ws: WebSocket) -> Optional[int]:
        msg = await self._receive(ws)
        try:
            if msg.get("bytes") is None:
                raise InputError("source picture: expected the first message to be binary PNG or JPEG bytes, got text")
            picture = decode_image(msg["bytes"], self.limits, "source picture")
            async with self._lock:
                state = await asyncio.to_thread(self._sb.encode, picture)
        except InputError as exc:
            await self._fail(ws, "bad_source", str(exc))
            return None
        sid = self._sb.add_stream(state)
        await ws.send_text(message("ready", stream=sid, image_size=self._sb.image_size))
        return sid

    def _prepare(self, data: bytes, what: str) -> np.ndarray:
        return to_model_input(decode_image(data, self.limits, what), self._sb.image_size, False, what)

    async def _receive(self, ws: WebSocket) -> Dict[str, Any]:
        try:
            msg = await asyncio.wait_for(ws.receive(), timeout=self.limits.idle_timeout_s)
        except asyncio.TimeoutError:
            await self._fail(ws, "idle", f"idle for {self.limits.idle_timeout_s:g} s (the idle timeout); stream closed")
            raise _Closed() from None
        if msg.get("type") == "websocket.disconnect":
            raise _Closed()
        return msg

    async def _fail(self, ws: WebSocket, why: str, text: str) -> None:
        try:
            await ws.send_text(message("error", fatal=True, message=text))
            await ws.close(code=CLOSE_CODES[why], reason=text[:120])
        except Exception:  # noqa: BLE001 - the client may already be gone
            pass

    @staticmethod
    def _is_reset(text: str) -> bool:
        try:
            data = json.loads(text)
        except ValueError:
            return False
        return isinstance(data, dict) and data.get("type") == "reset"

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)
    async def _animate(self, items: List[Tuple[int, np.ndarray]]) -> List[np.ndarray]:
        live = {sid: x for sid, x in items if sid in self._sb.streams}
        async with self._lock:
            preds = await asyncio.to_thread(self._sb.run_tensors, live)
        self.batches += 1
        self.frames += len(live)
        return [preds.get(sid) for sid, _ in items]


def build_app(model_dir: str, *, replicas: int = 1, limits: Optional[Limits] = None, backend: str = "auto",
              mode: str = "relative", precision: str = "fp32", threads: Optional[int] = None,
              cpus_per_replica: float = 1.0, gpus_per_replica: float = 0.0, batch_wait_s: float = 0.005) -> Any:
    """The bound Serve application (pass it to :func:`run`)."""
    limits = limits or Limits()
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise InputError(f"--replicas: expected a whole number ≥ 1, got {replicas!r}")
    actor = {"num_cpus": cpus_per_replica}
    if gpus_per_replica:
        actor["num_gpus"] = gpus_per_replica
    # Each WebSocket is one ongoing request for its whole life: let the replica's own limit answer
    # (with a clear message) before Serve's queueing would hold a connection silently.
    return AnimationService.options(num_replicas=replicas, max_ongoing_requests=limits.max_streams + 4,
                                    ray_actor_options=actor).bind(
        str(model_dir), asdict(limits), backend=backend, mode=mode, precision=precision, threads=threads,
        batch_wait_s=batch_wait_s)


def run(app: Any, host: str = "127.0.0.1", port: int = 8000, name: str = "jamsdk") -> None:
    """Start Serve's HTTP proxy on ``host:port`` (loopback by default) and deploy ``app``."""
    serve.start(http_options={"host": host, "port": port})
    serve.run(app, name=name, route_prefix="/")
