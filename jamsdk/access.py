"""Who may use a jamsdk server (``live``, ``serve``): loopback binds, an access token, Host and Origin.

The rule, the same for both servers:

* A server bound to loopback (127.0.0.0/8, ::1, ``localhost``) needs no token: only this machine
  reaches it. It still checks the ``Host`` header (a DNS-rebinding page names its own host) and
  refuses browser requests from other sites.
* Bound beyond loopback it needs a token (``--token-file FILE``, the environment variable
  ``JAMSDK_TOKEN``, or ``--token TOKEN``) or the explicit opt-out ``--unauthenticated``; with
  neither it does not start. ``--token`` on the command line is visible to every local user in the
  process list (``/proc/PID/cmdline``), so it still works but prints a warning
  (:data:`ARGV_WARNING`); a token file must be readable by its owner only (:func:`read_token_file`).
* Clients send ``Authorization: Bearer <token>``; a browser opens ``http://HOST:PORT/?token=<token>``
  once (``live`` then keeps it in an HttpOnly, SameSite=Strict cookie). Tokens are compared as
  SHA-256 digests with :func:`hmac.compare_digest`, and only the digest travels to server processes.

Every start prints :meth:`Access.describe`: loopback-only, token-protected or UNAUTHENTICATED.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import socket
import urllib.parse
from dataclasses import dataclass
from typing import Mapping

from jamsdk.errors import InputError

ENV = "JAMSDK_TOKEN"
COOKIE = "jamsdk_token"
QUERY = "token"
MIN_TOKEN_CHARS = 16
_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})


def _bare(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or name to bind) is reachable from this machine only."""
    name = _bare(host)
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def split_host(header: str) -> tuple[str, str]:
    """``("name", "port")`` of a ``Host`` header value (``[::1]:8000``, ``localhost``, …); port may be ""."""
    header = header.strip()
    if header.startswith("["):
        name, _, rest = header[1:].partition("]")
        return _bare(name), rest.lstrip(":")
    if header.count(":") == 1:
        name, port = header.split(":")
        return _bare(name), port
    return _bare(header), ""


#: what a server command says when the token came on its command line
ARGV_WARNING = ("--token is visible to every user of this machine in the process list (ps, /proc/PID/cmdline); "
                f"give it in a file only you can read (--token-file FILE) or in {ENV} instead")


def read_token_file(path: str | os.PathLike[str]) -> str:
    """The token in the file ``path`` (whitespace around it ignored).

    Raises:
        InputError: not a regular file of at most 4 KiB, readable or writable by other users than its
            owner (the point of a file is that they cannot read it), or empty.
    """
    import stat

    from jamsdk.input_files import check_input, read_input

    st = check_input(path, "token", what="--token-file")
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(f"--token-file {path}: other users may read it (mode {stat.S_IMODE(st.st_mode):04o}); "
                         f"make it yours alone: chmod 600 {path}")
    try:
        token = read_input(path, "token", what="--token-file").decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InputError(f"--token-file {path}: expected a token in UTF-8 text") from None
    if not token:
        raise InputError(f"--token-file {path}: the file is empty (expected the token, for example {new_token()})")
    return token


