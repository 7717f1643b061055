"""The Ray Serve application of ``jamsdk serve``: one WebSocket per stream, batched inside a replica.

The ingress deployment is a FastAPI app (``serve.ingress``) whose WebSocket route holds one stream
per connection. A connection lives on one replica for its whole life, so the replica owns its
streams' state (a :class:`~jamsdk.runtime.batch.StreamBatch` per replica: sources, references).
Frames of the replica's concurrent streams are gathered by ``serve.batch`` (up to the model's
largest batch size, waiting at most ``batch_wait_s``) and advanced with one call per stage.

On a cluster, the model folder reaches each replica's node through the object store
(:mod:`jamsdk.scale.bundle`), replicas are spread over the nodes (at most ``ceil(replicas /
nodes that fit one)`` per node), one HTTP proxy on the head node takes every stream (Serve's
``HeadOnly``), so ``--host``/``--port`` are the head's, and a new stream goes to the less busy of
two replicas wherever they run (:mod:`jamsdk.serve.routing`). Each ``ready`` message and
``/health`` name the replica and node that hold the stream.

Protocol and limits: :mod:`jamsdk.serve.protocol`. This module imports Ray, FastAPI and the model
runtime; import it only to serve (``pip install "jamsdk[ray]"``).
"""

# No `from __future__ import annotations` here: Serve's class-based view rebuilds the route
# signatures, and FastAPI must see the real WebSocket class (a string annotation turns `ws` into a
# query parameter and every connection is refused with HTTP 403).

import asyncio
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import ray
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse
from ray import serve

from jamsdk.access import Access
from jamsdk.errors import InputError
from jamsdk.serve.inbox import Closed as _Closed, Inbox as _Inbox
from jamsdk.serve.policy import (
    DecodeBudget as _DecodeBudget, Debts as _Debts, PenaltyBox as _PenaltyBox, StreamPolicy as _StreamPolicy,
    refusal_text as _refusal_text,
)
from jamsdk.serve.proxy_guard import (
    HEADER as _GUARD_HEADER, close_reason as _close_reason, penalty_reason as _penalty_reason,
)
from jamsdk.serve.protocol import CLOSE_CODES, ROUTE, Limits, decode_image, encode_png, message
from jamsdk.serve.streams import ReplicaStreams as _ReplicaStreams

api = FastAPI(title="jamsdk serve")
MAX_TEXT_CHARS = 1024  # the only text message is {"type": "reset"}


