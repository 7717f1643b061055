"""Write docs/cli-reference.md from the ``jamsdk`` parsers: every command, every option.

    python docs/gen_cli.py            # rewrite the page
    python docs/gen_cli.py --check    # exit 1 when the page differs from the parsers (tests/test_docs.py)

The page is generated, not written by hand, so it cannot drift from ``jamsdk CMD --help``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parent / "cli-reference.md"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return "flag"
    if action.choices:
        return " \\| ".join(f"`{c}`" for c in action.choices)
    return f"`{action.metavar or action.dest.upper()}`"


def _default(action: argparse.Action) -> str:
    default = getattr(action, "single_default", action.default)
    if action.nargs == 0 or default is None or default == argparse.SUPPRESS:
        return ""
    return f"`{default}`"


def render() -> str:
    from jamsdk.cli import COMMANDS, build_parser

    parser = build_parser()
    out = ["# Command reference", "",
           "Every `jamsdk` command and option, generated from the parsers by `python docs/gen_cli.py` "
           "(a test fails when this page and `jamsdk CMD --help` differ). The grammar they share is on the "
           "[command line](cli.md) page.", ""]
    for name, _ in COMMANDS:
        sub = parser.commands[name]
        description = (sub.description or "").strip().split("\n\n")[0].replace("\n", " ")
        out += [f"## jamsdk {name}", "", description, ""]
        actions = [a for a in sub._actions if a.option_strings and a.dest != "help"]
        if not actions:
            out += ["No options.", ""]
            continue
        out += ["| option | value | default | what it does |", "|---|---|---|---|"]
        for action in actions:
            options = ", ".join(f"`{o}`" for o in action.option_strings)
            required = " (required)" if action.required else ""
            out.append(f"| {options}{required} | {_value(action)} | {_default(action)} | {_cell(action.help or '')} |")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    text = render()
    if check:
        same = PAGE.is_file() and PAGE.read_text(encoding="utf-8") == text
        if not same:
            print(f"{PAGE} is out of date: python docs/gen_cli.py", file=sys.stderr)
        return 0 if same else 1
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
