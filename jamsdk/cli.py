"""The ``jamsdk`` command (also ``python -m jamsdk``).

Each subcommand lives in its own module under :mod:`jamsdk.commands` with ``add_parser(sub)`` and
``run(args) -> int``; this file only wires them. A :class:`~jamsdk.errors.JamError` is printed as
one line and exits with status 2; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import re
import sys
import warnings

from jamsdk._quiet import library_output_hidden
from jamsdk._version import __version__
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


class JamParser(argparse.ArgumentParser):
    """argparse with its errors as one line (``jamsdk CMD: error: ...``), like every other error, a
    "did you mean" for a mistyped command, choice or option, and no abbreviated options: with
    argparse's ``allow_abbrev``, ``--output out.mp4`` silently meant ``--output-size out.mp4``."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - argparse's
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: ANN201 - argparse's signature (it never returns)
        for (option, word), instead in RETIRED_CHOICES.items():
            if message.startswith(f"argument {option}: invalid choice: {word!r}"):
                self.exit(2, f"{self.prog}: error: {option} {word} is now spelled {instead}\n")
        choice = _INVALID_CHOICE.match(message)
        if choice:
            message += did_you_mean(choice["word"], re.findall(r"'([^']*)'", choice["choices"]))
        unknown = message.partition("unrecognized arguments: ")[2].split()
        if unknown and unknown[0].startswith("-"):
            message += did_you_mean(unknown[0].split("=", 1)[0], self._option_string_actions)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


_INVALID_CHOICE = re.compile(r"argument .*: invalid choice: '(?P<word>[^']*)' \(choose from (?P<choices>.*)\)$")


def did_you_mean(word: str, candidates) -> str:  # noqa: ANN001 - any iterable of str
    """``"; did you mean X?"`` for the candidate closest to a mistyped ``word`` (difflib), else ``""``."""
    close = difflib.get_close_matches(word, [c for c in candidates if c != "-h"], n=1, cutoff=0.7)
    return f"; did you mean {close[0]}?" if close else ""


#: words earlier versions accepted, and what a script that used them should say now
RETIRED_CHOICES: dict[tuple[str, str], str] = {
    ("--precision", "both"): "--precision fp32 --precision fp16",
    ("--precision", "all"): "--precision fp32 --precision fp16 --precision int8",
    ("--mode", "all"): "--mode relative --mode standard --mode avd",
}


class CommandParser(JamParser):
    """A subcommand's parser. The grammar has no positional arguments: every operand is a named
    option, so a bare word where none belongs is reported in one line with the flag to use
    (``OPERANDS`` of the command's module) before argparse's own checks run. The options given on
    the command line are recorded in ``args._given`` (see :func:`jamsdk.commands._options.given`)."""

    operands: str = ""

    def parse_known_args(self, args=None, namespace=None):  # noqa: ANN001, ANN201
        args = list(args) if args is not None else sys.argv[1:]
        stray, unknown = self._first_stray(args)
        if unknown is not None:  # before argparse's checks: "--source is required" would hide a mistyped --src
            name = unknown.split("=", 1)[0]
            self.exit(2, f"{self.prog}: error: unrecognized option {name!r}"
                         f"{did_you_mean(name, self._option_string_actions)} (see {self.prog} --help)\n")
        if stray is not None:
            hint = f"this command takes {self.operands}" if self.operands else "this command takes no operands"
            self.exit(2, f"{self.prog}: error: unexpected argument {stray!r}: {hint}\n")  # one line, no usage
        parsed, rest = super().parse_known_args(args, namespace)
        parsed._given = self._given_options(args)
        return parsed, rest

    def _given_options(self, args: list[str]) -> frozenset[str]:
        found = set()
        for token in args:
            if token == "--":
                break
            if token.startswith("--"):
                action = self._option(token.split("=", 1)[0])
                if action is not None:
                    found.update(o for o in action.option_strings if o.startswith("--"))
        return frozenset(found)

    def _option(self, token: str) -> argparse.Action | None:
        return self._option_string_actions.get(token)

    def _first_stray(self, args: list[str]) -> tuple[str | None, str | None]:
        """The first operand where none belongs, and the first unknown option (each None if none)."""
        i, unknown = 0, None
        while i < len(args):
            token = args[i]
            i += 1
            if token == "--":
                return (args[i] if i < len(args) else None), unknown
            if token.startswith("-") and len(token) > 1:
                action = self._option(token.split("=", 1)[0])
                if action is None:  # an unknown option; skip a value it may have
                    unknown = unknown or token
                    if "=" not in token and i < len(args) and not args[i].startswith("-"):
                        i += 1
                elif action.nargs != 0 and "=" not in token:
                    i += 1
                continue
            return token, unknown
        return None, unknown


