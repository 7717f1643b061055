"""``jamsdk live`` against hostile requests: other sites, DNS rebinding, missing tokens, floods of
actions, half-open connections. Each test asserts the refusal and that nothing changed."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest
from live_helpers import ASSETS, DRIVING, free_port, live_process, wait_for

from jamsdk.access import COOKIE, Access
from jamsdk.errors import InputError
from jamsdk.live import server as live_server
from jamsdk.live.session import FrameHub

TOKEN = "a-long-enough-test-token-123"


class StubSession:
    """The server's view of a session: stats, a frame hub and control actions (recorded)."""

    def __init__(self) -> None:
        self.hub = FrameHub()
        self.posted: list[tuple[str, str | None]] = []

    def stats(self) -> dict:
        return {"frames": 7, "driving": "/home/someone/private/clip.mp4"}

    def control(self, action: str, value: str | None = None) -> None:
        self.posted.append((action, value))


@pytest.fixture()
def serving():
    """``start(access)`` → (server, port) on 127.0.0.1 in this process; stopped afterwards."""
    servers = []

    def start(access: Access | None = None, **kw):
        session = StubSession()
        srv = live_server.make_server("127.0.0.1", 0, session, access=access)
        for k, v in kw.items():
            setattr(srv, k, v)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(srv)
        return srv, srv.server_address[1]

    yield start
    for srv in servers:
        srv.session.hub.close()
        srv.shutdown()
        srv.server_close()


def request(port: int, method: str, path: str, headers: dict | None = None, body: bytes | None = None,
            host: str | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True)
        conn.putheader("Host", host or f"127.0.0.1:{port}")
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_cross_site_simple_post_is_refused_and_changes_nothing(serving):
    srv, port = serving()
    # A "simple" request no browser preflights: text/plain from another site.
    status, _, body = request(port, "POST", "/control/layout", {"Origin": "http://evil.example",
                                                               "Content-Type": "text/plain"}, b"x")
    assert status == 403 and b"cross-site" in body
    status, _, _ = request(port, "POST", "/control/search", {"Sec-Fetch-Site": "cross-site"}, b"")
    assert status == 403
    status, _, _ = request(port, "POST", "/control/reset", {"Origin": "null"}, b"")
    assert status == 403
    status, _, _ = request(port, "POST", "/control/reset", {"Origin": f"http://127.0.0.1:{port + 1}"}, b"")
    assert status == 403  # another port is another origin
    assert srv.session.posted == []
    # The page itself (same origin) and scripts without browser headers still work.
    status, _, _ = request(port, "POST", "/control/layout", {"Origin": f"http://127.0.0.1:{port}",
                                                            "Sec-Fetch-Site": "same-origin"}, b"")
    assert status == 200
    status, _, _ = request(port, "POST", "/control/regions?to=on")
    assert status == 200
    assert srv.session.posted == [("layout", None), ("regions", "on")]


def test_dns_rebinding_host_is_refused(serving):
    _, port = serving()
    for path in ("/stats.json", "/stream.mjpg", "/"):
        status, _, body = request(port, "GET", path, host=f"evil.example:{port}")
        assert status == 403, path
        assert b"private" not in body  # the stats (local paths) never left
    assert request(port, "GET", "/stats.json", host=f"localhost:{port}")[0] == 200
    assert request(port, "GET", "/stats.json", host=f"127.0.0.1:{port}")[0] == 200


def test_other_sites_cannot_embed_the_stream_or_read_stats(serving):
    _, port = serving()
    for path in ("/stats.json", "/stream.mjpg"):
        assert request(port, "GET", path, {"Sec-Fetch-Site": "cross-site"})[0] == 403
        # same-site is another origin too: a page on another port of this host, or a sibling subdomain
        assert request(port, "GET", path, {"Sec-Fetch-Site": "same-site"})[0] == 403, path
    assert request(port, "GET", "/stats.json", {"Sec-Fetch-Site": "same-origin"})[0] == 200  # the page itself
    # A link from elsewhere may open the page (a navigation); it is framed by no one.
    status, headers, _ = request(port, "GET", "/", {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})
    assert status == 200 and headers["X-Frame-Options"] == "DENY"


