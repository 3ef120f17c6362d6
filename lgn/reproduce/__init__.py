"""``lgn reproduce``: the paper's data × task grid with baselines, seeds, analysis, distances and RESULTS.md.

:func:`reproduce` trains every run of the grid (:mod:`~lgn.reproduce.grid`) into
``OUT/runs/<dataset>-<task>-<model>-s<seed>/`` through :func:`lgn.train.train`
(:mod:`~lgn.reproduce.runner`: finished runs are read back, partial ones resumed),
analyses every LGN run, computes the tables, targets, distances, the measures of what
training did (data-free path, orbit-level naming), the abstract's claims and the time
budget (:mod:`~lgn.reproduce.results`), runs the planted-symmetry comparison
(:mod:`~lgn.reproduce.planted`) and writes ``OUT/results.json`` and
``OUT/RESULTS.md`` with its figures (:mod:`~lgn.reproduce.report`).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

from lgn.reproduce.grid import (AUTHORS_PREPROCESSING, LGN_MODELS, MODELS, PAPER, QUICK, SCALES, DataPlan, Recipe,
                                RunSpec, build_grid, data_plans)
from lgn.reproduce.planted import FULL_DISCOVERY, QUICK_DISCOVERY
from lgn.runs import cpu_model

__all__ = ["reproduce", "check_grid", "machine_info", "MODELS", "LGN_MODELS", "QUICK", "PAPER", "SCALES",
           "AUTHORS_PREPROCESSING", "DataPlan", "Recipe", "RunSpec", "build_grid", "data_plans", "QUICK_DISCOVERY",
           "FULL_DISCOVERY", "GRID_FILE", "RESULTS_JSON", "RESULTS_MD"]

GRID_FILE = "runs/grid.json"  # state files live beside the run folders
RESULTS_JSON = "results.json"
RESULTS_MD = "RESULTS.md"


def machine_info(device: str, jobs: int = 1, threads: int | None = None) -> dict:
    """Platform, CPU model, cores, Python and torch versions, the device (and GPU name), and how runs train:
    ``jobs`` at once, on ``torch_threads`` threads each (:func:`lgn.reproduce.runner.threads_per_run`)."""
    import torch

    from lgn.reproduce.runner import threads_per_run

    info = {"platform": platform.platform(), "cpu": cpu_model(), "cores": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": threads_per_run(jobs, threads), "jobs": jobs, "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _git() -> tuple[str | None, bool]:
    """The commit of the lgn source tree and whether it has uncommitted changes (None when not in git)."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip() != ""
        return commit, dirty
    except (OSError, subprocess.SubprocessError):
        return None, False


def _grid_description(specs: list[RunSpec], recipe: Recipe, seeds: int, discovery: dict | None) -> dict:
    return {"recipe": recipe.to_dict(), "seeds": seeds, "discovery": discovery,
            "runs": {s.name: s.settings for s in specs}}


def check_grid(out: Path, grid: dict, force: bool) -> None:
    """Refuse an ``out`` made with other grid settings, unless ``force``; then record ``grid`` in it."""
    path = out / GRID_FILE
    if path.is_file() and not force:
        try:
            saved = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            saved = None
        if saved != grid:
            what = [k for k in grid if not isinstance(saved, dict) or saved.get(k) != grid[k]]
            raise ValueError(f"{out} holds a reproduction with other grid settings ({', '.join(what) or 'unreadable'}"
                             f" differ); repeat its command, choose another --out, or pass --force to retrain "
                             f"what changed")
    path.parent.mkdir(parents=True, exist_ok=True)
    from lgn.files import write_json

    write_json(grid, path)


