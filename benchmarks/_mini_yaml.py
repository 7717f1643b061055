"""A reader for the YAML subset of jamsdk's shipped model configs, for machines without PyYAML.

The GPU check runs on lent machines that have PyTorch but maybe not PyYAML, and nothing can be
installed there; :func:`install` registers this module as ``yaml`` only when the real one does not
import, so ``jamsdk.config`` reads the shipped configs unchanged. Supported: block mappings by
indentation, flow mappings and lists (nested), comments, plain and quoted scalars (int, float,
bool, null, str). Anything else raises :class:`YAMLError`. A test checks it against PyYAML on
every shipped config.
"""

from __future__ import annotations

import re
import sys
import types
from typing import Any


class YAMLError(ValueError):
    pass


_INT = re.compile(r"^[-+]?\d+$")
_FLOAT = re.compile(r"^[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$")


def _scalar(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "~", ""):
        return None
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


def _flow(text: str, i: int = 0) -> tuple[Any, int]:
    """Parse a flow collection or scalar starting at ``text[i]``; returns (value, next index)."""
    while i < len(text) and text[i] == " ":
        i += 1
    if i < len(text) and text[i] in "[{":
        closing, is_map = ("]", False) if text[i] == "[" else ("}", True)
        items: Any = {} if is_map else []
        i += 1
        while True:
            while i < len(text) and text[i] in " ,":
                i += 1
            if i >= len(text):
                raise YAMLError(f"unclosed flow collection: {text!r}")
            if text[i] == closing:
                return items, i + 1
            if is_map:
                colon = text.index(":", i)
                key = _scalar(text[i:colon])
                value, i = _flow(text, colon + 1)
                items[key] = value
            else:
                value, i = _flow(text, i)
                items.append(value)
    end = i
    while end < len(text) and text[end] not in ",]}":
        end += 1
    return _scalar(text[i:end]), end


def _strip_comment(line: str) -> str:
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def safe_load(text: str) -> Any:
    """The document in ``text`` (a mapping at the top, as the configs are)."""
    lines = [(len(raw) - len(raw.lstrip(" ")), raw.strip())
             for raw in (_strip_comment(r).rstrip() for r in text.splitlines()) if raw.strip()]
    if not lines:
        return None
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    for n, (indent, line) in enumerate(lines):
        if line.startswith("- ") or ":" not in line:
            raise YAMLError(f"unsupported YAML (line {line!r}): only mappings, flow lists and scalars")
        while indent <= stack[-1][0]:
            stack.pop()
        key, _, rest = line.partition(":")
        target = stack[-1][1]
        rest = rest.strip()
        if rest:
            value, end = _flow(rest)
            if rest[end:].strip():
                raise YAMLError(f"trailing text in line {line!r}")
            target[_scalar(key)] = value
        else:
            child: dict[str, Any] = {}
            nested = n + 1 < len(lines) and lines[n + 1][0] > indent
            target[_scalar(key)] = child if nested else None
            if nested:
                stack.append((indent, child))
    return root


def install() -> bool:
    """Register this module as ``yaml`` unless PyYAML imports; True when the fallback is in use."""
    try:
        import yaml  # noqa: F401
    except ImportError:
        module = types.ModuleType("yaml")
        module.safe_load, module.YAMLError = safe_load, YAMLError  # type: ignore[attr-defined]
        module.__doc__ = __doc__
        sys.modules["yaml"] = module
        return True
    return False
