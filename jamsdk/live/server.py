"""The HTTP side of ``jamsdk live`` (standard library only).

Routes: ``GET /`` the page, ``GET /stream.mjpg`` a ``multipart/x-mixed-replace`` MJPEG stream
(one JPEG per animated frame), ``GET /stats.json`` FPS, per-stage milliseconds and the view state,
``POST /control/<action>`` with action ``reset``, ``search``, ``layout`` or ``regions``
(``layout`` and ``regions`` also take ``?to=result|side-by-side`` / ``?to=on|off``).

Every request passes :class:`~jamsdk.access.Access`: its ``Host`` must be this server's (no DNS
rebinding), a browser request must come from the page itself (``Origin`` / ``Sec-Fetch-Site``), and
beyond loopback it must carry the token. Refusals are 403 (401 for a missing token). Connections
time out after :data:`TIMEOUT_S` of silence and at most :data:`MAX_CONNECTIONS` are served at once:
past the cap a new connection takes the place of the one that has waited longest for a request
(half-open connections are what fills the cap, and streams are never cut for them); with none
waiting, it gets 503 at once. At most :data:`MAX_STREAMS` of them are MJPEG viewers (more get 503),
so viewers alone never fill the cap: the page, ``/stats.json`` and the controls keep room (a local
script that opened 33 viewers locked the page out). A viewer that goes away ends its thread quietly.
"""

from __future__ import annotations

import errno
import json
import socket
import sys
import threading
import time
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from jamsdk.access import COOKIE, QUERY, Access
from jamsdk.errors import InputError
from jamsdk.live.page import PAGE
from jamsdk.live.session import ACTIONS, LiveSession

BOUNDARY = "jamsdkframe"
TIMEOUT_S = 10.0  # a request's headers, a body, or a viewer's next read must come within this
MAX_CONNECTIONS = 32  # viewers, polls and scripts together; one thread each
MAX_STREAMS = 24  # of those, /stream.mjpg viewers: the rest stays free for the page, stats and controls
MAX_BODY_BYTES = 1024  # controls carry no body; a script may send a little
_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"


class LiveServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer bound to one :class:`LiveSession`, with a cap on connections."""

    daemon_threads = True  # a stalled viewer never keeps the process alive
    block_on_close = False
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], session: LiveSession | None = None, access: Access | None = None,
                 max_connections: int = MAX_CONNECTIONS, max_streams: int = MAX_STREAMS):
        self.session = session
        self.access = access or Access(address[0])
        self.max_connections = max_connections
        self.max_streams = min(max_streams, max_connections - 1)
        self.streams = 0  # MJPEG viewers now
        self.refused = 0  # connections turned away by the cap (for tests and benchmarks)
        self.evicted = 0  # connections closed to make room while they waited for a request
        self._open = 0
        self._waiting: dict[socket.socket, float] = {}  # connection → since when it waits for a request
        self._count_lock = threading.Lock()
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}/"

    def process_request(self, request, client_address):  # noqa: ANN001 - socketserver's signature
        with self._count_lock:
            full = self._open >= self.max_connections
            victim = self._oldest_waiting() if full else None
            if not full or victim is not None:
                self._open += 1
                self._waiting[request] = time.monotonic()
        if victim is not None:
            self.evicted += 1
            try:
                victim.shutdown(socket.SHUT_RDWR)  # its handler's read returns at once and it ends
            except OSError:
                pass
        elif full:
            # Answered from the accepting thread without reading: no thread, no wait on the client.
            self.refused += 1
            try:
                request.setblocking(False)
                request.send(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # the thread did not start: give the slot back
            self._release(request)
            raise

    def process_request_thread(self, request, client_address):  # noqa: ANN001
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release(request)

    def _oldest_waiting(self):  # noqa: ANN202 - a socket or None; call with _count_lock held
        if not self._waiting:
            return None
        return min(self._waiting, key=self._waiting.__getitem__)

    def _busy(self, request, busy: bool) -> None:  # noqa: ANN001
        """Mark a connection as serving a request (never evicted) or waiting for one (evictable)."""
        with self._count_lock:
            if busy:
                self._waiting.pop(request, None)
            elif request is not None:
                self._waiting[request] = time.monotonic()

    def take_stream(self) -> bool:
        """A viewer slot (False when :attr:`max_streams` viewers are watching); give it back with :meth:`end_stream`."""
        with self._count_lock:
            if self.streams >= self.max_streams:
                return False
            self.streams += 1
            return True

    def end_stream(self) -> None:
        with self._count_lock:
            self.streams -= 1

    def _release(self, request) -> None:  # noqa: ANN001
        with self._count_lock:
            self._open -= 1
            self._waiting.pop(request, None)

    def handle_error(self, request, client_address):  # noqa: ANN001
        exc = sys.exc_info()[1]
        if isinstance(exc, _GONE):
            return  # the client went away: nothing to report
        print(f"jamsdk live: request from {client_address[0]} failed: {type(exc).__name__}: {exc}",
              file=sys.stderr, flush=True)


def make_server(host: str, port: int, session: LiveSession | None = None, access: Access | None = None) -> LiveServer:
    """Bind ``host:port`` (port 0: any free port); set ``.session`` before serving if not given.

    ``access`` defaults to loopback rules for ``host`` (:meth:`Access.from_options` with no token).

    Raises:
        InputError: the port is taken, the address is not on this machine, the port is out of range,
            or ``host`` is beyond loopback and ``access`` is not given.
    """
    if not (0 <= port <= 65535):
        raise InputError(f"--port: expected 0 to 65535, got {port}")
    access = access or Access.from_options(host)
    try:
        return LiveServer((host, port), session, access)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise InputError(f"--port {port}: already in use on {host} (choose another port)") from None
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
            raise InputError(f"--host {host} --port {port}: cannot listen there ({exc.strerror})") from None
        raise InputError(f"--host {host}: cannot listen on it ({exc.strerror or exc})") from None


class _Handler(BaseHTTPRequestHandler):
    server: LiveServer
    protocol_version = "HTTP/1.1"
    timeout = TIMEOUT_S  # StreamRequestHandler sets it on the socket: reads and writes alike

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (the base's name)
        pass  # the terminal shows the URL and the stats, not one line per poll

    def parse_request(self) -> bool:
        ok = super().parse_request()  # reads the headers: a slow client is still "waiting" until here
        # A whole request has arrived: this connection is being served, not idling against the cap.
        self.server._busy(self.connection, True)
        return ok

    def handle_one_request(self) -> None:
        super().handle_one_request()
        if not self.close_connection:
            self.server._busy(self.connection, False)  # keep-alive: waiting for the next request

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")  # no framing by other sites (clickjacking the controls)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, obj: object, status: int = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _refuse(self, status: int, why: str) -> None:
        self.close_connection = True
        self._send(status, json.dumps({"error": why}).encode(), "application/json", {"Connection": "close"})

    def _allowed(self, navigation: bool = False) -> bool:
        """Host, origin and token checks; answers the refusal itself and returns False."""
        access = self.server.access
        if not access.host_ok(self.headers.get("Host")):
            self._refuse(HTTPStatus.FORBIDDEN, f"Host {self.headers.get('Host')!r} is not this server's name "
                                               "(open it by its address or as localhost)")
            return False
        # A link from another site may open the page itself; nothing else may come from another site.
        if not navigation and not access.origin_ok(self.headers):
            self._refuse(HTTPStatus.FORBIDDEN, "cross-site request refused (only the page itself may do this)")
            return False
        query = urllib.parse.urlsplit(self.path).query
        if not access.token_ok(Access.token_from(self.headers, query)):
            self._refuse(HTTPStatus.UNAUTHORIZED, f"access token required: send 'Authorization: Bearer TOKEN' "
                                                  f"or open /?{QUERY}=TOKEN once in the browser")
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
        parts = urllib.parse.urlsplit(self.path)
        path = parts.path
        if not self._allowed(navigation=path in ("/", "/index.html")):
            return
        if path in ("/", "/index.html"):
            token = urllib.parse.parse_qs(parts.query).get(QUERY, [None])[-1]
            if token is not None and self.server.access.needs_token and self.server.access.token_ok(token):
                # Keep the token in a cookie the page's scripts cannot read, and out of the address bar
                # (token_ok: it is the configured token, whose characters were checked at start).
                self.close_connection = True
                self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", {
                    "Location": "/", "Connection": "close",
                    "Set-Cookie": f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"})
                return
            self._send(HTTPStatus.OK, PAGE.encode(), "text/html; charset=utf-8",
                       {"Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline' 'self'; "
                                                   "style-src 'unsafe-inline'; frame-ancestors 'none'"})
        elif path == "/stats.json":
            self._json(self.server.session.stats())
        elif path == "/stream.mjpg":
            self._stream()
        else:
            self._json({"error": f"no such page: {path}"}, HTTPStatus.NOT_FOUND)

    def do_POST(self) -> None:  # noqa: N802
        if not self._drain_body() or not self._allowed():
            return
        parts = urllib.parse.urlsplit(self.path)
        path = parts.path
        action = path[len("/control/"):] if path.startswith("/control/") else ""
        if action not in ACTIONS:
            self._json({"error": f"expected POST /control/<{'|'.join(ACTIONS)}>, got {path}"}, HTTPStatus.NOT_FOUND)
            return
        value = urllib.parse.parse_qs(parts.query).get("to", [None])[-1]
        try:
            self.server.session.control(action, value)
        except InputError as exc:
            self._json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)
            return
        self._json({"queued": action})

    def _drain_body(self) -> bool:
        """Read (and drop) a small body so the connection stays in step; refuse big or chunked ones."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self._refuse(HTTPStatus.LENGTH_REQUIRED, "chunked bodies are not accepted; controls need no body")
            return False
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"expected a body of at most {MAX_BODY_BYTES} bytes "
                                                              "(controls need none)")
            return False
        if length:
            self.rfile.read(length)
        return True

    def _stream(self) -> None:
        if not self.server.take_stream():
            self.server.refused += 1
            self._refuse(HTTPStatus.SERVICE_UNAVAILABLE, f"{self.server.max_streams} viewers already watch this "
                                                         "stream (the limit); try again later")
            return
        try:
            self._send_frames()
        finally:
            self.server.end_stream()

    def _send_frames(self) -> None:
        hub = self.server.session.hub
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
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
        except _GONE:
            pass  # the viewer went away, or stopped reading for TIMEOUT_S


__all__ = ["BOUNDARY", "MAX_CONNECTIONS", "MAX_STREAMS", "TIMEOUT_S", "LiveServer", "make_server"]
