"""The ``lgn`` command line: a thin dispatcher over the library.

Each sub-command lives in its own module of this package with
``register(subparsers)`` adding its parser and setting ``func`` to a function
``(args) -> int``; modules are found automatically, so adding a command touches
no shared file. Errors a user
can fix (bad input, bad config, missing data) surface as one line on stderr and
exit code 2, never a traceback (set ``LGN_DEBUG=1`` to see one).

Settings that belong to the whole process are made here, never by a library
call: :func:`main` sets the CPU threads of every command (``--threads``, see
:func:`default_threads`), keeps freed memory mapped between training steps
(:mod:`lgn.memory`), ends a command on SIGTERM as on ^C (one line, exit 143, its
``finally`` blocks run, a run folder's lock released), and figures are drawn on their own canvases, not
through a global matplotlib backend.

Nothing here or in a command's ``register`` imports torch or numpy: ``lgn --help`` and argument
errors answer at once (``python -m benchmarks.cli_startup``), and so does every command's ``--help``: what
only the library can list (``lgn train``'s config keys) is printed by an option of its own
(``lgn train --list-keys``), and defaults the library holds are resolved after parsing.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import signal
import sys

__all__ = ["main", "UsageError", "Interrupted", "one_line", "is_out_of_memory", "default_threads", "use_threads",
           "positive_int", "add_alias", "stage_lines"]


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


def positive_int(text: str) -> int:
    """argparse type: a positive integer, or an argument error naming the text given."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def default_threads() -> int:
    """The CPU threads a command uses without ``--threads``: ``OMP_NUM_THREADS`` where it is set to a positive
    integer, else 1.

    One thread, because more collapse when another process is busy on the same cores: torch's threads wait
    for each other at every operation, and one of them waiting for a core stalls them all. On a loaded
    2-core machine a training epoch took 6-8 times longer on 2 threads than on 1 (docs/performance.md,
    "Threads").
    """
    text = os.environ.get("OMP_NUM_THREADS", "")
    return int(text) if text.isdigit() and int(text) > 0 else 1


class _Alias(argparse.Action):
    """An old spelling of an option: stores into the new option's ``dest`` and prints a one-line hint."""

    def __init__(self, option_strings, dest, new: str, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: {option_string} is now {self.new} (the old spelling still works)", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_alias(parser, old: str, new: str) -> None:
    """Accept ``old`` (e.g. ``--data``) as a hidden alias of the option ``new`` (``--dataset``) of ``parser``.

    A required option and its alias go in a required mutually exclusive group (``parser``), so either
    satisfies it."""
    dest = next(a.dest for a in parser._actions if new in a.option_strings)
    parser.add_argument(old, dest=dest, action=_Alias, new=new, help=argparse.SUPPRESS)


def stage_lines(command: str):
    """A function printing each stage of a long command as a line to stderr, with the time since the first,
    ``lgn discover [12 s]: training epoch 3/10 ...``: the command is never silent for long, on a terminal
    or away from one."""
    import time

    start = time.monotonic()

    def show(text: str) -> None:
        seconds = time.monotonic() - start
        when = f"{seconds:.0f} s" if seconds < 100 else f"{seconds / 60:.1f} min"
        print(f"lgn {command} [{when}]: {text}", file=sys.stderr, flush=True)

    return show


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")  # read as torch and BLAS load


def use_threads(n: int) -> None:
    """Use ``n`` CPU threads in this process. Before torch and numpy are imported (the ``lgn`` command: a
    command imports them only once its arguments are checked), through the environment variables they read
    as they load, which the processes this one starts inherit too; when they are loaded already (:func:`main`
    called from Python), by :func:`lgn.limits.set_threads`."""
    if "torch" in sys.modules or "numpy" in sys.modules:
        from lgn.limits import set_threads

        set_threads(n)
    else:
        os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(n)))


def _add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="CPU threads for torch and BLAS (default: $OMP_NUM_THREADS, else 1, which does not "
                             "slow down when other processes share the cores; see docs/performance.md)")


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
    for command in sub.choices.values():  # one --threads, the same for every command
        _add_threads(command)
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
    from lgn.memory import keep_freed_memory

    restore = _stop_on_sigterm()
    try:
        use_threads(args.threads or default_threads())  # the CLI owns this process: its threads and allocator
        keep_freed_memory()                             # settings are ours to choose
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
