"""The Ray that ``jamsdk batch`` and ``jamsdk serve`` start on this machine: node on loopback, a per-run token.

* **Loopback.** Ray's GCS, raylet, workers and agents listen on every interface unless the node's
  address is exactly 127.0.0.1 (``listen_to_localhost_only = node_ip_address == "127.0.0.1"`` in
  Ray's ``gcs_server.cc`` and ``core_worker.cc``). ``ray.init`` replaces 127.0.0.1 by the
  machine's routable address (``resolve_ip_for_localhost``, ``ray/_private/services.py``) unless
  ``ray_constants.ENABLE_RAY_CLUSTER`` is off (``get_node_ip_address``, same file): Ray's own
  switch for single-machine Rays on macOS and Windows, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``.
  It is turned off while this Ray starts (in this process and in the environment its processes
  inherit), then restored, so a later ``--ray`` in this process joins a cluster as before. Ray
  Serve's replicas still bind their inter-deployment gRPC server to ``[::]:0``
  (``ray/serve/_private/replica.py``), whatever the node address; the token guards it.
* **Token.** Ray ≥ 2.52 turns token authentication on for a new local Ray and, with no token,
  writes one to ``~/.ray/auth_token`` with a plain ``open()`` (mode 0644 under the usual umask:
  ``generate_and_save_token``, ``ray/_private/authentication/authentication_token_setup.py``),
  which every later Ray of the user reuses. Instead a fresh token is made here and given in
  ``RAY_AUTH_TOKEN`` with ``RAY_AUTH_MODE=token``, the first place Ray's loader looks
  (``TryLoadTokenFromSources``, ``src/ray/rpc/authentication/authentication_token_loader.cc``):
  nothing is written to ``~/.ray``, and the token lives in the environment of this process and of
  the Ray processes it starts (``/proc/PID/environ`` is readable by their user only).
  :func:`restore` puts the environment back when that Ray stops.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
from typing import Any, Iterator

#: Ray's switch for single-machine Rays (``ray_constants.ENABLE_RAY_CLUSTER``), read at import
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def start(ray: Any, num_cpus: int | None = None) -> dict[str, str | None]:
    """``ray.init`` a new local Ray on loopback with a fresh token; returns the environment to :func:`restore`."""
    before = _set_env({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                       "RAY_AUTH_TOKEN_PATH": None, LOOPBACK_ENV: "0"})
    try:
        _reload_auth()
        # "local" forces a new Ray even where RAY_ADDRESS is set; without a dashboard (memory, a port).
        with _loopback_node():
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, logging_level="WARNING",
                     log_to_driver=False)
    except BaseException:
        restore(ray, before)
        raise
    # Ray's processes have their environment now; the next ones of this process must not think
    # they are on a single-machine Ray. The token stays while this Ray runs (Ray may reload it).
    _set_env({LOOPBACK_ENV: before.pop(LOOPBACK_ENV)})
    return before


def restore(ray: Any, env: dict[str, str | None]) -> None:
    """Put back the environment :func:`start` changed (after that Ray stopped), and make Ray read it again."""
    _set_env(env)
    _reload_auth()


def is_loopback(ip: str) -> bool:
    """Whether the node address ``ip`` is on loopback."""
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _set_env(changes: dict[str, str | None]) -> dict[str, str | None]:
    """Set (None: unset) environment variables; returns what they were."""
    before = {k: os.environ.get(k) for k in changes}
    for key, value in changes.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return before


def _reload_auth() -> None:
    """Make Ray read its token settings again from the environment (its loader caches the first token
    it found; its config caches the mode): what Ray's own ``_enable_token_auth`` does."""
    try:
        from ray._raylet import AuthenticationTokenLoader, Config

        AuthenticationTokenLoader.instance().reset_cache()
        Config.initialize("")
    except (ImportError, AttributeError):  # a Ray without token authentication: nothing cached
        pass


@contextlib.contextmanager
def _loopback_node() -> Iterator[None]:
    """Ray's single-machine switch off during ``ray.init`` (see the module docstring); restored after."""
    try:
        import ray._private.ray_constants as constants
    except ImportError:
        yield
        return
    had = getattr(constants, "ENABLE_RAY_CLUSTER", None)
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if had is not None:
            constants.ENABLE_RAY_CLUSTER = had


__all__ = ["LOOPBACK_ENV", "is_loopback", "restore", "start"]
