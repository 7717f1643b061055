"""A small client of ``jamsdk serve``: one :class:`StreamClient` is one live stream.

::

    from jamsdk.serve.client import StreamClient

    with StreamClient("ws://127.0.0.1:8000/stream", source=picture) as stream:   # (H, W, 3) uint8 RGB
        for frame in frames:
            out = stream.animate(frame)                                          # (S, S, 3) uint8 RGB

Frames travel as PNG (lossless) unless given as ready-made PNG/JPEG bytes. A frame the server
rejects raises :class:`~jamsdk.errors.InputError` with the server's message and the stream goes
on; a closed stream (busy server, refused access, bad source, idle timeout, a client over the
service's message limits and its address's penalty afterwards) raises
:class:`~jamsdk.errors.EngineError` with the reason. A service beyond loopback needs its access
token: ``token=`` or the environment variable ``JAMSDK_TOKEN`` (sent as ``Authorization: Bearer``).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from jamsdk.errors import EngineError, InputError
from jamsdk.scale._ray import require_ray
from jamsdk.serve.protocol import ROUTE, encode_png

DEFAULT_URL = f"ws://127.0.0.1:8000{ROUTE}"


class StreamClient:
    """One stream: connect, send the source picture, then animate frames one by one.

    Args:
        url: the service's stream endpoint (``ws://HOST:PORT/stream``).
        source: the picture, ``(H, W, 3)`` uint8 RGB or PNG/JPEG bytes.
        timeout: seconds to wait for the connection and for each answer.
        token: the service's access token (default: ``$JAMSDK_TOKEN``; none needed on loopback).

    Attributes:
        stream_id: the server's id of this stream.
        image_size: the model's side S.
        replica, node: the Serve replica holding the stream and the Ray node it runs on.
    """

    def __init__(self, url: str = DEFAULT_URL, *, source: np.ndarray | bytes, timeout: float = 30.0,
                 token: str | None = None):
        from jamsdk.access import ENV

        sync_client = require_ray("websockets.sync.client")
        self.url, self.timeout = url, timeout
        token = token if token is not None else os.environ.get(ENV) or None
        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            # Entered by hand: the connection lives as long as this object (closed by close()); entering
            # is what websockets ≥ 16 expects of connect() and a no-op wrapper in older versions.
            # compression=None: PNG and JPEG are compressed already, so permessage-deflate (websockets'
            # default, and Serve's proxy accepts it) would only cost CPU on both ends.
            self._ws = sync_client.connect(url, open_timeout=timeout, max_size=None, compression=None,
                                           additional_headers=headers).__enter__()
        except (OSError, TimeoutError) as exc:
            raise EngineError(f"cannot connect to {url}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - websockets' handshake errors (e.g. a 404 route)
            raise EngineError(f"cannot open a stream at {url}: {_refusal(exc)}") from None
        try:
            reply = self._exchange(_payload(source, "source"), "source picture")
            if not isinstance(reply, dict) or reply.get("type") != "ready":
                raise EngineError(f"{url}: expected a 'ready' message after the source, got {reply!r}")
        except BaseException:
            self.close()
            raise
        self.stream_id: int = reply["stream"]
        self.image_size: int = reply["image_size"]
        self.replica: str = str(reply.get("replica", ""))
        self.node: str = str(reply.get("node", ""))

    def animate(self, frame: np.ndarray | bytes) -> np.ndarray:
        """Send one driving frame; returns the animated ``(S, S, 3)`` uint8 RGB frame."""
        import cv2

        reply = self._exchange(_payload(frame, "frame"), "frame")
        if not isinstance(reply, bytes):
            raise EngineError(f"{self.url}: expected an animated frame, got {reply!r}")
        img = cv2.imdecode(np.frombuffer(reply, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise EngineError(f"{self.url}: the server's answer is not a PNG image ({len(reply)} bytes)")
        return np.ascontiguousarray(img[:, :, ::-1])

    def reset(self) -> None:
        """Make the next frame the relative-mode reference."""
        self._exchange(json.dumps({"type": "reset"}), "reset")

    def close(self) -> None:
        """Close the connection (the server forgets the stream). Safe to call twice."""
        ws, self._ws = getattr(self, "_ws", None), None
        if ws is not None:
            ws.close()

    def __enter__(self) -> "StreamClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _exchange(self, payload: bytes | str, what: str) -> Any:
        from websockets.exceptions import ConnectionClosed

        if self._ws is None:
            raise EngineError("this stream is closed")
        try:
            self._ws.send(payload)
            reply = self._ws.recv(timeout=self.timeout)
        except ConnectionClosed as exc:
            raise EngineError(f"{self.url}: the stream was closed ({_close_reason(exc)})") from None
        except TimeoutError:
            raise EngineError(f"{self.url}: no answer to the {what} within {self.timeout:g} s") from None
        if isinstance(reply, bytes):
            return reply
        data = json.loads(reply)
        if data.get("type") == "error":
            if data.get("fatal"):
                self.close()
                raise EngineError(f"{self.url}: {data.get('message')}")
            raise InputError(str(data.get("message")))
        return data


def _payload(image: np.ndarray | bytes, what: str) -> bytes:
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InputError(f"{what}: expected an (H, W, 3) uint8 RGB array or PNG/JPEG bytes, got {got}")
    return encode_png(image)


def _refusal(exc: Exception) -> str:
    """A refused handshake in words: the HTTP status and the server's reason (a 429 says how long to wait)."""
    response = getattr(exc, "response", None)
    body = getattr(response, "body", None) or b""
    reason = bytes(body[:300]).decode("utf-8", "replace").strip()
    return f"{exc}: {reason}" if reason else str(exc)


def _close_reason(exc: Any) -> str:
    rcvd = getattr(exc, "rcvd", None)
    if rcvd is not None:
        return f"code {rcvd.code}: {rcvd.reason}" if rcvd.reason else f"code {rcvd.code}"
    return str(exc)
