"""The benchmark scripts' common tail: write the reports, print them, and check counts (torch-free).

Every script renders its result as markdown and can also write it (``--markdown``) and the raw
result (``--json``); the load benchmarks of servers (``live_load.py``, ``serve_load.py``) import
this without pulling torch in, which :mod:`_cost` (MAC counting) needs.
"""

from __future__ import annotations

from typing import Callable


def write_reports(result: dict, text: str, json_out: str | None = None, markdown_out: str | None = None) -> None:
    """Write a benchmark's result as JSON and its markdown report, each atomically (when asked)."""
    import json

    from jamsdk._atomic import write_bytes

    if json_out:
        write_bytes(json_out, (json.dumps(result, indent=1) + "\n").encode())
    if markdown_out:
        write_bytes(markdown_out, text.encode())


def run_and_report(run: Callable[[], dict], render: Callable[[dict], str], json_out: str | None = None,
                   markdown_out: str | None = None) -> dict | None:
    """The scripts' common tail: run, render, write the reports, print; ``None`` (after printing the
    error) when the run raised a :class:`~jamsdk.errors.JamError`, for the script to exit with 2."""
    import sys

    from jamsdk.errors import JamError

    try:
        result = run()
        text = render(result)
        write_reports(result, text, json_out, markdown_out)
    except JamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    print(text, end="")
    return result


def require_at_least(parser, args, minimum: int, *flags: str) -> None:
    """``parser.error`` naming the first of ``flags`` (attribute names) below ``minimum``; ``None`` passes
    (an option left unset)."""
    for flag in flags:
        value = getattr(args, flag)
        if value is not None and value < minimum:
            parser.error(f"--{flag.replace('_', '-')}: expected an integer ≥ {minimum}, got {value}")
