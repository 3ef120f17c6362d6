"""The numbers of ``results.json`` computed from the run records: tables, targets, distances, the claim, budgets.

Everything here is a function of the records (``reproduce.json`` of every run) and of
the runs' ``groups.npz``; nothing trains.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from pathlib import Path

import numpy as np

from lgn.reproduce.grid import LGN_MODELS, MODELS, PAPER, PATCH_SIZE, DataPlan, Recipe, RunSpec, build_grid

__all__ = ["stats", "compare", "cell_tables", "targets", "collapses", "distances", "claim", "dependence", "time_budget",
           "remaining", "fmt_hours", "fmt_num", "MNIST_TARGET", "MATCH_TOLERANCE", "COLLAPSE", "PIXELS"]

MNIST_TARGET = 0.97     # LGN test accuracy on mnist5k
MATCH_TOLERANCE = 0.005  # test accuracies this close count as a match (Fashion-MNIST target)
# a final test score this far below the run's best epoch is reported as a collapse in training
COLLAPSE = {"test_acc": 0.01, "test_psnr": 0.5}
# values per image (channels × pixels): scales a measured cost to an unmeasured dataset
PIXELS = {"mnist5k": 784, "mnist": 784, "fashion-mnist": 784, "cifar10": 3 * 32 * 32, "patches": PATCH_SIZE ** 2}


def stats(values) -> dict:
    """``{mean, std, n, values}``; std is the sample standard deviation (n − 1), None for one value."""
    v = [float(x) for x in values]
    return {"mean": float(np.mean(v)) if v else None,
            "std": float(np.std(v, ddof=1)) if len(v) > 1 else None, "n": len(v), "values": v}


def compare(a: dict, b: dict, tolerance: float) -> tuple[str, float, float]:
    """'win', 'tie' or 'lose' of :func:`stats` ``a`` against ``b``, the difference of means and the margin.

    The margin is the seed spread of the difference, √(s_a² + s_b²) (a single seed adds 0),
    but at least ``tolerance``: ``a`` wins when its mean is above ``b``'s by more than the
    margin, loses when below by more, and ties otherwise.
    """
    diff = a["mean"] - b["mean"]
    margin = max(math.sqrt((a["std"] or 0.0) ** 2 + (b["std"] or 0.0) ** 2), tolerance)
    return ("win" if diff > margin else "lose" if diff < -margin else "tie"), diff, margin


def _cells(records: list[dict]) -> list[tuple[str, str]]:
    """The (dataset, task) pairs of ``records`` in the order they first appear."""
    return list(dict.fromkeys((r["dataset"], r["task"]) for r in records))


def cell_tables(records: list[dict]) -> list[dict]:
    """Per dataset and task, per model: the metric over seeds, parameter counts, mean training seconds."""
    tables = []
    for dataset, task in _cells(records):
        rows = []
        for model in MODELS:
            sel = [r for r in records if (r["dataset"], r["task"], r["model"]) == (dataset, task, model)]
            if not sel:
                continue
            rows.append({"model": model, "metric": stats([r["metric"] for r in sel]),
                         "seeds": [r["seed"] for r in sel], "params": sel[0]["params"],
                         "params_export": sel[0]["params_export"],
                         "train_seconds": float(np.mean([r["train_seconds"] for r in sel])),
                         "epochs": sel[0]["epochs"], "n_train": sel[0]["n_train"]})
        tables.append({"dataset": dataset, "task": task, "metric_name": "test_acc" if task == "classify"
                       else "test_psnr", "models": rows})
    return tables


def _row(tables: list[dict], dataset: str, task: str, model: str) -> dict | None:
    for t in tables:
        if (t["dataset"], t["task"]) == (dataset, task):
            return next((r for r in t["models"] if r["model"] == model), None)
    return None


def fmt_pm(s: dict, digits: int = 4) -> str:
    """``mean ± std (n=N)`` of a :func:`stats` summary (no ± for one value)."""
    return f"{s['mean']:.{digits}f}" + (f" ± {s['std']:.{digits}f}" if s["std"] is not None else "") + \
        f" (n={s['n']})"


def fmt_threads(machine: dict) -> str:
    """``2 threads``, or ``1 thread per run, 2 runs at once`` under ``--jobs``, from :func:`machine_info`'s dict."""
    jobs, n = machine.get("jobs", 1), machine["torch_threads"]
    return _threads(n) + (f" per run, {jobs} runs at once" if jobs > 1 else "")