def test_token_bearer_query_and_cookie(serving):
    srv, port = serving(Access.from_options("127.0.0.1", TOKEN))
    assert request(port, "GET", "/stats.json")[0] == 401
    assert request(port, "GET", "/stats.json", {"Authorization": "Bearer wrong-token-wrong-token"})[0] == 401
    assert request(port, "POST", "/control/reset")[0] == 401
    assert srv.session.posted == []
    assert request(port, "GET", "/stats.json", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
    # The browser's way: /?token= once → an HttpOnly SameSite=Strict cookie and the token off the URL.
    status, headers, _ = request(port, "GET", f"/?token={TOKEN}")
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}={TOKEN};") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert request(port, "GET", "/", {"Cookie": f"{COOKIE}={TOKEN}"})[0] == 200
    assert request(port, "POST", "/control/search", {"Cookie": f"{COOKIE}={TOKEN}"})[0] == 200
    assert request(port, "GET", "/?token=wrong-token-wrong-token")[0] == 401


def test_big_or_chunked_bodies_are_refused(serving):
    srv, port = serving()
    assert request(port, "POST", "/control/reset", body=b"x" * 5000)[0] == 413
    status, _, _ = request(port, "POST", "/control/reset", {"Transfer-Encoding": "chunked"})
    assert status == 411
    assert srv.session.posted == []


def test_half_open_connections_are_capped_evicted_timed_out_and_quiet(serving, monkeypatch, capsys):
    monkeypatch.setattr(live_server._Handler, "timeout", 2.0)
    srv, port = serving(max_connections=8)
    held = []
    for _ in range(8):  # each sends half a request and stops (slowloris)
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /stats.json HTTP/1.1\r\nHost: 127.0.0.1")
        held.append(s)
    wait_for(lambda: srv._open == 8, timeout=10)
    # The cap is full of half-open connections: a real request takes the place of the oldest one.
    assert request(port, "GET", "/stats.json")[0] == 200
    assert srv.evicted >= 1
    # When every connection is really serving (streams), a new one gets 503 at once, without a thread.
    streams = []
    for _ in range(8):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        streams.append(s)
    wait_for(lambda: srv._open == 8 and not srv._waiting, timeout=10)
    extra = socket.create_connection(("127.0.0.1", port), timeout=5)
    assert extra.recv(100).startswith(b"HTTP/1.1 503")
    extra.close()
    assert srv.refused >= 1
    for s in held + streams:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # RST: viewers that vanish mid-stream
    for _ in range(20):
        srv.session.hub.publish(b"\xff\xd8" + b"\x00" * 50_000)
        time.sleep(0.02)
    wait_for(lambda: srv._open == 0, timeout=15)
    # Half-open connections that nobody evicts are closed by the timeout.
    lone = socket.create_connection(("127.0.0.1", port))
    lone.sendall(b"GET / HTTP/1.1\r\n")
    wait_for(lambda: srv._open == 1, timeout=10)
    wait_for(lambda: srv._open == 0, timeout=10)
    lone.close()
    assert request(port, "GET", "/stats.json")[0] == 200
    err = capsys.readouterr().err
    assert "Traceback" not in err and "BrokenPipe" not in err and "ConnectionReset" not in err