# Module-level helpers come before the class: serve.ingress copies its methods with the globals
# that exist when the class statement runs.
def _rss_bytes() -> Optional[int]:
    """This replica's resident memory now (Linux), for /health and the load benchmark."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _timed(fn: Any, *args: Any) -> Tuple[Any, Optional[InputError], float]:
    """``(fn(*args), None, seconds)`` or ``(None, its InputError, seconds)``; the time is measured in the
    thread that ran it (not the pool's queue): a refusal after decoding cost time too."""
    start = time.perf_counter()
    try:
        return fn(*args), None, time.perf_counter() - start
    except InputError as exc:
        return None, exc, time.perf_counter() - start


def _gone(exc: BaseException) -> bool:
    """A send to a client that already left (Starlette/uvicorn raise several kinds)."""
    name = type(exc).__name__
    return isinstance(exc, (ConnectionError, _Closed)) or name in ("WebSocketDisconnect", "ClientDisconnected")


@serve.deployment
@serve.ingress(api)
class AnimationService:
    """The ingress replica: streams of one model, their state, and the micro-batcher.

    Args:
        model: the exported model folder shipped by :func:`jamsdk.scale.bundle.ship` (or a path
            every replica's node can read).
        limits: :class:`~jamsdk.serve.protocol.Limits` as a dict.
        backend, mode, precision, threads: as for :class:`~jamsdk.runtime.batch.StreamBatch`.
        batch_wait_s: how long a frame waits for others to share its stage calls.
        access: :class:`~jamsdk.access.Access` as a dict (token digest, bound host, allowed origins);
            default: loopback rules.
    """

    def __init__(self, model: Any, limits: Dict[str, Any], backend: str = "auto", mode: str = "relative",
                 precision: str = "fp32", threads: Optional[int] = None, batch_wait_s: float = 0.005,
                 access: Optional[Dict[str, Any]] = None, max_batch: Any = "auto"):
        from jamsdk.runtime.batch import StreamBatch

        self.limits = Limits(**limits)
        self.access = Access(**{**(access or {}), "origins": tuple((access or {}).get("origins", ()))})
        model_dir = model if isinstance(model, str) else model.folder()
        # max_batch auto: one frame per call on the CPU backends (batched calls were slower per frame on
        # 2 cores; benchmarks/batch.py), the largest size on TensorRT
        self._sb = StreamBatch(model_dir, backend=backend, mode=mode, precision=precision, threads=threads,
                               max_batch=max_batch)
        self._node = ray.get_runtime_context().get_node_id()
        self._replica = serve.get_replica_context().replica_id.unique_id
        self._lock = asyncio.Lock()  # the StreamBatch runs one call at a time, in a worker thread
        self._streams = _ReplicaStreams(self._sb, self._lock)  # every StreamBatch call: under it, off the loop
        # Decoding and encoding pictures: off the event loop, in a bounded pool (one job per stream at a time).
        self._pool = ThreadPoolExecutor(max_workers=self.limits.decode_threads, thread_name_prefix="jamsdk-decode")
        self._active = 0
        self.batches = 0
        self.frames = 0
        self.dropped = 0
        self.refused = 0
        self.policy_closed = 0  # streams closed for sending too much (jamsdk.serve.policy)
        self.penalized = 0  # handshakes refused while their address served a penalty
        self._penalties = _PenaltyBox(self.limits.penalty_s)
        self._debts = _Debts()  # decoding time owed by ended streams, by address
        self.paced_s = 0.0  # seconds streams waited for their decoding budget (jamsdk.serve.policy.DecodeBudget)
        self._animate.set_max_batch_size(max(2, self._sb.max_batch))
        self._animate.set_batch_wait_timeout_s(batch_wait_s)

    @api.get("/health")
    def health(self, request: Request) -> Any:
        """Streams held, frames and stage-call batches so far (frames / batches = mean batch size)."""
        refusal = self._refusal(request.headers, request.url.query)
        if refusal is not None:
            return JSONResponse({"error": refusal[1]}, status_code=refusal[0])
        return {"pid": os.getpid(), "replica": self._replica, "node": self._node, "rss_bytes": _rss_bytes(),
                "streams": self._active, "frames": self.frames, "batches": self.batches, "dropped": self.dropped,
                "refused": self.refused, "policy_closed": self.policy_closed, "penalized": self.penalized,
                "paced_s": round(self.paced_s, 3),
                # This request came through Serve's proxy too: the guard's header says whether it runs there.
                "proxy_guard": _GUARD_HEADER.decode() in request.headers,
                "batch_sizes": list(self._sb.batch_sizes),
                "backend": self._sb.backend, "precision": self._sb.precision, "max_batch": self._sb.max_batch, "limits": asdict(self.limits)}

    @api.websocket(ROUTE)
    async def stream(self, ws: WebSocket) -> None:
        address = ws.client.host if ws.client else None
        wait = self._penalties.remaining(address)
        if wait > 0:  # refused at the handshake: nothing of this client is read or decoded
            self.penalized += 1
            await self._deny(ws, 429, f"{_refusal_text(address, wait)} (penalty {self.limits.penalty_s:g} s)", wait)
            return
        await ws.accept()
        refusal = self._refusal(ws.headers, ws.url.query)
        if refusal is not None:
            self.refused += 1
            await self._fail(ws, "forbidden", refusal[1])
            return
        if self._active >= self.limits.max_streams:  # checked and taken without an await in between
            await self._fail(ws, "busy", f"server busy: this replica already holds {self.limits.max_streams} "
                                         "streams (max streams per replica); try again later")
            return
        self._active += 1
        sid = None
        inbox = _Inbox(self.limits.max_pending)
        policy = _StreamPolicy(self.limits.max_messages_per_s, self.limits.max_bad_messages)
        reader = asyncio.create_task(self._read(ws, inbox, policy))
        budget = _DecodeBudget(self.limits.decode_share, self._debts.take(address))
        try:
            sid = await self._open_stream(ws, inbox, budget)
            if sid is None:
                return
            while True:
                kind, seq, payload, _ = await inbox.get()
                if kind == "dropped":
                    self.dropped += payload
                    await ws.send_text(message("error", fatal=False, dropped=payload, message=(
                        f"{payload} message(s) from frame {seq} on dropped: they arrived while "
                        f"{self.limits.max_pending} were waiting (send a frame once the previous one is answered)")))
                elif kind == "too_big":
                    await self._refuse(ws, inbox, policy, (
                        f"frame {seq}: {payload} bytes is over the limit of {self.limits.max_message_bytes} bytes"))
                elif kind == "text":
                    if self._is_reset(payload):
                        await self._streams.reset(sid)
                        await ws.send_text(message("reset"))
                    else:
                        await self._refuse(ws, inbox, policy, f"frame {seq + 1}: expected a binary message (PNG or "
                                                              "JPEG) or {\"type\": \"reset\"}, got text")
                else:
                    try:
                        x = await self._decode(budget, self._streams.prepare, payload, self.limits, f"frame {seq}")
                    except InputError as exc:
                        await self._refuse(ws, inbox, policy, str(exc))
                        continue
                    payload = None  # the bytes are not needed while the frame waits for its batch
                    result = await self._animate((sid, x))
                    await ws.send_bytes(await self._in_pool(encode_png, result))
        except _Closed as closed:
            if str(closed) == "idle":
                await self._fail(ws, "idle", f"idle for {self.limits.idle_timeout_s:g} s (the idle timeout); "
                                             "stream closed")
            elif str(closed) == "policy":
                self.policy_closed += 1
                self._penalties.add(address)
                if self.limits.penalty_s > 0 and address:
                    # The close reason carries the penalty to Serve's proxy (jamsdk.serve.proxy_guard).
                    await self._fail(ws, "policy", f"{inbox.reason}; {address} may not open a stream for "
                                     f"{self.limits.penalty_s:g} s", _penalty_reason(self.limits.penalty_s, inbox.reason))
                else:
                    await self._fail(ws, "policy", inbox.reason)
        except Exception as exc:  # noqa: BLE001 - a server-side failure: tell the client why, then close
            if inbox.ended != "gone" and not _gone(exc):
                await self._fail(ws, "internal", f"server error: {type(exc).__name__}: {exc}")
                raise
        finally:
            reader.cancel()
            self._debts.leave(address, budget)
            self._active -= 1
            if sid is not None:
                await self._streams.close(sid)

    # -- internals -------------------------------------------------------------------------------

    def _refusal(self, headers: Any, query: str) -> Optional[Tuple[int, str]]:
        """``(HTTP status, reason)`` when the request may not come in, else None (jamsdk.access's rules)."""
        if not self.access.host_ok(headers.get("host")):
            return 403, f"Host {headers.get('host')!r} is not this service's name"
        if not self.access.origin_ok(headers):
            return 403, (f"a page from {headers.get('origin')!r} may not connect (only the service's own origin "
                         "or one given with --allow-origin)")
        if not self.access.token_ok(Access.token_from(headers, query)):
            return 401, "access token required: send 'Authorization: Bearer TOKEN' (or ?token=TOKEN)"
        return None

    async def _read(self, ws: WebSocket, inbox: _Inbox, policy: _StreamPolicy) -> None:
        """Receive every message as it comes into ``inbox`` (the first binary one is the source); a
        client over its message rate ends the stream at once (its waiting messages are dropped)."""
        seq = -1  # frames are numbered from 1; the source picture is message 0
        try:
            while True:
                try:
                    msg = await asyncio.wait_for(ws.receive(), timeout=self.limits.idle_timeout_s)
                except asyncio.TimeoutError:
                    inbox.end("idle")
                    return
                if msg.get("type") == "websocket.disconnect":
                    inbox.end("gone")
                    return
                why = policy.on_message()
                if why is not None:
                    inbox.abort("policy", why)
                    return
                if msg.get("bytes") is not None:
                    seq += 1
                    data = msg["bytes"]
                    if len(data) > self.limits.max_message_bytes:  # refused at once: never held while waiting
                        inbox.put("too_big", seq, len(data), droppable=seq > 0)
                    else:
                        inbox.put("bytes", seq, data, droppable=seq > 0)
                    data = msg = None
                elif msg.get("text") is not None:
                    text = msg["text"]
                    inbox.put("text", max(seq, 0), text if len(text) <= MAX_TEXT_CHARS else "", droppable=seq >= 0)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the connection broke: the stream ends
            inbox.end("gone")

    async def _in_pool(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _decode(self, budget: _DecodeBudget, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` in the decoding pool once the stream's budget allows it; the stream is charged its time."""
        wait = budget.wait()
        if wait > 0:
            self.paced_s += wait
            await asyncio.sleep(wait)
        result, error, seconds = await self._in_pool(_timed, fn, *args)
        budget.charge(seconds)
        if error is not None:
            raise error
        return result

    async def _open_stream(self, ws: WebSocket, inbox: _Inbox, budget: _DecodeBudget) -> Optional[int]:
        kind, _, payload, _ = await inbox.get()
        try:
            if kind == "too_big":
                raise InputError(f"source picture: {payload} bytes is over the limit of "
                                 f"{self.limits.max_message_bytes} bytes")
            if kind != "bytes":
                raise InputError("source picture: expected the first message to be binary PNG or JPEG bytes, got text")
            picture = await self._decode(budget, decode_image, payload, self.limits, "source picture")
            payload = None
            sid = await self._streams.open(picture)
        except InputError as exc:
            await self._fail(ws, "bad_source", str(exc))
            return None
        await ws.send_text(message("ready", stream=sid, image_size=self._sb.image_size, replica=self._replica,
                                   node=self._node))
        return sid

    async def _refuse(self, ws: WebSocket, inbox: _Inbox, policy: _StreamPolicy, text: str) -> None:
        """Answer a refused message with a non-fatal error; past the stream's budget of them, end the stream."""
        await ws.send_text(message("error", fatal=False, message=text))
        why = policy.on_bad()
        if why is not None:
            inbox.abort("policy", why)

    async def _deny(self, ws: WebSocket, status: int, text: str, retry_after: float) -> None:
        """Refuse the handshake with an HTTP answer (before anything of the client is read)."""
        try:
            await ws.send_denial_response(PlainTextResponse(text, status_code=status,
                                                            headers={"Retry-After": str(math.ceil(retry_after))}))
        except RuntimeError:  # a server without the denial-response extension: a bare 403
            await ws.close(code=CLOSE_CODES["policy"])

    async def _fail(self, ws: WebSocket, why: str, text: str, reason: Optional[str] = None) -> None:
        try:
            await ws.send_text(message("error", fatal=True, message=text))
            await ws.close(code=CLOSE_CODES[why], reason=reason or _close_reason(text))
        except Exception:  # noqa: BLE001 - the client may already be gone
            pass

    @staticmethod
    def _is_reset(text: str) -> bool:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return False
        return isinstance(data, dict) and data.get("type") == "reset"

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)
    async def _animate(self, items: List[Tuple[int, np.ndarray]]) -> List[Optional[np.ndarray]]:
        results = await self._streams.animate(items)  # uint8 crops in, uint8 results out
        self.batches += 1
        self.frames += sum(r is not None for r in results)
        return results


def build_app(model_dir: str, *, replicas: int = 1, limits: Optional[Limits] = None, backend: str = "auto",
              mode: str = "relative", precision: str = "fp32", threads: Optional[int] = None,
              cpus_per_replica: float = 1.0, gpus_per_replica: float = 0.0, batch_wait_s: float = 0.005,
              max_replicas_per_node: Optional[int] = None, ray_client: bool = False,
              access: Optional[Access] = None, max_batch: Any = "auto") -> Any:
    """The bound Serve application (pass it to :func:`run`); needs a connected Ray (the model is shipped).

    Args:
        max_replicas_per_node: spread replicas over nodes (see :func:`replicas_per_node`); None: Serve's own spread.
        max_batch: most frames per stage call in each replica, as ``StreamBatch(max_batch=...)`` takes
            it (default ``"auto"``).
        ray_client: connected through Ray Client (``ray://``): the model's bytes travel in the deployment's
            arguments, as a Ray Client object reference cannot.
        access: who may connect (default: loopback rules for 127.0.0.1); travels to the replicas as the
            token's digest.
    """
    from jamsdk.scale.bundle import ship

    limits = limits or Limits()
    access = access or Access()
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise InputError(f"--replicas: expected a whole number ≥ 1, got {replicas!r}")
    actor = {"num_cpus": cpus_per_replica}
    if gpus_per_replica:
        actor["num_gpus"] = gpus_per_replica
    from ray.serve.config import RequestRouterConfig

    from jamsdk.serve.routing import LeastStreamsRouter

    options: Dict[str, Any] = {"request_router_config": RequestRouterConfig(request_router_class=LeastStreamsRouter)}
    if max_replicas_per_node:
        options["max_replicas_per_node"] = max_replicas_per_node
    # Each WebSocket is one ongoing request for its whole life: let the replica's own limit answer
    # (with a clear message) before Serve's queueing would hold a connection silently.
    return AnimationService.options(num_replicas=replicas, max_ongoing_requests=limits.max_streams + 4,
                                    ray_actor_options=actor, **options).bind(
        ship(ray, model_dir, inline=ray_client), asdict(limits), backend=backend, mode=mode, precision=precision,
        threads=threads, batch_wait_s=batch_wait_s, access=asdict(access), max_batch=max_batch)


def replicas_per_node(nodes: List[Any], replicas: int, cpus: float = 1.0, gpus: float = 0.0) -> Optional[int]:
    """At most this many replicas per node spreads ``replicas`` evenly over the nodes that fit one.

    Serve's default placement spreads only as long as it is convenient; a cap makes ``--replicas N``
    land on ``min(N, nodes)`` nodes. None (no cap) for one node or one replica. ``nodes`` are
    :class:`~jamsdk.scale.connect.NodeInfo`.
    """
    fit = [n for n in nodes if n.cpus >= cpus and n.gpus >= gpus]
    if replicas < 2 or len(fit) < 2:
        return None
    return max(1, math.ceil(replicas / len(fit)))


def run(app: Any, host: str = "127.0.0.1", port: int = 8000, name: str = "jamsdk") -> None:
    """Start Serve's HTTP proxy on the head node at ``host:port`` (loopback by default) and deploy ``app``.

    Raises:
        ClusterError: an application of that name already runs on this Ray (another ``jamsdk serve``).
    """
    from jamsdk.errors import ClusterError

    if name in serve.status().applications:
        raise ClusterError(f"an application named {name!r} already runs on this Ray cluster (another jamsdk serve?): "
                           "stop that one first; deploying would replace it")
    serve.start(proxy_location="HeadOnly", http_options={"host": host, "port": port})
    serve.run(app, name=name, route_prefix="/")


def stop(name: str = "jamsdk") -> None:
    """Delete the application; stop Serve itself only when no other application is left on this Ray."""
    serve.delete(name)
    if not serve.status().applications:
        serve.shutdown()
