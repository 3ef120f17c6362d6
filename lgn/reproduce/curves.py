"""Sample-efficiency curves: test accuracy against the number of training images, every model, over seeds.

:func:`curves` trains, for each classification dataset, training size, model and seed,
one ordinary ``train()`` run into ``OUT/runs/<dataset>-classify-<model>-s<seed>-n<size>/``
(:mod:`~lgn.reproduce.runner`: finished runs are read back, a partial one resumed), and
writes ``OUT/curves.json``, ``OUT/CURVES.md`` and the figure ``OUT/curves.png``.

Every run takes the same number of optimisation steps, whatever its training size:
``epochs = ⌈steps / ⌈n / batch⌉⌉``. With the default 256 steps at batch 128 that is
the quick recipe's 8 epochs at 4,000 images and 128 epochs at 250, so a small set is
not under-trained merely for having fewer batches per epoch. The rest is the paper's
recipe (the learning rate halved at 1/2, 3/4 and 7/8 of the epochs). Runs are ordered
seed by seed, so a stopped invocation leaves whole curves of the first seeds.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from lgn.reproduce.grid import LGN_MODELS, MODELS, PAPER, DataPlan, RunSpec

__all__ = ["CurveSettings", "CURVES", "curve_epochs", "build_curves", "curves", "curve_table", "curve_verdicts",
           "write_curves", "CURVES_JSON", "CURVES_MD", "CURVES_FIGURE"]

CURVES_JSON = "curves.json"
CURVES_MD = "CURVES.md"
CURVES_FIGURE = "curves.png"
BASELINES = ("unconstrained", "cnn")  # what every LGN model is compared with, where the grid has them


@dataclass(frozen=True)
class CurveSettings:
    """What the curves train: sizes, seeds, the step budget of every run, the test images, the models."""

    sizes: tuple[int, ...] = (250, 500, 1000, 2000, 4000)
    seeds: int = 3
    steps: int = 256                 # optimisation steps of every run (8 epochs × 32 batches of 4,000 images)
    test_subset: int = 1000          # the first N test images (all of mnist5k's; Fashion-MNIST's first 1,000)
    models: tuple[str, ...] = field(default_factory=PAPER.grid_models)
    model: dict = field(default_factory=dict)   # model settings shared by every run (tests: a tiny net)
    train: dict = field(default_factory=dict)   # train settings shared by every run

    def __post_init__(self) -> None:
        if not self.sizes or any(not isinstance(n, int) or n < 1 for n in self.sizes):
            raise ValueError(f"training sizes must be positive integers, got {self.sizes}")
        if self.seeds < 1:
            raise ValueError(f"--seeds must be at least 1, got {self.seeds}")
        if self.steps < 1:
            raise ValueError(f"--steps must be at least 1, got {self.steps}")
        unknown = [m for m in self.models if m not in MODELS]
        if unknown:
            raise ValueError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")

    @property
    def batch_size(self) -> int:
        return int(self.train.get("batch_size", 128))

    def to_dict(self) -> dict:
        return {"sizes": list(self.sizes), "seeds": self.seeds, "steps": self.steps, "test_subset": self.test_subset,
                "models": list(self.models), "model": dict(self.model), "train": dict(self.train),
                "batch_size": self.batch_size}


CURVES = CurveSettings()


def curve_epochs(n: int, steps: int, batch_size: int = 128) -> int:
    """Epochs that give at least ``steps`` optimisation steps on ``n`` images at ``batch_size``."""
    return math.ceil(steps / math.ceil(n / batch_size))


def build_curves(plans: list[DataPlan], settings: CurveSettings = CURVES) -> list[RunSpec]:
    """Every run: per seed, per classification dataset, per size (at most the dataset's), per model."""
    specs = []
    for seed in range(settings.seeds):
        for plan in plans:
            if "classify" not in plan.tasks:
                continue
            for n in settings.sizes:
                if n > plan.n_train:
                    raise ValueError(f"training size {n} exceeds {plan.dataset}'s {plan.n_train:,} training images")
                n_test = min(settings.test_subset, plan.n_test)
                data = {**plan.data, "train_subset": n}
                if n_test < plan.n_test:
                    data["test_subset"] = n_test
                for model in settings.models:
                    run = {"model": {**settings.model, **MODELS[model], "task": "classify"},
                           "train": {**settings.train, "epochs": curve_epochs(n, settings.steps, settings.batch_size),
                                     "seed": seed},
                           "data": data}
                    specs.append(RunSpec(plan.dataset, "classify", model, seed, run, n, n_test, tag=f"n{n}"))
    return specs


def curve_table(records: list[dict], specs: list[RunSpec]) -> list[dict]:
    """Per dataset, size and model: accuracy over the finished seeds, parameter counts, epochs, seeds missing."""
    from lgn.reproduce.results import stats

    rows = []
    for key in dict.fromkeys((s.dataset, s.n_train, s.model) for s in specs):
        dataset, n, model = key
        done = [r for r in records if (r["dataset"], r["n_train"], r["model"]) == key]
        want = [s for s in specs if (s.dataset, s.n_train, s.model) == key]
        rows.append({"dataset": dataset, "n_train": n, "model": model,
                     "accuracy": stats([r["metric"] for r in done]),
                     "params": done[0]["params"] if done else None,
                     "params_export": done[0]["params_export"] if done else None,
                     "epochs": want[0].settings["train"]["epochs"],
                     "seeds_done": sorted(r["seed"] for r in done),
                     "seeds_missing": sorted({s.seed for s in want} - {r["seed"] for r in done}),
                     "train_seconds": float(np.mean([r["train_seconds"] for r in done])) if done else None})
    return rows


def curve_verdicts(table: list[dict]) -> list[dict]:
    """Each LGN model against each baseline, per dataset and size: win, tie or lose with the seed spread."""
    from lgn.reproduce.results import MATCH_TOLERANCE, compare

    index = {(r["dataset"], r["n_train"], r["model"]): r for r in table}
    out = []
    for (dataset, n, model), row in index.items():
        if model not in LGN_MODELS or not row["accuracy"]["n"]:
            continue
        for base in BASELINES:
            other = index.get((dataset, n, base))
            if other is None or not other["accuracy"]["n"]:
                continue
            outcome, diff, margin = compare(row["accuracy"], other["accuracy"], MATCH_TOLERANCE)
            out.append({"dataset": dataset, "n_train": n, "model": model, "baseline": base, "outcome": outcome,
                        "difference": diff, "margin": margin, "seeds": [row["accuracy"]["n"], other["accuracy"]["n"]]})
    return out


def _figure(table: list[dict], path: Path) -> Path:
    from lgn.analysis.figures import new_figure

    datasets = list(dict.fromkeys(r["dataset"] for r in table))
    fig = new_figure((5.0 * len(datasets), 4.0))
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    models = list(dict.fromkeys(r["model"] for r in table))
    for ax, dataset in zip(axes, datasets):
        for i, model in enumerate(models):
            rows = [r for r in table if (r["dataset"], r["model"]) == (dataset, model) and r["accuracy"]["n"]]
            if not rows:
                continue
            dodge = 1.04 ** (i - (len(models) - 1) / 2)  # side by side at each size, so error bars don't hide
            x = [r["n_train"] * dodge for r in rows]
            y = [r["accuracy"]["mean"] for r in rows]
            err = [r["accuracy"]["std"] or 0.0 for r in rows]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=model,
                        color=f"C{i % 10}")  # a model keeps its colour in every panel
        ax.set_xscale("log")
        sizes = sorted({r["n_train"] for r in table if r["dataset"] == dataset})
        ax.set_xticks(sizes, [f"{n:,}" for n in sizes])  # the sizes trained, not powers of the log's base
        ax.minorticks_off()
        ax.set_xlabel("training images")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{dataset}: mean ± std over seeds", fontsize=9)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def _pm(s: dict) -> str:
    from lgn.reproduce.results import fmt_pm

    return fmt_pm(s) if s["n"] else "–"