def _threads(n: int) -> str:
    return f"{n} thread{'s' if n != 1 else ''}"


def fmt_trained_on(runs: list[dict]) -> str:
    """``Intel(R) Xeon(R) Processor, 2 threads: 14 runs; AMD EPYC 7B13, 1 thread: 2 runs``: where the runs' times
    come from (a grid trained in pieces may span machines, and so may a run: ``Xeon, 2 threads (epochs 1–67), then
    EPYC, 2 threads (68–100): 1 run``)."""
    counts = Counter(_machines(x) for x in runs)
    return "; ".join(f"{machines}: {n} run{'s' if n != 1 else ''}" for machines, n in counts.items()) or "no runs yet"


def _machines(run: dict) -> str:
    def machine(x: dict) -> str:
        threads = x.get("threads")
        return (x.get("cpu") or "CPU not recorded") + ("" if threads is None else f", {_threads(threads)}")

    parts = run.get("trained_on") or []
    if len(parts) > 1:
        return ", then ".join(f"{machine(p)} ({'epochs ' if i == 0 else ''}{p['epochs'][0]}–{p['epochs'][1]})"
                              for i, p in enumerate(parts))
    # else the one machine that trained every epoch, or the record's own: the machine that finished the run
    return machine(parts[0] if parts and parts[0]["cpu"] is not None else run)


def targets(tables: list[dict]) -> list[dict]:
    """The issue's two targets, each with its measured numbers and PASS or MISS (or N/A when not run)."""
    out = []
    mnist = next((d for d in ("mnist5k", "mnist") if _row(tables, d, "classify", "lgn-free")), None)
    if mnist is None:
        out.append({"target": f"mnist5k: LGN test accuracy ≥ {MNIST_TARGET}", "verdict": "N/A",
                    "measured": "not in this grid"})
    else:
        s = _row(tables, mnist, "classify", "lgn-free")["metric"]
        ok = s["mean"] >= MNIST_TARGET
        out.append({"target": f"{mnist}: LGN (lgn-free) test accuracy ≥ {MNIST_TARGET}",
                    "verdict": "PASS" if ok else "MISS",
                    "measured": f"mean {fmt_pm(s)}, lowest seed {min(s['values']):.4f}"})
    free = _row(tables, "fashion-mnist", "classify", "lgn-free")
    base = _row(tables, "fashion-mnist", "classify", "unconstrained")
    text = ("Fashion-MNIST: LGN (lgn-free) beats the unconstrained baseline of equal filter count in test accuracy, "
            f"or matches it (within {MATCH_TOLERANCE}) with fewer trainable parameters")
    if free is None or base is None:
        out.append({"target": text, "verdict": "N/A", "measured": "not in this grid"})
    else:
        diff = free["metric"]["mean"] - base["metric"]["mean"]
        beats = diff > 0
        matches = abs(diff) <= MATCH_TOLERANCE and free["params"] < base["params"]
        how = "beats it" if beats else "matches it with fewer parameters" if matches else \
            ("matches it but with more parameters" if abs(diff) <= MATCH_TOLERANCE else "falls short")
        out.append({"target": text, "verdict": "PASS" if beats or matches else "MISS",
                    "measured": f"lgn-free {fmt_pm(free['metric'])}, {free['params']:,} params vs unconstrained "
                                f"{fmt_pm(base['metric'])}, {base['params']:,} params: difference {diff:+.4f}, "
                                f"LGN {how}"})
    return out


