"""The HTTP side of ``jamsdk live`` (standard library only).

Routes: ``GET /`` the page, ``GET /stream.mjpg`` a ``multipart/x-mixed-replace`` MJPEG stream
(one JPEG per animated frame), ``GET /stats.json`` FPS, per-stage milliseconds and the view state,
``POST /control/<action>`` with action ``reset``, ``search``, ``layout`` or ``regions``.
"""

from __future__ import annotations

import errno
import json
import socket
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from jamsdk.errors import InputError
from jamsdk.live.page import PAGE
from jamsdk.live.session import ACTIONS, LiveSession

BOUNDARY = "jamsdkframe"


class LiveServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer bound to one :class:`LiveSession`."""

    daemon_threads = True  # a stalled viewer never keeps the process alive
    block_on_close = False

    def __init__(self, address: tuple[str, int], session: LiveSession | None = None):
        self.session = session
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}/"


def make_server(host: str, port: int, session: LiveSession | None = None) -> LiveServer:
    """Bind ``host:port`` (port 0: any free port); set ``.session`` before serving if not given.

    Raises:
        InputError: the port is taken, the address is not on this machine, or the port is out of range.
    """
    if not (0 <= port <= 65535):
        raise InputError(f"--port: expected 0 to 65535, got {port}")
    try:
        return LiveServer((host, port), session)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise InputError(f"--port {port}: already in use on {host} (choose another port)") from None
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
            raise InputError(f"--host {host} --port {port}: cannot listen there ({exc.strerror})") from None
        raise InputError(f"--host {host}: cannot listen on it ({exc.strerror or exc})") from None


class _Handler(BaseHTTPRequestHandler):
    server: LiveServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (the base's name)
        pass  # the terminal shows the URL and the stats, not one line per poll

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, obj: object, status: int = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, PAGE.encode(), "text/html; charset=utf-8")
        elif path == "/stats.json":
            self._json(self.server.session.stats())
        elif path == "/stream.mjpg":
            self._stream()
        else:
            self._json({"error": f"no such page: {path}"}, HTTPStatus.NOT_FOUND)

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        action = path[len("/control/"):] if path.startswith("/control/") else ""
        if action not in ACTIONS:
            self._json({"error": f"expected POST /control/<{'|'.join(ACTIONS)}>, got {path}"},
                       HTTPStatus.NOT_FOUND)
            return
        self.server.session.control(action)
        self._json({"queued": action})

    def _stream(self) -> None:
        hub = self.server.session.hub
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        seq = 0
        try:
            while not hub.closed:
                jpeg, seq = hub.wait(seq, timeout=1.0)
                if jpeg is None:
                    continue
                self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                                 .encode() + jpeg + b"\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the viewer went away


__all__ = ["BOUNDARY", "LiveServer", "make_server"]
