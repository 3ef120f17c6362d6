"""Runs an hour on this machine: one run at a time on every core, against ``--jobs`` runs at once.

``python -m benchmarks.jobs [--epochs N] [--rounds R] [--jobs J]`` trains J runs of the
paper-scale grid's recipe (mnist5k classification, lgn-free, seeds 0 … J−1, N epochs
instead of 100) into fresh folders, two ways, taking turns round by round with the order
flipped each round:

- **serial**: ``run_all(jobs=1)`` in this process on all the cores (``--threads`` of ``lgn
  reproduce`` set to the core count), one run after the other: what ``lgn reproduce`` did
  before ``--jobs``;
- **jobs**: ``run_all(jobs=J)``, each run in a worker process on cores ÷ J threads.

Both train the same runs; the wall time of each way covers the J runs (for jobs, the
workers' start-up included). It prints each round's wall seconds, the runs an hour of each
way (median round) and their ratio with its per-round range. Run it on an otherwise idle
machine: it measures how the machine's cores are best shared, which other processes change.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from lgn.limits import set_threads
from lgn.reproduce import PAPER, build_grid, data_plans
from lgn.reproduce.runner import run_all, threads_per_run


def specs(epochs: int, jobs: int):
    """J runs of the paper grid's mnist5k classification, lgn-free, with ``epochs`` epochs."""
    plans = [p for p in data_plans() if p.dataset == "mnist5k"]
    grid = [s for s in build_grid(plans, PAPER, jobs, ("lgn-free",)) if s.task == "classify"]
    for s in grid:
        s.settings["train"]["epochs"] = epochs
    return grid


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=10, help="epochs of every run (default 10)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of both ways (default 3)")
    p.add_argument("--jobs", type=int, default=2, help="runs at once (default 2)")
    args = p.parse_args(argv)
    cores = os.cpu_count() or 1
    set_threads(cores)
    grid = specs(args.epochs, args.jobs)
    seconds: dict[str, list[float]] = {"serial": [], "jobs": []}
    print(f"{args.jobs} runs of mnist5k classify lgn-free, {args.epochs} epochs each; {cores} cores; "
          f"serial on {cores} threads, jobs on {threads_per_run(args.jobs, None)} each")
    for r in range(args.rounds):
        for way in (("serial", "jobs") if r % 2 == 0 else ("jobs", "serial")):
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                run_all(grid, Path(tmp), log=None, jobs=1 if way == "serial" else args.jobs)
                seconds[way].append(time.perf_counter() - start)
        print(f"round {r + 1}: serial {seconds['serial'][-1]:.1f} s, jobs {seconds['jobs'][-1]:.1f} s", flush=True)
    per_hour = {way: 3600 * args.jobs / statistics.median(s) for way, s in seconds.items()}
    ratios = [a / b for a, b in zip(seconds["serial"], seconds["jobs"])]
    print(f"runs an hour: serial {per_hour['serial']:.1f}, --jobs {args.jobs} {per_hour['jobs']:.1f}: "
          f"{per_hour['jobs'] / per_hour['serial']:.2f}x (per round {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
