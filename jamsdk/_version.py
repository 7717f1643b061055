"""The package version, in a module of its own so that any part of jamsdk can read it without
importing the package's ``__init__`` (which would make every such module part of one import
cycle with the Animator that ``jamsdk`` exposes). It is the one source: ``pyproject.toml`` reads it
for the wheel's metadata, and ``jamsdk --version``, ``info``, ``doctor``, every manifest and every
checkpoint show it."""

__version__ = "0.1.0"


def describe() -> str:
    """``jamsdk 0.1.0 (clone at DIR)`` or ``jamsdk 0.1.0 (installed package)``: the version and how
    this jamsdk is installed, which decides the pip command that adds an extra."""
    from jamsdk._lazy import editable_checkout

    clone = editable_checkout()
    return f"jamsdk {__version__} ({f'clone at {clone}' if clone else 'installed package'})"