def test_viewers_cannot_take_the_room_of_the_page(serving):
    """34 viewers from one local script (the cap is 32 connections): past 24 they get 503 and go, so
    the page and /stats.json still answer (they got 503 when viewers filled all 32)."""
    srv, port = serving()
    viewers, refused = [], 0
    for _ in range(34):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        viewers.append(s)
    for s in viewers:
        head = s.recv(200)
        refused += head.startswith(b"HTTP/1.1 503")
    assert refused == 34 - live_server.MAX_STREAMS
    wait_for(lambda: srv.streams == live_server.MAX_STREAMS, timeout=10)
    assert request(port, "GET", "/stats.json")[0] == 200
    assert request(port, "GET", "/")[0] == 200
    for s in viewers:
        s.close()
    srv.session.hub.publish(b"\xff\xd8" + b"\x00" * 1000)  # the viewers' threads notice they are gone
    wait_for(lambda: srv.streams == 0, timeout=15)


def test_access_policy_rules(monkeypatch):
    monkeypatch.delenv("JAMSDK_TOKEN", raising=False)
    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"):
        assert not Access.from_options(host).needs_token
    with pytest.raises(InputError, match="--host 0.0.0.0: beyond this machine a token is required"):
        Access.from_options("0.0.0.0")
    with pytest.raises(InputError, match="--token: expected at least 16"):
        Access.from_options("0.0.0.0", "short")
    with pytest.raises(InputError, match="exclude each other"):
        Access.from_options("0.0.0.0", TOKEN, unauthenticated=True)
    open_ = Access.from_options("0.0.0.0", unauthenticated=True)
    assert "UNAUTHENTICATED" in open_.describe("http://0.0.0.0:8000/")
    assert "loopback only" in Access.from_options("127.0.0.1").describe("http://127.0.0.1:8000/")
    monkeypatch.setenv("JAMSDK_TOKEN", TOKEN)
    protected = Access.from_options("0.0.0.0")
    assert protected.needs_token and TOKEN not in repr(protected)  # only the digest is kept
    assert "token required" in protected.describe("http://0.0.0.0:8000/")
    assert protected.token_ok(TOKEN) and not protected.token_ok(TOKEN + "x") and not protected.token_ok(None)
    assert Access.token_from({"Authorization": f"Bearer {TOKEN}"}) == TOKEN
    assert Access.token_from({}, f"token={TOKEN}") == TOKEN
    assert Access.token_from({"Cookie": f"a=b; {COOKIE}={TOKEN}"}) == TOKEN


# -- the real command, end to end (one process for all the checks: it takes seconds to start) ---


def _post(port: int, action: str, headers: dict | None = None) -> int:
    return request(port, "POST", f"/control/{action}", headers)[0]


def _stats(port: int) -> dict:
    return json.loads(request(port, "GET", "/stats.json")[2])


def test_live_process_under_attack_keeps_streaming_and_stays_quiet():
    port = free_port()
    with live_process("--driving", str(DRIVING), "--port", str(port), "--threads", "1") as live:
        wait_for(lambda: _stats(port)["frames"] >= 3, timeout=60)
        assert _post(port, "layout", {"Origin": "http://evil.example", "Content-Type": "text/plain"}) == 403
        assert request(port, "GET", "/stats.json", host=f"rebind.example:{port}")[0] == 403
        # 300 searches in a burst: coalesced, so the stream goes on and at most a few searches run.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(300):
            conn.request("POST", "/control/search", headers={"Content-Length": "0"})
            assert conn.getresponse().read()
        conn.close()
        before = _stats(port)["frames"]
        wait_for(lambda: _stats(port)["frames"] >= before + 10, timeout=30)
        assert _stats(port)["layout"] == "result"  # the refused cross-site POST changed nothing
        # Half-open connections, then gone: no traceback reaches the terminal.
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
        for s in held:
            s.sendall(b"GET /stream.mjpg HTTP/1.1\r\n")
        for s in held:
            s.close()
        wait_for(lambda: _stats(port)["frames"] >= before + 20, timeout=30)
        assert live.stop() == 0
    assert any("access: loopback only" in line for line in live.stdout), live.stdout
    assert "Traceback" not in live.stderr and "Error" not in live.stderr, live.stderr[-2000:]