def collapses(records: list[dict], runs_dir: Path) -> list[dict]:
    """The finished runs whose final test score is below their best epoch's by more than :data:`COLLAPSE`.

    The tables report the final epoch, as the paper does (no choice made on the test
    set); this says which of those numbers carry a collapse in training (a loss spike
    the run did not recover from) rather than what the model can reach. Each entry
    names the run, its final and best scores, the best epoch and the drop, most first.
    """
    from lgn.runs import read_metrics

    out = []
    for r in records:
        limit = COLLAPSE.get(r["metric_name"])
        if limit is None:
            continue
        history = [(m["epoch"], m[r["metric_name"]]) for m in read_metrics(runs_dir / r["run_dir"], skip_damaged=True)
                   if m.get(r["metric_name"]) is not None]
        if not history:
            continue
        epoch, best = max(history, key=lambda x: x[1])
        if best - r["metric"] > limit:
            out.append({"name": r["name"], "dataset": r["dataset"], "task": r["task"], "model": r["model"],
                        "seed": r["seed"], "metric_name": r["metric_name"], "final": r["metric"], "best": best,
                        "best_epoch": epoch, "epochs": r["epochs"], "drop": best - r["metric"], "limit": limit})
    return sorted(out, key=lambda x: (x["metric_name"], -x["drop"]))


def _groups_path(runs_dir: Path, record: dict) -> Path:
    return runs_dir / record["run_dir"] / record["analysis"]["groups"]


def distances(records: list[dict], runs_dir: Path, models: tuple[str, ...] = LGN_MODELS) -> dict:
    """Per LGN model: the distance between every two runs and, per pair of cells, its mean ± std over seed pairs.

    Only runs of different seeds are compared, within a cell (the seed-to-seed noise
    floor) and between cells alike: runs of one seed start from the same generators
    in every cell, which would pull distances between cells below the floor. With a
    single seed, cells are compared seed to seed instead (``pairing``: 'same seed').
    """
    from lgn.analysis.distance import distance_matrix, run_features
    from lgn.analysis.summary import load_groups

    out = {}
    for model in models:
        sel = [r for r in records if r["model"] == model and r.get("analysis")]
        if len(sel) < 2:
            continue
        features = []
        for r in sel:
            g = load_groups(_groups_path(runs_dir, r))
            features.append(run_features(g.A, g.kernel_size))
        d = distance_matrix(features)
        cells = _cells(sel)
        index = {c: [i for i, r in enumerate(sel) if (r["dataset"], r["task"]) == c] for c in cells}
        n = len(cells)
        mean = [[None] * n for _ in range(n)]
        std = [[None] * n for _ in range(n)]
        pairs = [[0] * n for _ in range(n)]
        seeds = [r["seed"] for r in sel]
        pairing = "different seeds" if len(set(seeds)) > 1 else "same seed"
        for a, b in itertools.product(range(n), repeat=2):
            ia, ib = index[cells[a]], index[cells[b]]
            values = ([d[i, j] for i, j in itertools.combinations(ia, 2)] if a == b
                      else [d[i, j] for i in ia for j in ib if (seeds[i] != seeds[j]) == (pairing != "same seed")])
            s = stats(values)
            mean[a][b], std[a][b], pairs[a][b] = s["mean"], s["std"], s["n"]
        out[model] = {"cells": [f"{ds} {task}" for ds, task in cells], "cell_keys": [list(c) for c in cells],
                      "mean": mean, "std": std, "n_pairs": pairs, "pairing": pairing,
                      "runs": [r["name"] for r in sel], "run_keys": [[r["dataset"], r["task"], r["seed"]] for r in sel],
                      "run_matrix": d.tolist()}
    return out


SIGNIFICANCE = 0.05  # the level of the dependence tests' verdicts


def _one_dependence(m: dict, factor: str) -> dict:
    """The permutation test of ``factor`` ('data' or 'task') on one model's run distances."""
    from lgn.analysis.distance import dependence_test

    keys = m["run_keys"]
    label_at, stratum_at = (0, 1) if factor == "data" else (1, 0)
    levels: dict = {}
    for k in keys:
        levels.setdefault(k[stratum_at], set()).add(k[label_at])
    keep = [i for i, k in enumerate(keys) if len(levels[k[stratum_at]]) > 1]  # strata with two labels at least
    held = "task" if factor == "data" else "dataset"
    if not keep:
        return {"factor": factor, "p": None, "verdict": f"{factor} dependence cannot be tested: no {held} has runs "
                                                        f"of two {'datasets' if factor == 'data' else 'tasks'}"}
    d = np.asarray(m["run_matrix"])[np.ix_(keep, keep)]
    sub = [keys[i] for i in keep]
    result = dependence_test(d, [k[label_at] for k in sub], [k[stratum_at] for k in sub], [k[2] for k in sub])
    result["factor"] = factor
    other = "data" if factor == "data" else "tasks"
    if result["p"] is None:
        result["verdict"] = f"{factor} dependence cannot be tested: {result['reason']}"
        return result
    significant = result["p"] < SIGNIFICANCE
    result["significant"] = significant
    result["verdict"] = (
        f"{factor} dependence: runs on different {other} (same {held}, different seeds) are {result['between']:.3f} "
        f"apart against a seed-to-seed floor of {result['floor']:.3f} (same {held} and "
        f"{'data' if factor == 'data' else 'task'}), a gap of {result['gap']:+.3f}; permutation test p = "
        f"{result['p']:.3g} ({'all' if result['exact'] else 'random'} {result['arrangements']:,} arrangements of the "
        f"{'dataset' if factor == 'data' else 'task'} labels within each {held}; the smallest p this design allows "
        f"is {result['min_p']:.3g}): " + ("significant" if significant else "not significant") + f" at "
        f"{SIGNIFICANCE}.")
    return result


