"""The penalty guard in Serve's proxy, as plain ASGI (no Ray), and the replica's own refusal."""

import asyncio
from types import SimpleNamespace

import pytest

from jamsdk.serve.proxy_guard import HEADER, ProxyGuard, close_reason, middlewares, penalty_reason, read_penalty


class Clock:
    def __init__(self):
        self.now = 50.0

    def __call__(self):
        return self.now


def _scope(host="10.0.0.9", extensions=True, headers=()):
    return {"type": "websocket", "client": (host, 40000), "headers": list(headers),
            "extensions": {"websocket.http.response": {}} if extensions else {}}


class Replica:
    """A stand-in ASGI app behind the guard: accepts, or closes with the penalty a replica sends."""

    def __init__(self, penalty=None):
        self.penalty, self.calls, self.scopes = penalty, 0, []

    async def __call__(self, scope, receive, send):
        self.calls += 1
        self.scopes.append(scope)
        await receive()
        await send({"type": "websocket.accept"})
        if self.penalty:
            await send({"type": "websocket.close", "code": 1008, "reason": penalty_reason(self.penalty, "too fast")})


def _call(guard, scope):
    sent = []

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    return sent


def test_a_penalty_from_a_replica_refuses_that_address_in_the_proxy_until_it_ends():
    clock = Clock()
    replica = Replica(penalty=10)
    guard = ProxyGuard(replica, clock=clock)
    first = _call(guard, _scope())
    assert [m["type"] for m in first] == ["websocket.accept", "websocket.close"]  # passed through unchanged
    replica.penalty = None
    clock.now += 3
    refused = _call(guard, _scope())
    assert replica.calls == 1  # never reached the replica
    start, body = refused
    assert start["type"] == "websocket.http.response.start" and start["status"] == 429
    assert (b"retry-after", b"7") in start["headers"]
    assert body["body"].decode().startswith("10.0.0.9 may not open a stream for 7 s more")
    assert _call(guard, _scope(host="10.0.0.10"))[0]["type"] == "websocket.accept"  # another address
    no_extension = _call(guard, _scope(extensions=False))
    assert no_extension == [{"type": "websocket.close", "code": 1008}]  # a server without it: a bare 403
    clock.now += 7.5
    assert _call(guard, _scope())[0]["type"] == "websocket.accept" and guard.refused == 2


def test_the_guard_header_is_the_guards_alone():
    replica = Replica()
    _call(ProxyGuard(replica), _scope(headers=[(HEADER, b"forged"), (b"host", b"x")]))
    headers = replica.scopes[0]["headers"]
    assert headers.count((HEADER, b"1")) == 1 and (HEADER, b"forged") not in headers and (b"host", b"x") in headers


@pytest.mark.parametrize("message,seconds", [
    ({"type": "websocket.close", "code": 1008, "reason": "penalty 10 s: too fast"}, 10.0),
    ({"type": "websocket.close", "code": 1008, "reason": "penalty 2.5 s: x"}, 2.5),
    ({"type": "websocket.close", "code": 1000, "reason": "penalty 10 s: too fast"}, None),  # not a policy close
    ({"type": "websocket.close", "code": 1008, "reason": "a page from evil may not connect"}, None),  # no penalty
    ({"type": "websocket.close", "code": 1008}, None),
    ({"type": "websocket.send", "text": "penalty 10 s: x"}, None),
])
def test_only_a_policy_close_with_a_penalty_sets_one(message, seconds):
    assert read_penalty(message) == seconds


def test_close_reasons_fit_a_close_frame():
    text = "≥" * 100  # 300 bytes of UTF-8
    assert len(close_reason(text).encode()) <= 123 and close_reason(text) == "≥" * 41
    assert read_penalty({"type": "websocket.close", "code": 1008, "reason": penalty_reason(10, text)}) == 10


def test_serve_loads_the_guard_as_a_starlette_middleware():
    pytest.importorskip("starlette")
    from starlette.middleware import Middleware

    (mw,) = middlewares()
    assert isinstance(mw, Middleware) and mw.cls is ProxyGuard


def test_without_the_guard_the_replica_refuses_a_penalised_address_itself():
    """The replica's own check (a proxy without jamsdk's guard): 429 before accepting, counted."""
    pytest.importorskip("ray")
    pytest.importorskip("fastapi")
    from jamsdk.serve.app import AnimationService
    from jamsdk.serve.policy import PenaltyBox
    from jamsdk.serve.protocol import Limits

    service = AnimationService.func_or_class
    denied = []

    class WS:
        client = SimpleNamespace(host="10.0.0.9")
        headers = {}

        async def send_denial_response(self, response):
            denied.append(response)

        async def accept(self):
            raise AssertionError("a penalised address must not be accepted")

    me = SimpleNamespace(limits=Limits(penalty_s=10), _penalties=PenaltyBox(10), penalized=0)
    me._deny = lambda ws, status, text, wait: service._deny(me, ws, status, text, wait)
    me._penalties.add("10.0.0.9")
    asyncio.run(service.stream(me, WS()))
    (response,) = denied
    assert response.status_code == 429 and response.headers["retry-after"] == "10"
    assert b"10.0.0.9 may not open a stream for 10 s more" in response.body and me.penalized == 1


def _forwarded_client(setting, peer):
    """The client address a uvicorn server built as Serve's proxy builds it (``uvicorn.Config`` without
    ``forwarded_allow_ips``: it reads FORWARDED_ALLOW_IPS) gives the app, for a request from ``peer``
    carrying ``X-Forwarded-For: 10.20.30.40``."""
    import os

    uvicorn = pytest.importorskip("uvicorn")
    from jamsdk.serve.proxy_guard import FORWARDED_ENV

    seen = []

    async def app(scope, receive, send):
        seen.append(scope["client"])

    before = os.environ.get(FORWARDED_ENV)
    os.environ[FORWARDED_ENV] = setting
    try:
        config = uvicorn.Config(app, lifespan="off", log_config=None)
        config.load()
    finally:
        if before is None:
            os.environ.pop(FORWARDED_ENV, None)
        else:
            os.environ[FORWARDED_ENV] = before
    scope = {"type": "websocket", "client": (peer, 40000), "headers": [(b"x-forwarded-for", b"10.20.30.40")]}
    asyncio.run(config.loaded_app(scope, None, None))
    return seen[0][0]


def test_a_local_client_cannot_pose_as_another_address_unless_its_proxy_is_named():
    """The probe's S11: uvicorn believes X-Forwarded-For from 127.0.0.1 by default, so a penalised
    local client came back as any address. jamsdk serve names no proxy unless --trusted-proxy does."""
    from jamsdk.errors import InputError
    from jamsdk.serve.proxy_guard import forwarded_setting

    assert forwarded_setting() == ""
    assert _forwarded_client(forwarded_setting(), "127.0.0.1") == "127.0.0.1"  # the header is not believed
    assert _forwarded_client(forwarded_setting(["127.0.0.1"]), "127.0.0.1") == "10.20.30.40"  # a named proxy is
    assert _forwarded_client(forwarded_setting(["10.0.0.0/8"]), "127.0.0.1") == "127.0.0.1"
    with pytest.raises(InputError, match="--trusted-proxy: expected an IP address or network"):
        forwarded_setting(["*"])