def _plain(text: str | None) -> str | None:
    """Help text without reST markup (``code`` and literal-block colons show literally in a terminal)."""
    if not text or text == argparse.SUPPRESS:
        return text
    return text.replace("``", "").replace("`", "").replace("::\n", ":\n")


def build_parser() -> argparse.ArgumentParser:
    parser = JamParser(prog="jamsdk", description="Image animation (JAM/MRAA): train, export, run.")
    parser.add_argument("--version", action="version", version=f"jamsdk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for name, module in COMMANDS:
        mod = importlib.import_module(f"jamsdk.commands.{module}")
        p = mod.add_parser(sub, name)
        p.set_defaults(_run=mod.run, _extra=getattr(mod, "EXTRA", None), _quiet=getattr(mod, "QUIET", False))
        if getattr(mod, "QUIET", False):
            p.add_argument("--verbose", action="store_true",
                           help="also show what the libraries underneath print (Ray, FFmpeg, OpenCV, ONNX Runtime, "
                                "Python warnings); hidden by default, so that only jamsdk's own lines show")
        p.operands = getattr(mod, "OPERANDS", "")
        p.formatter_class = argparse.RawDescriptionHelpFormatter
        p.description = _plain(p.description)
        for action in p._actions:
            action.help = _plain(action.help)
    for action in sub._choices_actions:
        action.help = _plain(action.help)
    parser.commands = sub.choices
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``jamsdk`` command line; the exit status (0 ok, 2 a bad input or a missing extra)."""
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # a reader that stopped early (jamsdk info | head) shows here, not at exit
    except BrokenPipeError:
        # Python's advice for SIGPIPE (the signal module's docs): send the rest of stdout nowhere so
        # that the interpreter's own flush at exit is quiet too, and exit 1 as Python does on EPIPE.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout without a file descriptor (captured)
            pass
        return 1


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # named by the command it was given to, as its other errors are
        parser.commands.get(getattr(args, "command", None), parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if not hasattr(args, "_run"):
        parser.print_help()
        return 2
    quiet = args._quiet and not getattr(args, "verbose", False)
    try:
        if getattr(args, "max_pixels", None) is not None:
            from jamsdk.image_header import set_max_pixels

            set_max_pixels(args.max_pixels)  # before any picture is read, here and in child processes
        with warnings.catch_warnings(), library_output_hidden(quiet):
            _notes_as_lines(args.command, quiet)
            return int(args._run(args) or 0)
    except JamError as exc:
        print(f"jamsdk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        from jamsdk._lazy import install_command, missing_extra

        found = missing_extra(exc, getattr(args, "_extra", None))
        if found is None:
            raise
        package, extra = found
        print(f"jamsdk {args.command}: error: {package} is not installed (jamsdk {args.command} needs it); install "
              f"it with: {install_command(extra)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"jamsdk {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a full disk is the machine's state, not a bug: one line (jamsdk._atomic.disk_full)
        from jamsdk._atomic import disk_full

        text = disk_full(exc)
        if text is None:
            raise
        print(f"jamsdk {args.command}: error: {text}", file=sys.stderr)
        return 2


def _notes_as_lines(command: str, quiet: bool = False) -> None:
    """Show the bundled model's DemoModelWarning as one plain stderr line; other warnings as Python
    shows them, except the libraries' (not jamsdk's own) while their output is hidden (``quiet``)."""
    from jamsdk.bundled import DemoModelWarning

    show = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        if issubclass(category, DemoModelWarning):
            print(f"jamsdk {command}: note: {message}", file=sys.stderr, flush=True)
        elif not quiet or category.__module__.partition(".")[0] == "jamsdk":
            show(message, category, filename, lineno, file, line)

    warnings.showwarning = showwarning
    # Shown whatever the warning filters say (bundled.warn_if_demo already limits it to once).
    warnings.simplefilter("always", DemoModelWarning)


if __name__ == "__main__":
    raise SystemExit(main())
