"""CLI subcommands: one module each, with ``add_parser(subparsers, name)`` and ``run(args) -> int``.

Modules here import heavy packages inside ``run`` only, so ``jamsdk --help`` stays fast.
"""