def reproduce(out: str | os.PathLike, *, plans: list[DataPlan], recipe: Recipe = QUICK, seeds: int = 3,
              device: str = "cpu", force: bool = False, discovery: dict | None = QUICK_DISCOVERY,
              command: str = "lgn reproduce", full_command: str = "lgn reproduce --scale paper",
              log: Callable[[str], None] | None = print, limit: int | None = None,
              models: tuple[str, ...] | None = None, jobs: int = 1, threads: int | None = None) -> dict:
    """Run (or finish) the grid into ``out`` and write ``results.json`` and ``RESULTS.md``; returns the results.

    ``discovery`` is the planted-symmetry setting (None: skip it); ``models`` a subset
    of :data:`MODELS` (default: the recipe's). ``limit`` stops after training that many
    runs: the results are then partial (``complete`` false), their tables mark the
    runs not yet run with the time each is projected to need, and the planted-symmetry
    comparison waits for the complete grid. ``jobs`` runs train at once, each in a process of
    ``threads`` CPU threads (:func:`lgn.reproduce.runner.run_all`).
    """
    from lgn.device import resolve_device
    from lgn.reproduce.planted import run_discovery
    from lgn.reproduce.report import write_figures, write_markdown
    from lgn.reproduce.results import (abstract_claims, cell_tables, claim, collapses, dependence, distances,
                                      code_sizes, fixed_models, remaining, run_measures, targets, time_budget)
    from lgn.reproduce.runner import run_all

    started = datetime.now().astimezone().isoformat(timespec="seconds")
    start = time.perf_counter()
    resolve_device(device)  # refuse a missing CUDA before any work
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    specs = build_grid(plans, recipe, seeds, models)
    check_grid(out, _grid_description(specs, recipe, seeds, discovery), force)
    if log:
        log(f"lgn reproduce: {len(specs)} runs ({recipe.name} recipe) into {out}/runs")
    records, reused = run_all(specs, out / "runs", device=device, force=force, log=log, limit=limit,
                              jobs=jobs, threads=threads)
    complete = len(records) == len(specs)
    if not complete and log:
        log(f"stopped with {len(records)} of {len(specs)} runs finished; run the same command again to continue")
    if discovery is not None and complete and log:
        log(f"planted-symmetry comparison: {len(discovery['datasets'])} datasets × {len(discovery['seeds'])} seeds")
    planted = run_discovery(out, discovery, log) if discovery is not None and complete else None
    if log:
        log("distances between the learned groups, with their permutation tests ...")
    fixed = fixed_models(records, out / "runs")
    dist = distances(records, out / "runs", tuple(m for m in LGN_MODELS if m not in fixed))
    commit, dirty = _git()
    done = {r["name"] for r in records}
    missing = [s for s in specs if s.name not in done]
    results = {
        "command": command,
        "full_command": full_command,
        "complete": complete,
        "machine": machine_info(device, jobs, threads),
        "started": started,
        "wall_seconds": None,
        "reused_runs": sum(reused),
        "reused_wall_seconds": sum(r["wall_seconds"] for r, again in zip(records, reused) if again),
        "git_commit": commit,
        "git_dirty": dirty,
        "recipe": recipe.to_dict(),
        "seeds": seeds,
        "runs": [{k: v for k, v in r.items() if k != "settings"} for r in records],
        "cells": [list(c) for c in dict.fromkeys(s.cell for s in specs)],
        "tables": cell_tables(records),
        "remaining": remaining(missing, records, _epochs_done(missing, out / "runs")),
        "targets": None,
        "collapses": collapses(records, out / "runs"),
        "distances": dist,
        "dependence": dependence(dist),
        "fixed": fixed,
        "measures": run_measures(records, out / "runs", log),
        "code_sizes": code_sizes(records, out / "runs"),
        "discovery": planted,
        "time_budget": time_budget(records, plans, seeds),
    }
    results["claim"] = claim(dist, results["dependence"])
    results["targets"] = targets(results["tables"])
    results["claims"] = abstract_claims(results, records, out / "runs")
    if log:
        log("figures ...")
    results["figures"] = write_figures(out, records, dist, results["collapses"])
    results["wall_seconds"] = time.perf_counter() - start
    from lgn.files import write_json

    write_json(results, out / RESULTS_JSON)
    write_markdown(results, out / RESULTS_MD)
    if log:
        log(f"wrote {out / RESULTS_MD} and {out / RESULTS_JSON} in {results['wall_seconds'] / 60:.1f} min"
            + ("" if complete else " (partial: the runs not yet run are marked)"))
    return results


def _epochs_done(specs: list[RunSpec], runs_dir: Path) -> dict[str, int]:
    """Run name → epochs in its ``metrics.jsonl``, for the unfinished runs that have trained some."""
    from lgn.runs import read_metrics

    counts = {s.name: len(read_metrics(runs_dir / s.name, skip_damaged=True)) for s in specs}
    return {name: n for name, n in counts.items() if n}
