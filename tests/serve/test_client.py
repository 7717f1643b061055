"""jamsdk.serve.client.StreamClient against a stand-in server that speaks jamsdk.serve.protocol (no Ray):
the handshake, frames, a non-fatal error, reset, a fatal error and a refused connection. The client
against the real service is tested in tests/serve/test_serve.py (full suite)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from jamsdk.errors import EngineError, InputError
from jamsdk.serve.protocol import ROUTE, encode_png, message

pytest.importorskip("websockets")
from websockets.sync.server import serve  # noqa: E402

SIDE = 8
RESULT = np.arange(SIDE * SIDE * 3, dtype=np.uint8).reshape(SIDE, SIDE, 3)


def _handler(ws) -> None:  # noqa: ANN001 - a websockets ServerConnection
    # As protocol.py says: the source first, answered "ready"; each frame answered by a PNG in its place;
    # a frame that is not a picture by a non-fatal error; {"type": "reset"} by itself; "fatal" closes.
    ws.recv()
    ws.send(message("ready", stream=7, image_size=SIDE, replica="r1", node="n1"))
    for data in ws:
        if isinstance(data, str):
            ws.send(message("reset"))
        elif data == b"fatal":
            ws.send(message("error", message="server busy", fatal=True))
            ws.close(1013)
            return
        elif not data.startswith(b"\x89PNG"):
            ws.send(message("error", message="frame 1: cannot decode as a picture", fatal=False))
        else:
            ws.send(encode_png(RESULT))


@pytest.fixture()
def url():
    with serve(_handler, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}{ROUTE}"
        server.shutdown()


def test_a_stream_frames_errors_and_reset(url):
    from jamsdk.serve.client import StreamClient

    picture = np.zeros((16, 16, 3), np.uint8)
    with StreamClient(url, source=picture, timeout=10) as stream:
        assert (stream.stream_id, stream.image_size, stream.replica, stream.node) == (7, SIDE, "r1", "n1")
        np.testing.assert_array_equal(stream.animate(picture), RESULT)  # PNG decoded back to RGB
        with pytest.raises(InputError, match="cannot decode as a picture"):
            stream.animate(b"not a picture")
        np.testing.assert_array_equal(stream.animate(encode_png(picture)), RESULT)  # the stream goes on
        stream.reset()
        with pytest.raises(EngineError, match="server busy"):
            stream.animate(b"fatal")
        with pytest.raises(EngineError, match="this stream is closed"):
            stream.animate(picture)


def test_nothing_listening_is_a_clear_error():
    from jamsdk.scale.loopback import free_port
    from jamsdk.serve.client import StreamClient

    with pytest.raises(EngineError, match="cannot connect to ws://127.0.0.1:"):
        StreamClient(f"ws://127.0.0.1:{free_port()}{ROUTE}", source=np.zeros((8, 8, 3), np.uint8), timeout=5)