def dependence(dist: dict) -> dict:
    """Per LGN model: is there data dependence, and task dependence, beyond the seed-to-seed floor?

    Each is a permutation test (:func:`lgn.analysis.distance.dependence_test`) on the
    run distances: data dependence compares runs of one task on different datasets with
    runs of one task and dataset (the floor), the dataset labels permuted within each
    task; task dependence the same with the roles swapped, over the datasets used for
    both tasks. Only runs of different seeds are compared.
    """
    out = {}
    for model, m in dist.items():
        if "run_keys" not in m:
            continue
        data, task = _one_dependence(m, "data"), _one_dependence(m, "task")
        out[model] = {"data": data, "task": task, "verdict": f"{model}: {data['verdict']} {task['verdict']}"}
    return out


def _pairs_stats(pairs: list[dict]) -> dict:
    s = stats([p["mean"] for p in pairs])
    return {"mean": s["mean"], "std": s["std"], "n": s["n"], "pairs": pairs}


def claim(dist: dict) -> dict:
    """Per LGN model: are same-task-different-data distances smaller than same-data-different-task ones?

    Compared over the datasets that have both tasks (patches have reconstruction only,
    so their pairs are listed but not counted). ``head_to_head`` compares, for each
    dataset d, each task t and each other dataset d', d((d,t),(d',t)) with
    d((d,classify),(d,reconstruct)); distances within :data:`~lgn.analysis.distance.RESOLUTION` tie.
    """
    from lgn.analysis.distance import RESOLUTION

    out = {}
    for model, m in dist.items():
        keys = [tuple(k) for k in m["cell_keys"]]
        pos = {k: i for i, k in enumerate(keys)}
        both = [ds for ds in dict.fromkeys(k[0] for k in keys)
                if (ds, "classify") in pos and (ds, "reconstruct") in pos]

        def pair(a, b):
            i, j = pos[a], pos[b]
            return {"a": f"{a[0]} {a[1]}", "b": f"{b[0]} {b[1]}", "mean": m["mean"][i][j], "std": m["std"][i][j],
                    "n": m["n_pairs"][i][j]}

        same_task = [pair(a, b) for a, b in itertools.combinations(keys, 2)
                     if a[1] == b[1] and a[0] != b[0] and a[0] in both and b[0] in both]
        same_task_all = [pair(a, b) for a, b in itertools.combinations(keys, 2) if a[1] == b[1] and a[0] != b[0]]
        same_data = [pair((ds, "classify"), (ds, "reconstruct")) for ds in both]
        within = [pair(k, k) for k in keys if m["n_pairs"][pos[k]][pos[k]] > 0]
        comparisons = []
        for ds in both:
            across_tasks = m["mean"][pos[(ds, "classify")]][pos[(ds, "reconstruct")]]
            for task in ("classify", "reconstruct"):
                for other in both:
                    if other != ds:
                        across_data = m["mean"][pos[(ds, task)]][pos[(other, task)]]
                        comparisons.append({"cell": f"{ds} {task}", "other_data": f"{other} {task}",
                                            "other_task": f"{ds} {'reconstruct' if task == 'classify' else 'classify'}",
                                            "same_task_distance": across_data, "same_data_distance": across_tasks,
                                            "favours_claim": across_data < across_tasks - RESOLUTION,
                                            "tie": abs(across_data - across_tasks) <= RESOLUTION})
        entry = {"same_task_different_data": _pairs_stats(same_task),
                 "same_task_different_data_all": _pairs_stats(same_task_all),
                 "same_data_different_task": _pairs_stats(same_data),
                 "noise_floor": _pairs_stats(within),
                 "head_to_head": {"favouring": sum(c["favours_claim"] for c in comparisons),
                                  "ties": sum(c["tie"] for c in comparisons),  # equal distances favour neither side
                                  "total": len(comparisons), "comparisons": comparisons}}
        if not same_task or not same_data:
            entry["holds"] = None
            entry["verdict"] = (f"{model}: cannot be checked: it needs two datasets that are each used for both "
                                f"tasks (have: {', '.join(both) or 'none'})")
        else:
            st, sd, nf = entry["same_task_different_data"], entry["same_data_different_task"], entry["noise_floor"]
            h2h = entry["head_to_head"]
            gap, noise = sd["mean"] - st["mean"], nf["mean"] if nf["n"] else 0.0
            # decided only when every head-to-head comparison agrees and the gap clears the seed-to-seed noise
            if h2h["favouring"] == h2h["total"] and gap > noise + RESOLUTION:
                entry["holds"], outcome = True, "borne out by these runs"
            elif h2h["favouring"] == 0 and h2h["ties"] == 0 and -gap > noise + RESOLUTION:
                entry["holds"], outcome = False, "contradicted by these runs"
            else:
                entry["holds"], outcome = None, ("not resolved by these runs: the comparisons disagree or the gap "
                                                 "is within the seed-to-seed noise")
            floor = f"{nf['mean']:.3f}" + (f" ± {nf['std']:.3f}" if nf["std"] is not None else "") \
                if nf["n"] else "not measured (one seed per cell)"
            entry["verdict"] = (
                f"{model}: same-task-different-data distance {st['mean']:.3f}"
                + (f" ± {st['std']:.3f}" if st["std"] is not None else "") + f" ({st['n']} cell pairs) against "
                f"same-data-different-task distance {sd['mean']:.3f}"
                + (f" ± {sd['std']:.3f}" if sd["std"] is not None else "")
                + f" ({sd['n']} cell pairs), a gap of {gap:+.3f}; {h2h['favouring']} of {h2h['total']} "
                f"head-to-head comparisons favour the claim" + (f" ({h2h['ties']} ties)" if h2h["ties"] else "")
                + f"; seed-to-seed noise floor {floor}. "
                f"The claim is {outcome}.")
        out[model] = entry
    return out


