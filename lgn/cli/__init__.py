"""The ``lgn`` command line: a thin dispatcher over the library.

Each sub-command lives in its own module with ``register(subparsers)`` adding
its parser and setting ``func`` to a function ``(args) -> int``. Errors a user
can fix (bad input, bad config, missing data) surface as one line on stderr and
exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["main", "UsageError"]

# sub-command modules, in the order --help lists them
COMMANDS = ("demo",)


class UsageError(Exception):
    """An error the user can fix; printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lgn",
        description="Linear Group Networks: learn the linear group acting on a network's weights.",
    )
    from lgn import __version__
    parser.add_argument("--version", action="version", version=f"lgn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"lgn.cli.{name.replace('-', '_')}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UsageError, ValueError, TypeError, FileNotFoundError, FileExistsError) as e:
        print(f"lgn {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lgn {args.command}: interrupted", file=sys.stderr)
        return 130
