"""Typed errors raised by jamsdk.

Every error a user can trigger with bad input derives from :class:`JamError`, so callers can catch
one class; the subclasses also derive from the matching built-in exception so generic handlers
(``except ValueError``) keep working. The CLI prints a ``JamError`` as one line and exits 2.
"""

from __future__ import annotations


class JamError(Exception):
    """Base class of every error jamsdk raises on purpose."""


class InputError(JamError, ValueError):
    """An argument, file or frame is not what was expected (the message says what came)."""


class ConfigError(InputError):
    """A configuration file or value is invalid; the message names the bad key."""


class CheckpointError(InputError):
    """A checkpoint is missing, corrupt, of an unknown format, or does not fit the model."""


class ManifestError(InputError):
    """A model folder or its ``manifest.json`` is missing, corrupt, unsafe or out of date."""


class EngineError(JamError, RuntimeError):
    """An exported graph or engine cannot be built, loaded or run."""


class ClusterError(JamError, ConnectionError):
    """A Ray cluster cannot be reached or used (address, token, versions, jamsdk on its nodes); the message
    names the cause and the fix."""


class MissingDependencyError(JamError, ImportError):
    """An optional dependency is not installed; the message is the exact pip command to run."""
