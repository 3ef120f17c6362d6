"""Epoch time of ``lgn train`` on 1 against 2 threads, alone and beside a second busy process.

``python -m benchmarks.threads [--rounds R] [--epochs N] [--subset N]`` runs, R rounds, each with
the order of the four cases rotated::

    lgn train --dataset mnist5k --epochs N --set data.train_subset=N --no-progress --threads T --out DIR

for T in 1 and 2, each once with nothing else of its own running ("alone") and once beside a busy
process (one Python process spinning on one core, "loaded"). It prints, for each case, the median
and range of the epochs' ``train_seconds`` (from ``metrics.jsonl``) and the load average before
the round. "Alone" is not "idle" on a shared machine: the load average says how busy it was.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CASES = [(1, False), (2, False), (1, True), (2, True)]  # (threads, loaded)


def epoch_seconds(threads: int, loaded: bool, epochs: int, subset: int, out: Path) -> list[float]:
    """``train_seconds`` of each epoch of one ``lgn train`` on ``threads`` threads, beside a busy process if
    ``loaded``."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if loaded else None
    try:
        subprocess.run([sys.executable, "-m", "lgn", "train", "--dataset", "mnist5k", "--epochs", str(epochs),
                        "--set", f"data.train_subset={subset}", "--no-progress", "--threads", str(threads),
                        "--force", "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    return [json.loads(line)["train_seconds"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the four cases (default 2)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each run (default 2)")
    parser.add_argument("--subset", type=int, default=1000, help="training images (default 1000)")
    args = parser.parse_args(argv)
    times: dict[tuple[int, bool], list[float]] = {case: [] for case in CASES}
    loads = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            loads.append(os.getloadavg()[0])
            for threads, loaded in CASES[r % 4:] + CASES[:r % 4]:
                times[threads, loaded] += epoch_seconds(threads, loaded, args.epochs, args.subset,
                                                        Path(tmp) / "run")
    print(f"{os.cpu_count()} cores; 1-minute load average before each round: "
          + ", ".join(f"{x:.1f}" for x in loads))
    print("threads  beside a busy process  epoch s, median (min-max)")
    for threads, loaded in CASES:
        t = times[threads, loaded]
        print(f"{threads:>7}  {'yes' if loaded else 'no':>21}  {statistics.median(t):.2f} ({min(t):.2f}-{max(t):.2f})")


if __name__ == "__main__":
    main()
