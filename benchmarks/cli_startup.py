"""How long the ``lgn`` command takes when it has no work to do: ``--help`` and argument errors.

``python -m benchmarks.cli_startup [--rounds R]`` runs each command below R times in a fresh
interpreter (``sys.executable -m lgn ...``), round by round, and prints the median and range of
the wall seconds, with ``python -c pass`` as the floor every command pays. A command that answers
before any work should not import torch, numpy or the library's heavy modules: the last column says
whether the command's process imported torch (``-X importtime``, run once per command).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "lgn --help": ["-m", "lgn", "--help"],
    "lgn --version": ["-m", "lgn", "--version"],
    "lgn train --help": ["-m", "lgn", "train", "--help"],
    "lgn probe --help": ["-m", "lgn", "probe", "--help"],
    "lgn eval --help": ["-m", "lgn", "eval", "--help"],
    "lgn train (no --out)": ["-m", "lgn", "train", "--dataset", "mnist5k"],
    "lgn train --epochs x": ["-m", "lgn", "train", "--out", "r", "--epochs", "x"],
    "lgn discover --bogus": ["-m", "lgn", "discover", "--bogus"],
    "lgn analyze (no run)": ["-m", "lgn", "analyze"],
}


def seconds(args: list[str]) -> float:
    """Wall seconds of ``python args`` (its exit code is not checked: an argument error exits 2)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def imports_torch(args: list[str]) -> bool:
    """Whether ``python args`` imports torch."""
    err = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True).stderr
    return any(line.split("|")[-1].strip() == "torch" for line in err.splitlines())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs of each command (default 5)")
    args = parser.parse_args(argv)
    times = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):  # round by round, so that load from other processes hits every command
        for name, command in COMMANDS.items():
            times[name].append(seconds(command))
    width = max(map(len, COMMANDS))
    print(f"{'command':<{width}}  median s  (min-max)      torch imported")
    for name, command in COMMANDS.items():
        t = times[name]
        print(f"{name:<{width}}  {statistics.median(t):8.3f}  ({min(t):.3f}-{max(t):.3f})  "
              f"{'yes' if imports_torch(command) else 'no'}")


if __name__ == "__main__":
    main()