def _rates(records: list[dict]) -> dict:
    """(dataset, task, model) → (train seconds per example-epoch, eval seconds per test-example-epoch)."""
    groups: dict = {}
    for r in records:
        groups.setdefault((r["dataset"], r["task"], r["model"]), []).append(r)
    return {k: (float(np.mean([r["train_seconds"] / (r["epochs"] * r["n_train"]) for r in v])),
                float(np.mean([r["eval_seconds"] / (r["epochs"] * r["n_test"]) for r in v])))
            for k, v in groups.items()}


def _rate(rates: dict, dataset: str, task: str, model: str) -> tuple[tuple[float, float] | None, str]:
    """Seconds per training and per test example-epoch of (dataset, task, model), and where they come from.

    Measured when that triple ran; else extrapolated by values per image from the same
    task and model on another dataset; else borrowed from another model (of the same task
    and dataset first). (None, 'no run measured yet') when nothing has run.
    """
    if (dataset, task, model) in rates:
        return rates[(dataset, task, model)], "measured"

    def scaled(ref, rate):
        scale = PIXELS.get(dataset, PIXELS.get(ref, 1)) / PIXELS.get(ref, 1)
        return (rate[0] * scale, rate[1] * scale), scale

    refs = [(k, v) for k, v in rates.items() if k[1:] == (task, model) and k[0] in PIXELS]
    if refs:
        (ref, _, _), rate = refs[0]
        rate, scale = scaled(ref, rate)
        return rate, f"extrapolated from {ref} by values per image (×{scale:.2f})"
    # another model of this task (this dataset first), then of the other task
    refs = sorted(((k, v) for k, v in rates.items()), key=lambda kv: (kv[0][1] != task, kv[0][0] != dataset))
    if refs:
        (ref, ref_task, other), rate = refs[0]
        rate, scale = scaled(ref, rate)
        return rate, (f"borrowed from {other} {ref_task} on {ref}"
                      + (f" (×{scale:.2f} values per image)" if ref != dataset else ""))
    return None, "no run measured yet"