def _summary_sentences(verdicts: list[dict]) -> list[str]:
    """One sentence per dataset, LGN model and baseline: at which sizes it wins, ties and loses."""
    lines = []
    for key in dict.fromkeys((v["dataset"], v["model"], v["baseline"]) for v in verdicts):
        sel = [v for v in verdicts if (v["dataset"], v["model"], v["baseline"]) == key]
        parts = []
        for outcome, word in (("win", "wins"), ("tie", "ties"), ("lose", "loses")):
            at = [f"{v['n_train']:,} ({v['difference']:+.4f} ± {v['margin']:.4f})" for v in sel
                  if v["outcome"] == outcome]
            if at:
                parts.append(f"{word} at " + ", ".join(at))
        lines.append(f"- {key[0]}: {key[1]} against {key[2]} " + "; ".join(parts) + ".")
    return lines


def _markdown(result: dict, path: Path) -> Path:
    """Write ``CURVES.md`` from the ``curves.json`` dict (the template ``templates/curves.md.j2``)."""
    from lgn.reproduce.report import render

    s = result["settings"]
    table = result["table"]
    models = list(dict.fromkeys(r["model"] for r in table))
    datasets = []
    for dataset in dict.fromkeys(r["dataset"] for r in table):
        rows = []
        for n in dict.fromkeys(r["n_train"] for r in table if r["dataset"] == dataset):
            cells = []
            for m in models:
                row = next(r for r in table if (r["dataset"], r["n_train"], r["model"]) == (dataset, n, m))
                cell = _pm(row["accuracy"])
                if row["seeds_missing"]:
                    cell += f"; not yet run: seed(s) {', '.join(map(str, row['seeds_missing']))}"
                cells.append(cell)
            epochs = next(r["epochs"] for r in table if (r["dataset"], r["n_train"]) == (dataset, n))
            rows.append([f"{n:,}", str(epochs)] + cells)
        datasets.append({"name": dataset, "rows": rows})
    params = []
    for m in models:
        row = next((r for r in table if r["model"] == m and r["params"] is not None), None)
        params.append([m, f"{row['params']:,}", f"{row['params_export']:,}"] if row else [m, "–", "–"])
    path.write_text(render("curves.md.j2", r=result, s=s, models=models, datasets=datasets, params=params,
                           figure=CURVES_FIGURE, verdicts=_summary_sentences(result["verdicts"]),
                           missing=sum(len(r["seeds_missing"]) for r in table),
                           epochs=[f"{n:,} → {curve_epochs(n, s['steps'], s['batch_size'])}" for n in s["sizes"]]))
    return path


