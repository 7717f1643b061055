"""`jamsdk serve` against hostile clients, on a local Ray: missing tokens, other sites' pages, DNS
rebinding, pictures that declare a huge size, and floods — the good streams keep going."""

import base64
import json
import os
import socket
import struct
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from jamsdk.errors import EngineError, InputError

pytest.importorskip("ray")
pytest.importorskip("fastapi")
pytest.importorskip("websockets")

TOKEN = "serve-test-token-0123456789"
PENALTY_S = 6.0  # short (every client of these tests shares 127.0.0.1, so a penalty), but longer than a
# slow machine takes from a close to the next handshake
RNG = np.random.default_rng(3)
PICTURE = RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)
FRAMES = [RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def guarded(tiny_batched, ray_local):
    """The service with a token on 127.0.0.1 (its own Serve instance: the HTTP port is per instance)."""
    from ray import serve

    from jamsdk.access import Access
    from jamsdk.serve import app
    from jamsdk.serve.protocol import Limits

    serve.shutdown()
    port = free_port()
    limits = Limits(max_streams=6, max_message_bytes=2 << 20, idle_timeout_s=30.0, penalty_s=PENALTY_S)
    app.run(app.build_app(str(tiny_batched), limits=limits, backend="onnxruntime", threads=1, cpus_per_replica=0.5,
                          access=Access.from_options("127.0.0.1", TOKEN)), host="127.0.0.1", port=port)
    yield f"127.0.0.1:{port}"
    serve.delete("jamsdk")
    serve.shutdown()


def health(address, headers=None):
    req = urllib.request.Request(f"http://{address}/health", headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _png_declaring(width: int, height: int, size: int = 1_200_000) -> bytes:
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    body = zlib.compress(b"\x00" * (size * 50), 9)[:size]
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def _raw_handshake(address: str, headers: dict, first_message: bool = True) -> str:
    """A WebSocket handshake with exactly these headers: the server's first text message, else its status line."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET /stream HTTP/1.1", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(4096)
        head, rest = data.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101") or not first_message:
            return head.decode(errors="replace").splitlines()[0]

        def take(n: int) -> bytes:
            nonlocal rest
            while len(rest) < n:
                rest += s.recv(4096)
            out, rest = rest[:n], rest[n:]
            return out

        while True:  # server frames are unmasked; skip pings until the first text frame
            b0, b1 = take(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", take(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", take(8))[0]
            payload = take(n)
            if b0 & 0x0F == 1:
                return payload.decode()


def test_token_is_required_and_checked(guarded, monkeypatch):
    from jamsdk.serve.client import StreamClient

    monkeypatch.delenv("JAMSDK_TOKEN", raising=False)
    url = f"ws://{guarded}/stream"
    with pytest.raises(EngineError, match="access token required"):
        StreamClient(url, source=PICTURE, timeout=60)
    with pytest.raises(EngineError, match="access token required"):
        StreamClient(url, source=PICTURE, timeout=60, token="not-the-token-at-all")
    with StreamClient(url, source=PICTURE, timeout=60, token=TOKEN) as stream:
        assert stream.animate(FRAMES[0]).shape == (64, 64, 3)
        # No permessage-deflate (Serve's proxy would accept it): pictures are compressed already.
        assert stream._ws.protocol.extensions == []
    monkeypatch.setenv("JAMSDK_TOKEN", TOKEN)  # the documented default
    with StreamClient(url, source=PICTURE, timeout=60) as stream:
        assert stream.animate(FRAMES[1]).shape == (64, 64, 3)
    with pytest.raises(urllib.error.HTTPError) as err:
        health(guarded)
    assert err.value.code == 401
    assert health(guarded, {"Authorization": f"Bearer {TOKEN}"})["refused"] >= 2


def test_other_sites_and_rebinding_names_are_refused(guarded):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    evil = _raw_handshake(guarded, {"Host": guarded, "Origin": "http://evil.example", **auth})
    assert '"fatal": true' in evil and "may not connect" in evil
    ok = _raw_handshake(guarded, {"Host": guarded, "Origin": f"http://{guarded}", **auth}, first_message=False)
    assert ok.startswith("HTTP/1.1 101")  # its own origin: the stream opens and waits for the source
    # A page on a rebinding name that learned the token still gets nothing without it.
    rebinding = _raw_handshake(guarded, {"Host": f"rebind.example:{guarded.split(':')[1]}",
                                         "Origin": f"http://rebind.example:{guarded.split(':')[1]}"})
    assert "access token required" in rebinding


def test_oversized_and_malformed_frames_do_not_stall_good_streams(guarded):
    from jamsdk.serve.client import StreamClient

    url = f"ws://{guarded}/stream"
    bomb = _png_declaring(20000, 20000)
    rss0 = health(guarded, {"Authorization": f"Bearer {TOKEN}"})["rss_bytes"]
    good_times, errors, stop = [], [], threading.Event()

    def good():
        try:
            with StreamClient(url, source=PICTURE, timeout=60, token=TOKEN) as stream:
                while not stop.is_set():
                    t0 = time.perf_counter()
                    stream.animate(FRAMES[len(good_times) % 3])
                    good_times.append(time.perf_counter() - t0)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=good) for _ in range(2)]
    for t in threads:
        t.start()
    with StreamClient(url, source=PICTURE, timeout=60, token=TOKEN) as hostile:
        t0 = time.perf_counter()
        for i in range(10):
            with pytest.raises(InputError, match="20000x20000 is larger than the limit of 4096 pixels per side"):
                hostile.animate(bomb)
            with pytest.raises(InputError, match="cannot decode as a picture"):
                hostile.animate(b"\x89PNG\r\n\x1a\n" + os.urandom(500))
        hostile_s = time.perf_counter() - t0
        assert hostile.animate(FRAMES[0]).shape == (64, 64, 3)  # its stream goes on
    stop.set()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(good_times) >= 4
    assert hostile_s < 30  # 20 refusals: milliseconds each, not 6.5 s of decoding each
    rss1 = health(guarded, {"Authorization": f"Bearer {TOKEN}"})["rss_bytes"]
    if rss0 and rss1:
        assert rss1 - rss0 < 300 << 20  # no 1.2 GB decode happened


def test_a_flood_is_dropped_not_queued(guarded):
    """A client that sends 40 frames without reading: the oldest are dropped, answered by notes."""
    import websockets.sync.client as ws_client

    from jamsdk.serve.protocol import encode_png

    frame = encode_png(FRAMES[0])
    with ws_client.connect(f"ws://{guarded}/stream", additional_headers={"Authorization": f"Bearer {TOKEN}"},
                           max_size=None) as ws:
        ws.send(encode_png(PICTURE))
        assert json.loads(ws.recv(timeout=60))["type"] == "ready"
        for _ in range(40):
            ws.send(frame)
        answered, dropped = 0, 0
        while answered + dropped < 40:
            reply = ws.recv(timeout=60)
            if isinstance(reply, bytes):
                answered += 1
            else:
                note = json.loads(reply)
                assert note["type"] == "error" and not note["fatal"], note
                dropped += note["dropped"]
    assert answered + dropped == 40 and dropped > 0  # at most max_pending waited at any time
    assert health(guarded, {"Authorization": f"Bearer {TOKEN}"})["dropped"] >= dropped


def test_loopback_service_refuses_rebinding_names_and_other_origins():
    from types import SimpleNamespace

    from jamsdk.access import Access
    from jamsdk.serve.app import AnimationService

    refusal = AnimationService.func_or_class._refusal
    me = SimpleNamespace(access=Access.from_options("127.0.0.1"))
    assert refusal(me, {"host": "127.0.0.1:8000"}, "") is None
    assert refusal(me, {"host": "localhost:8000", "origin": "http://localhost:8000"}, "") is None
    assert refusal(me, {"host": "rebind.example:8000"}, "")[0] == 403
    assert refusal(me, {"host": "127.0.0.1:8000", "origin": "http://evil.example"}, "")[0] == 403
    allowed = SimpleNamespace(access=Access.from_options("127.0.0.1", origins=["http://localhost:3000"]))
    assert refusal(allowed, {"host": "127.0.0.1:8000", "origin": "http://localhost:3000",
                             "sec-fetch-site": "same-site"}, "") is None


def _until_closed(ws) -> tuple:
    """Read until the server closes: (frames, non-fatal errors, the fatal message, the close code)."""
    from websockets.exceptions import ConnectionClosed

    frames, notes, fatal = 0, [], None
    try:
        while True:
            reply = ws.recv(timeout=60)
            if isinstance(reply, bytes):
                frames += 1
                continue
            data = json.loads(reply)
            if data.get("fatal"):
                fatal = data["message"]
            else:
                notes.append(data)
    except ConnectionClosed as exc:
        return frames, notes, fatal, exc.rcvd.code if exc.rcvd else None


def _wait_out_the_penalty(url):
    from jamsdk.serve.client import StreamClient

    time.sleep(PENALTY_S)
    with StreamClient(url, source=PICTURE, timeout=60, token=TOKEN) as stream:  # the address may open again
        assert stream.animate(FRAMES[0]).shape == (64, 64, 3)


def test_a_flood_over_the_message_rate_is_closed_and_its_address_waits(guarded):
    """400 frames sent as fast as the socket takes them: closed once the burst of 60 is spent, then
    the address's next handshake is refused with 429 (by Serve's proxy) while a stream opened
    before goes on."""
    import websockets.sync.client as ws_client

    from jamsdk.serve.client import StreamClient
    from jamsdk.serve.protocol import encode_png

    url = f"ws://{guarded}/stream"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    before = health(guarded, auth)
    frame = encode_png(FRAMES[0])
    with StreamClient(url, source=PICTURE, timeout=60, token=TOKEN) as good:
        with ws_client.connect(url, additional_headers=auth, max_size=None) as ws:
            ws.send(encode_png(PICTURE))
            assert json.loads(ws.recv(timeout=60))["type"] == "ready"
            sent = 0
            try:
                for _ in range(400):
                    ws.send(frame)
                    sent += 1
            except Exception:  # noqa: BLE001 - the server may close while we still send
                pass
            frames, notes, fatal, code = _until_closed(ws)
        assert code == 1008, (code, fatal)
        assert "more than 60 messages a second" in fatal and "may not open a stream for 6 s" in fatal
        assert frames + sum(n.get("dropped", 0) for n in notes) < sent  # the rest was never looked at
        with pytest.raises(EngineError, match=r"HTTP 429.*may not open a stream for [1-6] s more"):
            StreamClient(url, source=PICTURE, timeout=60, token=TOKEN)
        # The probe's S11: naming another address in X-Forwarded-For (believed from 127.0.0.1 by
        # uvicorn's default) escaped the penalty. No proxy is named here, so the header is not believed.
        for forwarded in ("10.20.30.40", "127.0.0.3, 10.20.30.40"):
            status = _raw_handshake(guarded, {"Host": guarded, "Authorization": f"Bearer {TOKEN}",
                                              "X-Forwarded-For": forwarded})
            assert status.startswith("HTTP/1.1 429"), (forwarded, status)
        assert good.animate(FRAMES[1]).shape == (64, 64, 3)  # the stream opened before is not touched
    after = health(guarded, auth)
    assert after["policy_closed"] == before["policy_closed"] + 1
    # Serve's proxy refused the handshake (jamsdk.serve.proxy_guard): the replica never saw it.
    assert after["proxy_guard"] is True and after["penalized"] == before["penalized"]
    _wait_out_the_penalty(url)


def test_a_stream_of_refused_messages_is_closed_after_its_budget(guarded):
    """32 refused messages a minute (a burst of 32) are answered one by one; the 33rd closes the
    stream, or a later one by as many as the budget refilled meanwhile (32 a minute)."""
    import math

    from jamsdk.serve.client import StreamClient

    url = f"ws://{guarded}/stream"
    outcomes = []
    with StreamClient(url, source=PICTURE, timeout=60, token=TOKEN) as stream:
        t0 = time.monotonic()
        for _ in range(40):
            try:
                stream.animate(b"\x89PNG\r\n\x1a\n" + os.urandom(500))
                outcomes.append("frame")
            except InputError:
                outcomes.append("refused")
            except EngineError as exc:
                outcomes.append(str(exc))
                break
        refill = math.ceil((time.monotonic() - t0) * 32 / 60)
    closed_at = next((i for i, o in enumerate(outcomes) if o not in ("refused", "frame")), None)
    assert closed_at is not None and 33 <= closed_at <= 33 + refill, (refill, outcomes)
    assert outcomes[:closed_at] == ["refused"] * closed_at  # each answered in its place, the last one too
    assert "more than 32 refused messages in a minute" in outcomes[closed_at], outcomes
    _wait_out_the_penalty(url)


def test_valid_but_huge_frames_wait_for_their_streams_budget(guarded):
    """The probe's S13: valid 4096² frames cut four good streams to 0.36×. A stream's decoding may take
    a tenth of its time: each 2048² frame (tens of ms to decode) holds the next one for ten times as
    long, while a good stream's 64² frames go on without waiting."""
    import cv2

    from jamsdk.serve.client import StreamClient
    from jamsdk.serve.protocol import encode_png

    url = f"ws://{guarded}/stream"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    yy, xx = np.mgrid[0:2048, 0:2048]
    big = encode_png(cv2.merge([(xx // 8).astype(np.uint8), (yy // 8).astype(np.uint8), np.zeros((2048, 2048),
                                                                                                 np.uint8)]))
    paced0 = health(guarded, auth)["paced_s"]
    good_times, stop = [], threading.Event()

    def good():
        with StreamClient(url, source=PICTURE, timeout=60, token=TOKEN) as stream:
            while not stop.is_set():
                t0 = time.perf_counter()
                stream.animate(FRAMES[len(good_times) % 3])
                good_times.append(time.perf_counter() - t0)

    thread = threading.Thread(target=good)
    thread.start()
    with StreamClient(url, source=PICTURE, timeout=60, token=TOKEN) as heavy:
        t0 = time.perf_counter()
        for _ in range(4):
            assert heavy.animate(big).shape == (64, 64, 3)  # valid: animated, only later
        heavy_s = time.perf_counter() - t0
    stop.set()
    thread.join(60)
    paced = health(guarded, auth)["paced_s"] - paced0
    assert paced >= 1.0 and heavy_s >= paced, (heavy_s, paced)  # three waits of ≥ 10 × a 2048² decode
    assert len(good_times) >= 3 and max(good_times) < heavy_s  # the good stream never waited for them