def digest(token: str) -> str:
    """The SHA-256 hex digest a server keeps instead of the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh random token (what the error message suggests)."""
    import secrets

    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Access:
    """One server's access policy (picklable: ``serve`` hands it to its replicas).

    Attributes:
        host: the address the server binds.
        token_sha256: digest of the required token; None when no token is needed.
        unauthenticated: bound beyond loopback without a token, on purpose.
        origins: other origins whose browser pages may connect (``serve --allow-origin``), as
            ``scheme://host[:port]``.
    """

    host: str = "127.0.0.1"
    token_sha256: str | None = None
    unauthenticated: bool = False
    origins: tuple[str, ...] = ()

    @classmethod
    def from_options(cls, host: str, token: str | None = None, unauthenticated: bool = False,
                     origins: tuple[str, ...] | list[str] = (), token_file: str | os.PathLike[str] | None = None
                     ) -> Access:
        """The policy for ``--host``, ``--token`` or ``--token-file`` (default ``$JAMSDK_TOKEN``) and
        ``--unauthenticated``.

        Raises:
            InputError: beyond loopback with neither a token nor ``--unauthenticated``; a token
                shorter than 16 characters or with spaces or control characters; both a token and
                ``--unauthenticated``, or both ``--token`` and ``--token-file``; a bad token file
                (:func:`read_token_file`); an origin that is not ``http(s)://host[:port]``.
        """
        allowed = tuple(_origin(o) for o in origins)
        if token is not None and token_file is not None:
            raise InputError("--token and --token-file exclude each other: give one (--token-file keeps the token "
                             "out of the process list)")
        if token_file is not None:
            token, source = read_token_file(token_file), "--token-file"
        elif token is None:
            token = os.environ.get(ENV) or None
            source = ENV
        else:
            source = "--token"
        if token is not None:
            if unauthenticated:
                raise InputError(f"{source} and --unauthenticated exclude each other: give one")
            if len(token) < MIN_TOKEN_CHARS or any(c.isspace() or not c.isprintable() or c in ';,"\\' for c in token):
                raise InputError(f"{source}: expected at least {MIN_TOKEN_CHARS} printable characters without "
                                 f"spaces, quotes, commas or semicolons (for example {new_token()}), got "
                                 f"{len(token)} characters")
            return cls(host, digest(token), False, allowed)
        if not is_loopback(host) and not unauthenticated:
            raise InputError(f"--host {host}: beyond this machine a token is required: --token TOKEN (or the "
                             f"{ENV} environment variable; for example {new_token()}), or --unauthenticated to let "
                             f"anyone who can reach {host} in")
        return cls(host, None, unauthenticated and not is_loopback(host), allowed)

    @property
    def needs_token(self) -> bool:
        return self.token_sha256 is not None

    def describe(self, url: str) -> str:
        """The one start-up line saying who can get in."""
        if self.needs_token:
            return (f"access: token required (clients send 'Authorization: Bearer TOKEN'; in a browser open "
                    f"{url}?{QUERY}=TOKEN once)")
        if self.unauthenticated:
            return (f"access: UNAUTHENTICATED on {self.host}: anyone who can reach this address can use it "
                    "(--unauthenticated)")
        return "access: loopback only (this machine); no token needed"

    # -- per request -----------------------------------------------------------------------------

    def token_ok(self, given: str | None) -> bool:
        """Whether ``given`` is the token (always True when none is needed); constant-time compare."""
        if self.token_sha256 is None:
            return True
        if not given:
            return False
        return hmac.compare_digest(digest(given), self.token_sha256)

    @staticmethod
    def token_from(headers: Mapping[str, str], query: str = "") -> str | None:
        """The token a request carries: ``Authorization: Bearer``, else ``?token=``, else the cookie."""
        auth = _header(headers, "authorization")
        if auth:
            scheme, _, value = auth.strip().partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                return value.strip()
        values = urllib.parse.parse_qs(query).get(QUERY)
        if values:
            return values[-1]
        cookies = _header(headers, "cookie") or ""
        for part in cookies.split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and value:
                return value
        return None

    def host_ok(self, host_header: str | None) -> bool:
        """Whether a request's ``Host`` may be served (DNS rebinding: a foreign name on our address).

        With a token the token decides (a rebinding page never has it). Without one, the name must be
        loopback, an IP address, the bound name or this machine's name: a rebinding attack needs a
        DNS name of its own.
        """
        if self.needs_token or host_header is None:  # browsers always send Host; a script may not
            return True
        name, _ = split_host(host_header)
        if not name:
            return False
        if is_loopback(name):
            return True
        if self.unauthenticated and (_is_ip(name) or name in _machine_names()):
            return True
        return name == _bare(self.host)

    def origin_ok(self, headers: Mapping[str, str]) -> bool:
        """Whether a browser request comes from our own page (no ``Origin`` / ``Sec-Fetch-Site``: a script).

        An ``Origin`` must name the same host and port as ``Host`` (or be one of :attr:`origins`), and
        ``Sec-Fetch-Site`` must then be ``same-origin`` or ``none`` (typed in the address bar).
        """
        origin = _header(headers, "origin")
        if origin is not None and self.origins and _origin(origin, strict=False) in self.origins:
            return True
        site = _header(headers, "sec-fetch-site")
        if site is not None and site.strip().lower() not in ("same-origin", "none"):
            return False
        if origin is None:
            return True
        parts = urllib.parse.urlsplit(origin.strip())
        host = _header(headers, "host")
        if parts.scheme not in ("http", "https") or not parts.netloc or host is None:
            return False  # "null" (sandboxed frames, file: pages) and anything odd
        default = "443" if parts.scheme == "https" else "80"
        o_name, o_port = split_host(parts.netloc)
        h_name, h_port = split_host(host)
        return (o_name, o_port or default) == (h_name, h_port or default)


def _origin(text: str, strict: bool = True) -> str:
    """``scheme://host:port`` with the default port spelled out (how origins are compared)."""
    parts = urllib.parse.urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") or parts.query:
        if strict:
            raise InputError(f"--allow-origin: expected http(s)://HOST[:PORT], got {text!r}")
        return ""
    name, port = split_host(parts.netloc)
    port = port or ("443" if parts.scheme == "https" else "80")
    return f"{parts.scheme}://{name}:{port}"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.title())
    if value is None and hasattr(headers, "items") and not hasattr(headers, "get_all"):
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def _machine_names() -> frozenset[str]:
    names = {socket.gethostname()}
    try:
        names.add(socket.getfqdn())
    except OSError:
        pass
    return frozenset(_bare(n) for n in names if n) | frozenset(_bare(n) + ".local" for n in names if n)


__all__ = ["ARGV_WARNING", "COOKIE", "ENV", "Access", "digest", "is_loopback", "read_token_file", "split_host"]
