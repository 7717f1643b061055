"""Starting ``jamsdk serve``: a taken port and a deployment that fails come back as one-line errors.

Ray Serve reports both as long tracebacks: a port in use surfaces from inside its HTTP proxy
actor, and a deployment whose replicas cannot start says only "Failed to update the deployments";
the replicas' own exception is in the deployment's status message (and Ray's log files). This
module checks the port before Ray starts and reads that message when a deployment fails.
"""

from __future__ import annotations

import errno
import re
import socket
from typing import Any

from jamsdk.errors import EngineError, InputError, JamError

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The last line of a Python traceback: "package.module.ErrorName: message" (or just "ErrorName").
_EXCEPTION_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning))(?::\s?(?P<msg>.*))?$")


def check_port(host: str, port: int) -> None:
    """InputError when ``host:port`` cannot be listened on (taken, not this machine's, out of range).

    Binds and closes a socket the way the HTTP server will (``SO_REUSEADDR``: a port held by a
    listener is refused, one in TIME_WAIT is not).
    """
    if not (1 <= port <= 65535):
        raise InputError(f"--port: expected 1 to 65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError(f"--port {port}: already in use on {host} (choose another port)") from None
            raise InputError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc})") from None


def cause_of(text: str) -> str:
    """The exception at the end of a traceback text, as one line (a jamsdk error as its message only)."""
    lines = [line.strip() for line in _ANSI.sub("", text or "").splitlines() if line.strip()]
    for line in reversed(lines):
        match = _EXCEPTION_LINE.match(line)
        if match:
            kind, message = match["type"], (match["msg"] or "").strip()
            if kind.startswith("jamsdk."):
                return message or kind.rsplit(".", 1)[-1]
            short = kind.rsplit(".", 1)[-1]
            return f"{short}: {message}" if message else short
    return lines[-1] if lines else ""


def deployment_failure(name: str) -> str:
    """Why Serve's application ``name`` failed to deploy, from its deployments' status (one line)."""
    from ray import serve

    try:
        app = serve.status().applications.get(name)
    except Exception:  # noqa: BLE001 - the controller may be gone; the caller has its own message
        return ""
    if app is None:
        return ""
    for deployment_name, deployment in app.deployments.items():
        if str(getattr(deployment.status, "value", deployment.status)) in ("DEPLOY_FAILED", "UNHEALTHY"):
            cause = cause_of(deployment.message)
            if cause:
                return f"deployment {deployment_name}: {cause}"
    return cause_of(app.message)


def start(application: Any, host: str, port: int, name: str = "jamsdk") -> None:
    """Run ``application`` (:func:`jamsdk.serve.app.run`), with its failures as one-line errors.

    Raises:
        InputError: the HTTP server cannot listen on ``host:port``.
        EngineError: the deployment failed; the message is its replicas' own error.
    """
    from jamsdk.serve import app as service

    try:
        service.run(application, host=host, port=port, name=name)
    except JamError:
        raise  # already one line (e.g. another jamsdk serve holds the name)
    except Exception as exc:  # noqa: BLE001 - Serve raises RuntimeError and RayTaskError wrappers
        text = str(getattr(exc, "cause", None) or exc)
        if "Failed to bind to address" in text:
            raise InputError(f"--port {port}: cannot listen on {host} ({cause_of(text)})") from None
        why = deployment_failure(name) or cause_of(text)
        raise EngineError(f"the service did not start: {why}") from None


__all__ = ["cause_of", "check_port", "deployment_failure", "start"]