def time_budget(records: list[dict], plans: list[DataPlan], seeds: int, recipe: Recipe = PAPER) -> dict:
    """The estimated cost of the paper-scale grid from the measured per-example epoch times of ``records``.

    A (dataset, task, model) that was not measured (CIFAR-10 when no folder was
    given) is extrapolated from a measured dataset of the same task and model by
    values per image, and marked so. CIFAR-10 is always estimated, as an extra if
    it is not in the grid.
    """
    rates = _rates(records)
    if not rates:
        return {"rows": [], "total_hours": None}
    in_grid = {p.dataset for p in plans}
    plans = list(plans)
    if "cifar10" not in in_grid:
        plans.append(DataPlan("cifar10", {"name": "cifar10"}, ("classify", "reconstruct"), 50000, 10000))
    rows = []
    for (dataset, task, model), specs in _group(build_grid(plans, recipe, seeds)).items():
        spec = specs[0]
        epochs = spec.settings["train"]["epochs"]
        rate, how = _rate({k: v for k, v in rates.items() if k[2] == model}, dataset, task, model)
        if rate is None:
            continue
        seconds = (rate[0] * spec.n_train + rate[1] * spec.n_test) * epochs
        rows.append({"dataset": dataset, "task": task, "model": model, "runs": len(specs), "epochs": epochs,
                     "n_train": spec.n_train, "seconds_per_epoch": rate[0] * spec.n_train,
                     "hours": seconds * len(specs) / 3600, "how": how, "in_grid": dataset in in_grid})
    total = sum(r["hours"] for r in rows if r["in_grid"])
    extra = sum(r["hours"] for r in rows if not r["in_grid"])
    return {"recipe": recipe.to_dict(), "seeds": seeds, "rows": rows, "total_hours": total,
            "cifar10_extra_hours": extra if extra else None,
            "note": "an estimate: measured seconds per training and test example per epoch of these runs, "
                    "times the paper-scale grid's examples and epochs, on the same device; epochs get no faster or "
                    "slower with more data in this estimate"}


def remaining(missing: list[RunSpec], records: list[dict], epochs_done: dict[str, int] | None = None) -> list[dict]:
    """The runs of a grid not yet run, per (dataset, task, model): how many, which seeds, the projected time.

    The time of one run is its epochs × (training images × measured seconds per training
    image-epoch + test images × seconds per test image-epoch), the rates from the finished
    ``records`` (:func:`_rate` says how each was found); None when no run of the task has
    finished yet. ``epochs_done`` (run name → epochs) are the part-trained runs: a row says
    which seeds are how far (``part_trained``), and ``seconds_left`` counts only their
    epochs still to train.
    """
    rates = _rates(records)
    done = epochs_done or {}
    rows = []
    for (dataset, task, model), specs in _group(missing).items():
        spec = specs[0]
        epochs = spec.settings["train"]["epochs"]
        rate, how = _rate(rates, dataset, task, model)
        seconds = None if rate is None else (rate[0] * spec.n_train + rate[1] * spec.n_test) * epochs
        part = {s.seed: min(done[s.name], epochs) for s in specs if done.get(s.name)}
        rows.append({"dataset": dataset, "task": task, "model": model, "seeds": [s.seed for s in specs],
                     "epochs": epochs, "n_train": spec.n_train, "seconds_per_run": seconds,
                     "part_trained": part,  # seed → epochs trained so far
                     "seconds_left": None if seconds is None else
                     seconds * sum(1 - part.get(s.seed, 0) / epochs for s in specs),
                     "basis": how})
    return rows


def _group(specs) -> dict:
    out: dict = {}
    for s in specs:
        out.setdefault((s.dataset, s.task, s.model), []).append(s)
    return out


def fmt_hours(hours: float) -> str:
    return f"{hours * 60:.0f} min" if hours < 1 else f"{hours:.1f} h"


def fmt_num(x, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"
