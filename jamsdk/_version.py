"""The package version, in a module of its own so that any part of jamsdk can read it without
importing the package's ``__init__`` (which would make every such module part of one import
cycle with the Animator that ``jamsdk`` exposes). ``pyproject.toml`` reads it from here too."""

__version__ = "0.1.0"
