"""The ``lgn`` command line: a thin dispatcher over the library.

Each sub-command lives in its own module of this package with
``register(subparsers)`` adding its parser and setting ``func`` to a function
``(args) -> int``; modules are found automatically, so adding a command touches
no shared file. Errors a user
can fix (bad input, bad config, missing data) surface as one line on stderr and
exit code 2, never a traceback (set ``LGN_DEBUG=1`` to see one).

Settings that belong to the whole process are made here, never by a library
call: :func:`main` keeps freed memory mapped between training steps
(:mod:`lgn.train.memory`), ends a command on SIGTERM as on ^C (one line,
exit 143, its ``finally`` blocks run, a run folder's lock released), and figures are drawn on their own canvases, not
through a global matplotlib backend.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import signal
import sys

__all__ = ["main", "UsageError", "Interrupted", "one_line", "is_out_of_memory", "set_threads"]


class UsageError(Exception):
    """An error the user can fix; printed as one line, exit code 2."""


def one_line(error: BaseException) -> str:
    """``error``'s message on one line (lines joined by '; '), or its type where it has none."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__


_OUT_OF_MEMORY = ("can't allocate memory", "bad_alloc", "out of memory", "not enough memory",
                  "unable to allocate")


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocation that failed (numpy's and Python's ``MemoryError``, torch's allocators)."""
    if isinstance(error, MemoryError):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and any(marker in text for marker in _OUT_OF_MEMORY)


class Interrupted(KeyboardInterrupt):
    """A signal (``signum``) that stops a command, as ^C does; exit code 128 + ``signum``."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block) like every other error of the CLI."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {one_line(ValueError(message))} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # refused by the sub-command's parser, so the message names the command
        commands = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        commands.get(getattr(args, "command", None), parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from lgn.train.memory import keep_freed_memory

    keep_freed_memory()  # the CLI owns this process: its allocator settings are ours to choose
    restore = _stop_on_sigterm()
    try:
        return int(args.func(args) or 0)
    except (UsageError, ValueError, TypeError, OSError) as e:  # OSError: missing, unreadable or unwritable files
        if os.environ.get("LGN_DEBUG"):
            raise
        print(f"lgn {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as e:  # an allocation that failed: one line, like any other error
        if os.environ.get("LGN_DEBUG") or not is_out_of_memory(e):
            raise
        print(f"lgn {args.command}: error: out of memory: {one_line(e)[:300]}; try smaller settings "
              f"(fewer layers, groups, examples or classes, or a smaller batch)", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", signal.SIGINT)
        how = "" if signum == signal.SIGINT else f" ({signal.Signals(signum).name})"
        print(f"lgn {args.command}: interrupted{how}", file=sys.stderr)
        return 128 + signum
    finally:
        restore()


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


def _stop_on_sigterm():
    """Make SIGTERM end the command as ^C does (its ``finally`` blocks run, one line, exit 143) until the
    returned function restores the handler before.

    Left alone where someone else set a handler, off the main thread, and in a
    process torchrun started (``WORLD_SIZE``: its launcher reports for it).
    """
    import threading

    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL or threading.current_thread() is not threading.main_thread() \
            or "WORLD_SIZE" in os.environ:
        return lambda: None
    signal.signal(signal.SIGTERM, _raise_interrupted)
    return lambda: signal.signal(signal.SIGTERM, previous)