def test_beyond_loopback_without_token_is_one_line_exit_2(monkeypatch):
    import subprocess
    import sys

    from live_helpers import ROOT

    env = {k: v for k, v in __import__("os").environ.items() if k != "JAMSDK_TOKEN"}
    r = subprocess.run([sys.executable, "-m", "jamsdk", "live", "--driving", str(DRIVING), "--host", "0.0.0.0",
                        "--port", "0", "--source", str(ASSETS / "example_source.png")],
                       capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.strip().splitlines() if "note: " not in line]
    assert len(lines) == 1 and "a token is required" in lines[0], r.stderr


def test_action_flood_is_coalesced(monkeypatch):
    from jamsdk.bundled import resolve_model
    from jamsdk.live import session as session_module
    from jamsdk.live.session import LiveOptions, LiveSession
    from jamsdk.live.sources import DrivingSource
    from jamsdk.pictures import read_image
    from jamsdk.runtime.animator import Animator

    monkeypatch.setattr(session_module, "SEARCH_MIN_INTERVAL_S", 60.0)  # the next search waits a minute
    driving = DrivingSource(DRIVING)
    with Animator(resolve_model("demo"), backend="onnxruntime", threads=1) as anim:
        anim.set_source(read_image(ASSETS / "example_source.png"))
        searches = []
        real = anim.find_reference
        anim.find_reference = lambda frames: searches.append(1) or real(frames)
        session = LiveSession(anim, read_image(ASSETS / "example_source.png"), driving, LiveOptions())
        session.run(max_frames=3)  # frames to search among
        for _ in range(300):
            session.control("search")
        for _ in range(301):
            session.control("layout")  # toggles: the latest wins
        session.control("regions", "on")
        session.control("regions", "off")
        with pytest.raises(InputError, match="layout: expected one of"):
            session.control("layout", "sideways")
        session._stop.clear()
        session.hub = FrameHub()
        session.run(max_frames=6)
        assert len(searches) == 1
        assert session.layout == "side-by-side" and session.show_regions is False
        session.control("search")  # within the interval of the last one: waits, still one
        session.hub = FrameHub()
        session.run(max_frames=8)
        assert len(searches) == 1 and "search" in session._pending
    driving.close()


def test_a_token_file_keeps_the_token_out_of_the_process_list(tmp_path, capsys):
    """The probe's T16: `--token T` is visible to every local user in /proc/PID/cmdline. A token file
    (yours alone) or JAMSDK_TOKEN keep it out; --token still works, with a warning."""
    import argparse
    import os

    from jamsdk.commands._options import access_from_args

    def args(**kw):
        return argparse.Namespace(**{"host": "192.0.2.1", "token": None, "token_file": None,
                                     "unauthenticated": False, **kw})

    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    access = access_from_args(args(token_file=str(path)), "live")
    assert access.needs_token and access.token_ok(TOKEN) and capsys.readouterr().err == ""
    path.chmod(0o640)  # the group may read it: the point of a file is lost
    with pytest.raises(InputError, match=r"--token-file .*token: other users may read it \(mode 0640\); make it yours "
                                         r"alone: chmod 600"):
        access_from_args(args(token_file=str(path)), "live")
    path.chmod(0o600)
    with pytest.raises(InputError, match="--token and --token-file exclude each other"):
        access_from_args(args(token=TOKEN, token_file=str(path)), "live")
    with pytest.raises(InputError, match="expected a regular file, got a character device"):
        access_from_args(args(token_file="/dev/zero"), "live")
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    empty.chmod(0o600)
    with pytest.raises(InputError, match="the file is empty"):
        access_from_args(args(token_file=str(empty)), "live")
    access = access_from_args(args(token=TOKEN), "serve")
    assert access.token_ok(TOKEN)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["jamsdk serve: warning: --token is visible to every user of this machine in the process list (ps, "
                   "/proc/PID/cmdline); give it in a file only you can read (--token-file FILE) or in JAMSDK_TOKEN "
                   "instead"]
