"""The WebSocket protocol of ``jamsdk serve`` (shared by the server and :mod:`jamsdk.serve.client`).

One WebSocket connection is one stream, at ``ws://HOST:PORT/stream``:

1. The client sends the source picture as one binary message (PNG or JPEG bytes).
   The server answers a text message ``{"type": "ready", "stream": id, "image_size": S, "replica": R,
   "node": N}`` (R, N: the Serve replica holding the stream and its Ray node).
2. The client sends each driving frame as a binary message (PNG or JPEG); the server answers
   each with one binary message: the animated frame as PNG (``S × S`` RGB), in order.
3. A text message ``{"type": "reset"}`` makes the next frame the relative-mode reference
   (answered ``{"type": "reset"}``).

Errors are text messages ``{"type": "error", "message": ..., "fatal": bool}``. A bad frame (not an
image, too many bytes, too large) is answered with a non-fatal error in its place and the stream
goes on; a fatal error (no room for another stream, refused access, a bad source picture, idle too
long, a server-side failure) is followed by the server closing the connection with the code given
in :data:`CLOSE_CODES`.

A client should send the next frame once the previous one is answered. Frames that arrive while
``max_pending`` of the stream's frames already wait are not all kept: the oldest waiting ones are
dropped, and each run of dropped messages is answered, in its place, by one non-fatal error with
``"dropped": n`` (so one stream's flood costs memory and time of its own only). A stream that sends
more than ``max_messages_per_s`` messages a second, or more than ``max_bad_messages`` refused ones
a minute, is closed (code 1008, ``policy``), and its client's address is refused (HTTP 429 with
``Retry-After``) for ``penalty_s`` seconds: see :mod:`jamsdk.serve.policy`.

Access (:mod:`jamsdk.access`): beyond loopback, ``Authorization: Bearer TOKEN`` on the WebSocket
handshake (a browser, which cannot set headers, adds ``?token=TOKEN`` to the URL); a browser page
may connect only from the service's own origin or an origin given with ``--allow-origin``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jamsdk.errors import InputError
from jamsdk.image_header import check_image_bytes, max_pixels

ROUTE = "/stream"
CLOSE_CODES = {"busy": 1013, "bad_source": 1003, "idle": 1001, "internal": 1011, "forbidden": 1008, "policy": 1008}


@dataclass(frozen=True)
class Limits:
    """Per-replica limits of the service.

    Attributes:
        max_streams: streams one replica holds at once (more are refused with ``busy``).
        max_message_bytes: largest picture or frame message accepted.
        max_side: largest picture or frame side in pixels, as its header declares it.
        idle_timeout_s: a stream that sends nothing for this long is closed.
        max_pixels: largest picture or frame in pixels, as its header declares it (default: the
            process-wide limit of :mod:`jamsdk.image_header` where the service is built).
        max_pending: a stream's frames waiting at once; older ones are dropped beyond it.
        decode_threads: threads of the replica's decoding pool (pictures decode off the event loop).
        max_messages_per_s: messages a stream may send a second (a burst of as many); a stream that
            sends more is closed (:mod:`jamsdk.serve.policy`).
        max_bad_messages: refused messages a stream may send a minute (a burst of as many); more
            close it.
        penalty_s: after such a close, the client's address may not open a stream for this long
            (0: no penalty; set it to 0 behind a reverse proxy or NAT, where clients share an address).
        decode_share: the fraction of each second a stream's pictures may take to decode, on
            average; a slow one delays the stream's next one (:class:`~jamsdk.serve.policy.DecodeBudget`;
            0: no budget). 0.1: a 256² PNG frame (~2 ms) at 50 frames/s, a 720p PNG (~25 ms) at 4.
    """

    max_streams: int = 16
    max_message_bytes: int = 4 << 20
    max_side: int = 4096
    idle_timeout_s: float = 60.0
    max_pixels: int = field(default_factory=max_pixels)
    max_pending: int = 2
    decode_threads: int = 2
    max_messages_per_s: float = 60.0
    max_bad_messages: int = 32
    penalty_s: float = 10.0
    decode_share: float = 0.1

    def __post_init__(self) -> None:
        for name in ("max_streams", "max_message_bytes", "max_side", "max_pixels", "max_pending", "decode_threads",
                     "max_bad_messages"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name}: expected a whole number ≥ 1, got {value!r}")
        for name in ("idle_timeout_s", "max_messages_per_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InputError(f"{name}: expected a number > 0, got {value!r}")
        if isinstance(self.penalty_s, bool) or not isinstance(self.penalty_s, (int, float)) or not self.penalty_s >= 0:
            raise InputError(f"penalty_s: expected a number ≥ 0, got {self.penalty_s!r}")
        share = self.decode_share
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
            raise InputError(f"decode_share: expected a fraction from 0 (no budget) to 1, got {share!r}")


def encode_png(rgb: np.ndarray) -> bytes:
    """``(H, W, 3)`` uint8 RGB → PNG bytes (lossless: what the server sends back)."""
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise InputError(f"cannot encode a {rgb.shape} {rgb.dtype} image as PNG")
    return buf.tobytes()


def decode_image(data: bytes, limits: Limits, what: str) -> np.ndarray:
    """PNG/JPEG bytes → ``(H, W, 3)`` uint8 RGB; InputError says what was expected and what came.

    Byte count, format and the size the header declares are checked before anything is decoded, so
    a small file that declares a huge picture costs microseconds, not seconds and gigabytes.
    """
    import cv2

    from jamsdk.pictures import decode_bytes

    if not isinstance(data, (bytes, bytearray)):
        raise InputError(f"{what}: expected a binary message with PNG or JPEG bytes, got {type(data).__name__}")
    if len(data) > limits.max_message_bytes:
        raise InputError(f"{what}: {len(data)} bytes is over the limit of {limits.max_message_bytes} bytes")
    check_image_bytes(bytes(data), what, limits.max_pixels, limits.max_side)
    img = decode_bytes(bytes(data), what, cv2.IMREAD_COLOR)
    return np.ascontiguousarray(img[:, :, ::-1])


def message(kind: str, **fields: Any) -> str:
    """A text (JSON) message of the protocol."""
    return json.dumps({"type": kind, **fields})