def curves(out: str | os.PathLike, *, plans: list[DataPlan], settings: CurveSettings = CURVES, device: str = "cpu",
           force: bool = False, command: str = "lgn curves", log: Callable[[str], None] | None = print,
           limit: int | None = None, jobs: int = 1, threads: int | None = None) -> dict:
    """Train (or finish) the curves into ``out``; write ``curves.json``, ``CURVES.md`` and ``curves.png``.

    ``limit`` trains at most that many runs in this call; the outputs are then partial
    (``complete`` false) and mark the seeds not yet run. ``jobs`` runs train at once, each in a
    process of ``threads`` CPU threads (:func:`lgn.reproduce.runner.run_all`).
    """
    from lgn.device import resolve_device
    from lgn.reproduce import _git, check_grid, machine_info
    from lgn.reproduce.runner import run_all

    start = time.perf_counter()
    resolve_device(device)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    specs = build_curves(plans, settings)
    check_grid(out, {"curves": settings.to_dict(), "runs": {s.name: s.settings for s in specs}}, force)
    if log:
        log(f"lgn curves: {len(specs)} runs into {out}/runs")
    records, reused = run_all(specs, out / "runs", device=device, force=force, log=log, limit=limit,
                              analyse=False, jobs=jobs, threads=threads)
    complete = len(records) == len(specs)
    table = curve_table(records, specs)
    commit, dirty = _git()
    seconds = [r["wall_seconds"] for r in records]
    result = {"command": command, "complete": complete, "machine": machine_info(device, jobs, threads),
              "git_commit": commit, "git_dirty": dirty, "settings": settings.to_dict(), "reused_runs": sum(reused),
              "runs": [{k: v for k, v in r.items() if k != "settings"} for r in records], "table": table,
              "verdicts": curve_verdicts(table),
              "seconds_per_missing_run": float(np.mean(seconds)) if seconds and not complete else None}
    return write_curves(result, out, start, _markdown, log, len(specs))


def write_curves(result: dict, out: Path, start: float, markdown: Callable[[dict, Path], Path],
                 log: Callable[[str], None] | None, n_runs: int) -> dict:
    """Write ``result`` into ``out``: ``curves.png`` from its table, ``curves.json`` with the wall time since
    ``start``, then ``CURVES.md`` by ``markdown``; ``n_runs`` is how many runs the grid has. Returns ``result``."""
    from lgn.files import write_json

    _figure(result["table"], out / CURVES_FIGURE)
    result["wall_seconds"] = time.perf_counter() - start
    write_json(result, out / CURVES_JSON)
    markdown(result, out / CURVES_MD)
    if log:
        log(f"wrote {out / CURVES_MD}, {out / CURVES_JSON} and {out / CURVES_FIGURE}"
            + ("" if result["complete"] else f" (partial: {len(result['runs'])} of {n_runs} runs)"))
    return result
