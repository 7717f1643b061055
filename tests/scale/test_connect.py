"""Ray's token convention, addresses and version rule as `jamsdk.scale.connect` reads them (no cluster needed)."""

import socket

import pytest

from jamsdk.errors import ClusterError
from jamsdk.scale.connect import (
    auth_settings,
    check_reachable,
    check_versions,
    resolve_address,
    split_address,
)


def test_token_precedence_follows_ray(tmp_path):
    """RAY_AUTH_TOKEN, then the file RAY_AUTH_TOKEN_PATH names, then ~/.ray/auth_token (whitespace stripped)."""
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("from-home\n")
    (tmp_path / "tok").write_text("  from-file \n")
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "from-env", "RAY_AUTH_TOKEN_PATH": str(tmp_path / "tok")}
    assert auth_settings(env, home).token == "from-env"
    del env["RAY_AUTH_TOKEN"]
    got = auth_settings(env, home)
    assert (got.token, got.enabled) == ("from-file", True) and "RAY_AUTH_TOKEN_PATH" in got.source
    del env["RAY_AUTH_TOKEN_PATH"]
    assert auth_settings(env, home).token == "from-home"
    # Without RAY_AUTH_MODE=token Ray sends nothing to an explicit address, whatever token exists.
    assert auth_settings({}, home).enabled is False


def test_token_misconfigurations_are_one_line(tmp_path):
    with pytest.raises(ClusterError, match="RAY_AUTH_TOKEN_PATH=.*cannot read the token file"):
        auth_settings({"RAY_AUTH_TOKEN_PATH": str(tmp_path / "missing")}, tmp_path)
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ClusterError, match="the token file is empty"):
        auth_settings({"RAY_AUTH_TOKEN_PATH": str(tmp_path / "empty")}, tmp_path)
    with pytest.raises(ClusterError, match="RAY_AUTH_MODE=token but no token was found"):
        auth_settings({"RAY_AUTH_MODE": "token"}, tmp_path)


def test_addresses(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    assert resolve_address(None) == "10.0.0.5:6379"
    assert resolve_address("ray://h:10001") == "ray://h:10001"
    monkeypatch.delenv("RAY_ADDRESS")
    assert resolve_address(None) is None
    assert split_address("[::1]:6379") == ("::1", 6379)
    for bad in ("head", "head:", "head:port", ":6379", "head:70000"):
        with pytest.raises(ClusterError, match="expected HOST:PORT of the head"):
            split_address(bad)


def test_unreachable_address_names_what_to_start():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    with pytest.raises(ClusterError, match=rf"cannot reach a Ray cluster at 127.0.0.1:{port} .*ray start --head"):
        check_reachable("127.0.0.1", port, f"127.0.0.1:{port}", f"ray start --head --port {port}")


def test_version_rule_is_rays(monkeypatch):
    monkeypatch.delenv("RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL", raising=False)
    cluster = {"ray_version": "2.60.0", "python_version": "3.11.7"}
    check_versions(cluster, "h:1", ("2.60.0", "3.11.7"))
    with pytest.raises(ClusterError, match=r"it runs Ray 2.60.0 on Python 3.11.7, this process Ray 2.59.0 on Python "
                                           r"3.11.7; install Ray 2.60.0"):
        check_versions(cluster, "h:1", ("2.59.0", "3.11.7"))
    with pytest.raises(ClusterError, match="version mismatch"):
        check_versions(cluster, "h:1", ("2.60.0", "3.11.9"))  # Ray's default: Python must match to the patch
    monkeypatch.setenv("RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL", "minor")
    check_versions(cluster, "h:1", ("2.60.0", "3.11.9"))
    with pytest.raises(ClusterError, match="version mismatch"):
        check_versions(cluster, "h:1", ("2.60.0", "3.10.12"))


def test_a_token_is_offered_only_in_token_mode(monkeypatch):
    """Ray sends no token to a typed address unless RAY_AUTH_MODE=token; a ~/.ray/auth_token that merely
    exists must not go to every address one types (the probes, before ray.init, send what Ray would)."""
    pytest.importorskip("ray")
    grpc = pytest.importorskip("grpc")
    from jamsdk.scale import connect

    sent = []

    class Refused(grpc.RpcError):  # what a Ray GCS with token authentication answers a wrong or missing token
        def code(self):
            return grpc.StatusCode.UNAUTHENTICATED

        def details(self):
            return "stub"

    class Channel:
        def __init__(self, target):
            self.target = target

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def unary_unary(self, method, *args, **kwargs):
            def call(request, timeout=None, metadata=None, **kw):
                sent.append((method, list(metadata or [])))
                raise Refused()
            return call

        unary_stream = stream_unary = stream_stream = unary_unary

        def close(self):
            pass

    monkeypatch.setattr(grpc, "insecure_channel", Channel)
    monkeypatch.setattr(connect, "check_reachable", lambda *a: None)
    for auth, want in ((connect.Auth(False, "from-home-file", "~/.ray/auth_token"), []),
                       (connect.Auth(True, "the-token", "RAY_AUTH_TOKEN"), [("authorization", "Bearer the-token")])):
        sent.clear()
        for probe, address in ((connect.probe_gcs, "192.0.2.7:6379"), (connect.probe_client, "ray://192.0.2.7:10001")):
            with pytest.raises(ClusterError):
                probe(address, auth)
        assert sent and all(metadata == want for _, metadata in sent), sent
