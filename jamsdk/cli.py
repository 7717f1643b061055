"""The ``jamsdk`` command (also ``python -m jamsdk``).

Each subcommand lives in its own module under :mod:`jamsdk.commands` with ``add_parser(sub)`` and
``run(args) -> int``; this file only wires them. A :class:`~jamsdk.errors.JamError` is printed as
one line and exits with status 2; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from jamsdk import __version__
from jamsdk.errors import JamError

# (command name, module under jamsdk.commands)
COMMANDS: tuple[tuple[str, str], ...] = (
    ("info", "info"),
    ("doctor", "doctor"),
    ("convert-mraa", "convert_mraa"),
    ("synth", "synth"),
    ("train", "train"),
    ("eval", "eval"),
    ("export", "export"),
    ("build", "build"),
    ("animate", "animate"),
    ("demo", "demo"),
    ("bench", "bench"),
    ("batch", "batch"),
    ("serve", "serve"),
    ("live", "live"),
)


class CommandParser(argparse.ArgumentParser):
    """A subcommand's parser. The grammar has no positional arguments: every operand is a named
    option, so a bare word where none belongs is reported in one line with the flag to use
    (``OPERANDS`` of the command's module) before argparse's own checks run."""

    operands: str = ""

    def parse_known_args(self, args=None, namespace=None):  # noqa: ANN001, ANN201
        stray = self._first_stray(list(args) if args is not None else sys.argv[1:])
        if stray is not None:
            hint = f"this command takes {self.operands}" if self.operands else "this command takes no operands"
            self.exit(2, f"{self.prog}: error: unexpected argument {stray!r}: {hint}\n")  # one line, no usage
        return super().parse_known_args(args, namespace)

    def _option(self, token: str) -> argparse.Action | None:
        action = self._option_string_actions.get(token)
        if action is None and self.allow_abbrev and token.startswith("--"):
            found = {a for opt, a in self._option_string_actions.items() if opt.startswith(token)}
            action = found.pop() if len(found) == 1 else None
        return action

    def _first_stray(self, args: list[str]) -> str | None:
        i = 0
        while i < len(args):
            token = args[i]
            i += 1
            if token == "--":
                return args[i] if i < len(args) else None
            if token.startswith("-") and len(token) > 1:
                if "=" in token:
                    continue
                action = self._option(token)
                if action is None:  # an unknown option: argparse reports it; skip a value it may have
                    if i < len(args) and not args[i].startswith("-"):
                        i += 1
                elif action.nargs != 0:
                    i += 1
                continue
            return token
        return None


def _plain(text: str | None) -> str | None:
    """Help text without reST markup (``code`` and literal-block colons show literally in a terminal)."""
    if not text or text == argparse.SUPPRESS:
        return text
    return text.replace("``", "").replace("`", "").replace("::\n", ":\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jamsdk", description="Image animation (JAM/MRAA): train, export, run.")
    parser.add_argument("--version", action="version", version=f"jamsdk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for name, module in COMMANDS:
        mod = importlib.import_module(f"jamsdk.commands.{module}")
        p = mod.add_parser(sub, name)
        p.set_defaults(_run=mod.run)
        p.operands = getattr(mod, "OPERANDS", "")
        p.formatter_class = argparse.RawDescriptionHelpFormatter
        p.description = _plain(p.description)
        for action in p._actions:
            action.help = _plain(action.help)
    for action in sub._choices_actions:
        action.help = _plain(action.help)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help()
        return 2
    try:
        if getattr(args, "max_pixels", None) is not None:
            from jamsdk.image_header import set_max_pixels

            set_max_pixels(args.max_pixels)  # before any picture is read, here and in child processes
        with warnings.catch_warnings():
            _notes_as_lines(args.command)
            return int(args._run(args) or 0)
    except JamError as exc:
        print(f"jamsdk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"jamsdk {args.command}: interrupted", file=sys.stderr)
        return 130


def _notes_as_lines(command: str) -> None:
    """Show the bundled model's DemoModelWarning as one plain stderr line (others unchanged)."""
    from jamsdk.bundled import DemoModelWarning

    show = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        if issubclass(category, DemoModelWarning):
            print(f"jamsdk {command}: note: {message}", file=sys.stderr, flush=True)
        else:
            show(message, category, filename, lineno, file, line)

    warnings.showwarning = showwarning
    # Shown whatever the warning filters say (bundled.warn_if_demo already limits it to once).
    warnings.simplefilter("always", DemoModelWarning)


if __name__ == "__main__":
    raise SystemExit(main())
