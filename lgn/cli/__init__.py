"""The ``lgn`` command line: a thin dispatcher over the library.

Each sub-command lives in its own module of this package with
``register(subparsers)`` adding its parser and setting ``func`` to a function
``(args) -> int``; modules are found automatically, so adding a command touches
no shared file. Errors a user
can fix (bad input, bad config, missing data) surface as one line on stderr and
exit code 2, never a traceback (set ``LGN_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

__all__ = ["main", "UsageError", "one_line"]


class UsageError(Exception):
    """An error the user can fix; printed as one line, exit code 2."""


def one_line(error: BaseException) -> str:
    """``error``'s message on one line (lines joined by '; '), or its type where it has none."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lgn",
        description="Linear Group Networks: learn the linear group acting on a network's weights.",
    )
    from lgn import __version__
    parser.add_argument("--version", action="version", version=f"lgn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UsageError, ValueError, TypeError, OSError) as e:  # OSError: missing, unreadable or unwritable files
        if os.environ.get("LGN_DEBUG"):
            raise
        print(f"lgn {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lgn {args.command}: interrupted", file=sys.stderr)
        return 130
