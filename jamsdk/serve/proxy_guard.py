"""Penalties enforced in Serve's HTTP proxy, before a refused client costs a replica anything.

A replica that closes a stream for breaking the message limits (:mod:`jamsdk.serve.policy`)
penalises the client's address, and refuses its handshakes itself until the penalty is over. But
each of those handshakes still travels from Serve's proxy to the replica and back (a Ray call on
each side: about 3.5 ms of the replica's CPU per refused handshake, estimated from
``benchmarks/serve_load.py --retry-pause 0 --no-proxy-guard``, where ~97 refusals a second cut the
replica's good frames per CPU-second to 0.65–0.68×), so a client that retries without pause still
takes a share of the replica; and each replica would keep penalties of its own. This ASGI middleware runs inside the proxy instead: it watches the close
frames the replicas send, and when one carries a penalty (code 1008, reason ``penalty S s: ...``)
it refuses that address's handshakes itself (HTTP 429 with ``Retry-After``) for ``S`` seconds,
for every replica behind the proxy at once.

Serve loads proxy middlewares from the function named by the environment variable
``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH`` in the proxy's process (read once, when the proxy
starts; see ``ray/serve/_private/http_util.py``, ``configure_http_middlewares``). ``jamsdk serve``
sets it (:data:`IMPORT_PATH`) before it starts a local Ray; on a cluster started with ``ray
start``, set it in the head node's environment before ``ray start --head``. Without it the replicas
still refuse penalised clients, each for itself. Every request the guard passes carries the header
:data:`HEADER`, so a replica can tell (``/health``: ``proxy_guard``) whether it is there.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, List, Optional

from jamsdk.serve.policy import PenaltyBox, refusal_text

ENV = "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"
#: uvicorn's variable (``uvicorn/config.py``): the clients whose X-Forwarded-For it believes, read by
#: Serve's proxy when it builds its server (Serve passes no ``forwarded_allow_ips``). Unset, uvicorn
#: believes 127.0.0.1 and ::1: any local client could then name any address and leave its penalty behind.
FORWARDED_ENV = "FORWARDED_ALLOW_IPS"
IMPORT_PATH = "jamsdk.serve.proxy_guard.middlewares"
HEADER = b"x-jamsdk-proxy-guard"
POLICY_CODE = 1008
_PENALTY = re.compile(r"^penalty (\d+(?:\.\d+)?) s: ")


def forwarded_setting(proxies: "List[str] | tuple[str, ...]" = ()) -> str:
    """:data:`FORWARDED_ENV`'s value for these reverse proxies: ``""`` (none: believe no forwarded header).

    Raises:
        InputError: an entry that is not an IP address or network.
    """
    import ipaddress

    from jamsdk.errors import InputError

    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy.strip(), strict=False)
        except ValueError:
            raise InputError(f"--trusted-proxy: expected an IP address or network (10.0.0.5, 10.0.0.0/24), "
                             f"got {proxy!r}") from None
    return ",".join(p.strip() for p in proxies)


def close_reason(text: str) -> str:
    """``text`` cut to what a WebSocket close frame holds: 123 bytes of UTF-8 (RFC 6455, 5.5.1), whole characters."""
    return text.encode("utf-8")[:123].decode("utf-8", "ignore")


def penalty_reason(seconds: float, text: str) -> str:
    """The close reason of a penalised stream: what the guard reads, and what the client is told."""
    return close_reason(f"penalty {seconds:g} s: {text}")


def read_penalty(message: dict) -> Optional[float]:
    """Seconds of penalty a ``websocket.close`` message from a replica sets, else None."""
    if message.get("type") != "websocket.close" or message.get("code") != POLICY_CODE:
        return None
    match = _PENALTY.match(message.get("reason") or "")
    return float(match.group(1)) if match else None


class ProxyGuard:
    """ASGI middleware: refuse the handshakes of penalised addresses; learn penalties from close frames."""

    def __init__(self, app: Any, clock: Optional[Callable[[], float]] = None, max_entries: int = 4096):
        self.app = app
        self.box = PenaltyBox(0.0, max_entries=max_entries, **({"clock": clock} if clock else {}))
        self.refused = 0

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope.get("type") not in ("websocket", "http"):
            await self.app(scope, receive, send)
            return
        # Our header, set by us alone: one a client sent is dropped first.
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != HEADER]
        scope = {**scope, "headers": headers + [(HEADER, b"1")]}
        if scope["type"] == "http":
            await self.app(scope, receive, send)
            return
        address = (scope.get("client") or (None,))[0]
        wait = self.box.remaining(address)
        if wait > 0:
            self.refused += 1
            await _refuse(scope, receive, send, refusal_text(address, wait), wait)
            return

        async def watch(message: dict) -> None:
            seconds = read_penalty(message)
            if seconds:
                self.box.add(address, seconds)
            await send(message)

        await self.app(scope, receive, watch)


async def _refuse(scope: dict, receive: Callable, send: Callable, text: str, wait: float) -> None:
    """Answer a WebSocket handshake with HTTP 429 (the ASGI denial-response extension), else a bare close (403)."""
    message = await receive()  # the ASGI spec: websocket.connect comes first
    if message.get("type") != "websocket.connect":
        return
    if "websocket.http.response" not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": POLICY_CODE})
        return
    body = text.encode()
    await send({"type": "websocket.http.response.start", "status": 429,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                            (b"retry-after", str(math.ceil(wait)).encode())]})
    await send({"type": "websocket.http.response.body", "body": body})


def middlewares() -> List[Any]:
    """What Serve's proxy calls (through :data:`ENV`): the guard as a Starlette middleware."""
    from starlette.middleware import Middleware

    return [Middleware(ProxyGuard)]


__all__ = ["ENV", "FORWARDED_ENV", "HEADER", "IMPORT_PATH", "ProxyGuard", "close_reason", "forwarded_setting",
           "middlewares", "penalty_reason", "read_penalty"]
