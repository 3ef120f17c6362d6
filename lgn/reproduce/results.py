"""The numbers of ``results.json`` computed from the run records: tables, targets, distances, the claim, budgets.

Everything here is a function of the records (``reproduce.json`` of every run) and of
the runs' ``groups.npz``; nothing trains.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np

from lgn.reproduce.grid import LGN_MODELS, MODELS, PAPER, PATCH_SIZE, DataPlan, Recipe, RunSpec, build_grid

__all__ = ["stats", "compare", "cell_tables", "targets", "collapses", "distances", "claim", "dependence", "time_budget",
           "remaining", "run_measures", "holm", "fixed_choice", "fixed_models", "abstract_claims", "code_sizes",
           "fmt_hours", "fmt_num", "MNIST_TARGET", "MATCH_TOLERANCE", "PSNR_TOLERANCE", "COLLAPSE", "PIXELS",
           "DATA_FREE_FILE", "NAMED"]

MNIST_TARGET = 0.97     # LGN test accuracy on mnist5k
MATCH_TOLERANCE = 0.005  # test accuracies this close count as a match (Fashion-MNIST target)
PSNR_TOLERANCE = 0.1  # dB: reconstruction scores this close tie in the efficiency claim
_OUTCOME_WORDS = {"win": "beats", "tie": "ties with", "lose": "loses to"}
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


DATA_FREE_FILE = "data-free.npz"  # a free LGN run's data-free-path generators, in its analysis folder
NAMED = 0.9  # whole-matrix cosine at which a generator counts as named by a library operation
NULL_SAMPLES = 500  # random generators calibrating the orbit-level naming


def fixed_choice(kernel_size: int, order: int) -> list[str] | None:
    """The candidates of the ``select`` generator (lgn-learned) when every one gives the same orbit, else None.

    ``select`` picks, per group, one of the library's exact pixel permutations of order p
    (:func:`lgn.groups.operators.permutation_operations`). Where each candidate is a power
    of every other (at k = 6, p = 4: rot90 and rot270 = rot90³), their orbits are the same p
    filters in another order: the model is the fixed group of the first, whatever it picks.
    """
    from lgn.groups.operators import permutation_operations

    ops = permutation_operations(kernel_size, order, exact=True)

    def powers(m: np.ndarray) -> set[bytes]:
        out, q = set(), np.eye(len(m))
        for _ in range(order):
            out.add(np.rint(q).astype(np.int8).tobytes())
            q = m @ q
        return out

    sets = [powers(m) for m in ops.values()]
    return list(ops) if ops and all(x == sets[0] for x in sets) else None


def fixed_models(records: list[dict], runs_dir: Path) -> dict[str, list[str]]:
    """The LGN models of ``records`` that cannot choose: model → its candidates (:func:`fixed_choice`).

    A model is fixed when every run of it picks among candidates that all give one orbit;
    its groups are then the same in every run by construction, so they are neither
    compared nor tested for dependence, and it is reported as the fixed group it is.
    """
    out = {}
    for model in LGN_MODELS:
        configs = [_run_config(runs_dir / r["run_dir"]).model for r in records if r["model"] == model]
        if not configs or any(c.generator != "select" for c in configs):
            continue
        choices = {tuple(fixed_choice(c.kernel_size, c.group_size) or ()) for c in configs}
        if len(choices) == 1 and () not in choices:
            out[model] = list(choices.pop())
    return out


def _run_config(run_dir: Path):
    from lgn.train.config import RunConfig
    from lgn.runs import read_config

    return RunConfig.from_dict(read_config(run_dir))


def _start_and_data_free(record: dict, run_dir: Path, log) -> tuple[np.ndarray, np.ndarray | None]:
    """The generators a run started from (rebuilt as training built them) and, for free generators, where the
    regulariser alone takes them (:func:`lgn.analysis.datafree.data_free_generators`, cached in the run's
    analysis folder as :data:`DATA_FREE_FILE`)."""
    import torch

    from lgn.analysis.datafree import data_free_generators
    from lgn.models import build_model

    config = _run_config(run_dir)
    torch.manual_seed(config.train.seed)
    model = build_model(config.model)
    start = model.generators().detach().double().numpy()
    if config.model.generator != "free" or config.model.regularizer != "aux-inverse":
        return start, None
    steps = math.ceil(record["n_train"] / config.train.batch_size)
    cache = run_dir / record["analysis"]["groups"]
    cache = cache.with_name(DATA_FREE_FILE)
    if cache.is_file():
        with np.load(cache) as saved:
            if int(saved["steps_per_epoch"]) == steps and int(saved["epochs"]) == config.train.epochs:
                return start, np.asarray(saved["A"], dtype=np.float64)
    if log:
        log(f"data-free path of {record['name']}: {config.train.epochs} × {steps} steps of Adam on the regulariser")
    free = data_free_generators(model, config.train, steps)
    np.savez(cache, A=free.astype(np.float32), steps_per_epoch=steps, epochs=config.train.epochs)  # trained in float32
    return start, free


def run_measures(records: list[dict], runs_dir: Path, log=None) -> dict:
    """The measures that read what training did to each LGN run's generators, per run and per cell.

    Per run (``runs``): ``start_cosine`` and ``start_change``, the median over generators of the cosine with, and
    ‖A − A₀‖/‖A₀‖ from, the generator it started from (blind to no generator, unlike the feature distance);
    for free generators ``data_free_cosine`` (median cosine with the data-free path's generator) and
    ``data_free_distance`` (:func:`lgn.analysis.distance.group_distance` from it); ``orbit_residual`` (median
    over generators of :func:`lgn.analysis.matching.orbit_residual`), ``orbit_named`` (generators whose residual
    is below the one-step null's 5% quantile) and ``orbit_names`` (their best operations); ``named_whole``
    (generators whose whole-matrix cosine reaches :data:`NAMED`), ``named_half`` (≥ 0.5) and ``best_whole`` (the
    best whole-matrix match, name and cosine); ``norms``, the final layer's mean ‖A^i·B‖/‖B‖ per power i, and
    ``norm_shares``, its mean ‖A^i·B‖² / Σ_j ‖A^j·B‖²: the code energy per power if every filter's response
    energy followed its squared norm. ``null`` holds the orbit measure's chance levels: random generators on
    random bases, over the orbit (``orbit``) and over its first step only (``one_step``). ``cells``: per
    (dataset, task, model), the mean ± std over seeds of each number. ``data_free_dependence``: the dependence
    tests on the data-free paths' generators alone (a control).
    """
    from lgn.analysis.datafree import generator_cosines
    from lgn.analysis.distance import group_distance, run_features
    from lgn.analysis.matching import orbit_library, orbit_null, orbit_residual
    from lgn.analysis.measures import orbit_norms
    from lgn.analysis.summary import load_groups

    runs, nulls, libraries, paths = {}, {}, {}, {}
    for r in records:
        if not r.get("analysis"):
            continue
        run_dir = runs_dir / r["run_dir"]
        g = load_groups(_groups_path(runs_dir, r))
        L, K, Cb, m = g.A.shape[:4]  # layers, groups, action blocks, matrix size
        key = (m, g.order, g.kernel_size)
        if key not in nulls:
            libraries[key] = orbit_library(g.kernel_size, m)
            nulls[key] = {"orbit": orbit_null(m, g.order, g.kernel_size, samples=NULL_SAMPLES),
                          "one_step": orbit_null(m, 2, g.kernel_size, samples=NULL_SAMPLES)}
        threshold = float(np.quantile(nulls[key]["one_step"], 0.05))
        base = g.B.reshape(L, K, Cb, m)  # per block: the channel's kernel (channel action) or all channels (joint)
        matches = [orbit_residual(g.A[l, k, c], base[l, k, c], g.order, g.kernel_size, library=libraries[key])
                   for l in range(L) for k in range(K) for c in range(Cb)]
        norms = [orbit_norms(g.A[-1, k, c], base[-1, k, c], g.order) for k in range(K) for c in range(Cb)]
        start, free = _start_and_data_free(r, run_dir, log)
        change = np.linalg.norm(g.A - start, axis=(-2, -1)) / np.linalg.norm(start, axis=(-2, -1))
        nearest = [x["nearest_op"] for x in json.loads((run_dir / r["analysis"]["file"]).read_text())["generators"]]
        sims = [x["similarity"] for x in nearest]
        best = max(nearest, key=lambda x: x["similarity"])
        out = {"generators": len(matches), "start_cosine": float(np.median(generator_cosines(g.A, start))),
               "start_change": float(np.median(change)),
               "orbit_residual": float(np.median([x.similarity for x in matches])),
               "orbit_named": sum(x.similarity < threshold for x in matches),
               "orbit_names": dict(Counter(x.name for x in matches if x.similarity < threshold).most_common()),
               "named_whole": sum(v >= NAMED for v in sims), "named_half": sum(v >= 0.5 for v in sims),
               "best_whole": [best["name"], best["similarity"]],
               "norms": np.mean(norms, axis=0).tolist(),
               "norm_shares": np.mean([n ** 2 / np.sum(n ** 2) for n in norms], axis=0).tolist()}
        if free is not None:
            out["data_free_cosine"] = float(np.median(generator_cosines(g.A, free)))
            out["data_free_distance"] = group_distance(g.A, free, g.kernel_size)
            paths[(r["dataset"], r["task"], r["seed"])] = run_features(free, g.kernel_size)
        runs[r["name"]] = out
    cells: dict = {}
    for r in records:
        if r["name"] in runs:
            cells.setdefault((r["dataset"], r["task"], r["model"]), []).append(runs[r["name"]])
    numbers = ("start_cosine", "start_change", "orbit_residual", "orbit_named", "data_free_cosine",
               "data_free_distance", "named_whole", "named_half")
    cell_rows = []
    for (dataset, task, model), xs in cells.items():
        row = {"dataset": dataset, "task": task, "model": model, "seeds": len(xs),
               "generators": sum(x["generators"] for x in xs),
               "norms": np.mean([x["norms"] for x in xs], axis=0).tolist(),
               "norm_shares": np.mean([x["norm_shares"] for x in xs], axis=0).tolist()}
        for n in numbers:
            if all(n in x for x in xs):
                row[n] = stats([x[n] for x in xs])
        cell_rows.append(row)
    null = {f"{m}x{m} p={p} k={k}": {name: {"median": float(np.median(v)), "q05": float(np.quantile(v, 0.05)),
                                          "samples": len(v)} for name, v in n.items()}
            for (m, p, k), n in nulls.items()}
    return {"runs": runs, "cells": cell_rows, "null": null, "data_free_dependence": _path_dependence(paths)}


def _path_dependence(paths: dict) -> dict | None:
    """The dependence tests of :func:`dependence` on the data-free paths' generators alone, (dataset, task, seed)
    → features: whether the recipe's own differences between cells (μ per task, steps per dataset) make the gaps.
    A control, not a claim: outside the Holm family. None without two datasets and two tasks."""
    from lgn.analysis.distance import dependence_test, distance_matrix

    keys = list(paths)
    if len({k[0] for k in keys}) < 2 or len({k[1] for k in keys}) < 2:
        return None
    d = distance_matrix([paths[k] for k in keys])
    out = {}
    for factor, (label, stratum) in (("data", (0, 1)), ("task", (1, 0))):
        test = dependence_test(d, [k[label] for k in keys], [k[stratum] for k in keys], [k[2] for k in keys])
        out[factor] = {k: test.get(k) for k in ("gap", "between", "floor", "p")}
    return out


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
                      "parts": _parts_by_pair(features, sel),
                      "runs": [r["name"] for r in sel], "run_keys": [[r["dataset"], r["task"], r["seed"]] for r in sel],
                      "run_matrix": d.tolist()}
    return out


def _parts_by_pair(features: list, sel: list[dict]) -> dict:
    """What the distances are made of (:func:`lgn.analysis.distance.feature_parts`), averaged over the pairs of
    runs of different seeds that share dataset and task (``floor``), only the task (``data``: different data)
    or only the dataset (``task``: different task)."""
    from lgn.analysis.distance import FEATURE_PARTS, feature_parts

    kinds: dict = {"floor": [], "data": [], "task": []}
    for i, j in itertools.combinations(range(len(sel)), 2):
        a, b = sel[i], sel[j]
        if a["seed"] == b["seed"]:
            continue
        same = (a["dataset"] == b["dataset"], a["task"] == b["task"])
        kind = {(True, True): "floor", (False, True): "data", (True, False): "task"}.get(same)
        if kind:
            kinds[kind].append(feature_parts(features[i], features[j]))
    return {kind: {p: float(np.mean([x[p] for x in xs])) for p in FEATURE_PARTS} if xs else None
            for kind, xs in kinds.items()}


SIGNIFICANCE = 0.05  # the level of the dependence tests' verdicts, after Holm's correction (:func:`holm`)


def holm(p: dict) -> dict:
    """Holm's step-down adjustment of the p-values ``p`` (key → p): key → adjusted p, at most 1.

    The i-th smallest of n p-values is multiplied by n − i + 1 (i from 1), and an adjusted
    p-value is never below the one before it: rejecting where the adjusted p < α keeps the
    chance of any false rejection among the n tests at α or below.
    """
    out, running = {}, 0.0
    for i, (key, value) in enumerate(sorted(p.items(), key=lambda kv: kv[1])):
        running = max(running, min(1.0, (len(p) - i) * value))
        out[key] = running
    return out


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
    result["verdict"] = (
        f"{factor} dependence: runs on different {other} (same {held}, different seeds) are {result['between']:.3f} "
        f"apart against a seed-to-seed floor of {result['floor']:.3f} (same {held} and "
        f"{'data' if factor == 'data' else 'task'}), a gap of {result['gap']:+.3f}; permutation test p = "
        f"{result['p']:.3g} ({'all' if result['exact'] else 'random'} {result['arrangements']:,} arrangements of the "
        f"{'dataset' if factor == 'data' else 'task'} labels within each {held}; the smallest p this design allows "
        f"is {result['min_p']:.3g})")
    return result


def dependence(dist: dict) -> dict:
    """Per LGN model: is there data dependence, and task dependence, beyond the seed-to-seed floor?

    Each is a permutation test (:func:`lgn.analysis.distance.dependence_test`) on the
    run distances: data dependence compares runs of one task on different datasets with
    runs of one task and dataset (the floor), the dataset labels permuted within each
    task; task dependence the same with the roles swapped, over the datasets used for
    both tasks. Only runs of different seeds are compared. A dependence is *shown*
    (``significant``) when its p-value, adjusted by Holm over every test made here
    (:func:`holm`; ``p_holm``, ``tests``), is below :data:`SIGNIFICANCE`.
    """
    out = {}
    for model, m in dist.items():
        if "run_keys" in m:
            out[model] = {"data": _one_dependence(m, "data"), "task": _one_dependence(m, "task")}
    tested = {(model, f): d[f]["p"] for model, d in out.items() for f in ("data", "task") if d[f].get("p") is not None}
    adjusted = holm(tested)
    for (model, f), p in adjusted.items():
        test = out[model][f]
        test.update(p_holm=p, tests=len(tested), significant=p < SIGNIFICANCE)
        test["verdict"] += (f"; adjusted by Holm over the {len(tested)} tests, p = {p:.3g}: "
                            + ("significant" if p < SIGNIFICANCE else "not significant") + f" at {SIGNIFICANCE}.")
    for model, d in out.items():
        d["verdict"] = f"{model}: {d['data']['verdict']} {d['task']['verdict']}"
    return out


def _pairs_stats(pairs: list[dict]) -> dict:
    s = stats([p["mean"] for p in pairs])
    return {"mean": s["mean"], "std": s["std"], "n": s["n"], "pairs": pairs}


def claim(dist: dict, dep: dict) -> dict:
    """Per LGN model: are same-task-different-data distances smaller than same-data-different-task ones?

    Compared over the datasets that have both tasks (patches have reconstruction only,
    so their pairs are listed but not counted). ``head_to_head`` compares, for each
    dataset d, each task t and each other dataset d', d((d,t),(d',t)) with
    d((d,classify),(d,reconstruct)); distances within :data:`~lgn.analysis.distance.RESOLUTION` tie.

    The rule is the dependence tests' (``dep``, :func:`dependence`): a difference is shown
    only by a permutation test against the seed-to-seed floor, Holm-adjusted. The claim is
    borne out when every head-to-head comparison favours it and the task dependence is
    shown; contradicted when every one goes against it and the data dependence is shown;
    not resolved otherwise.
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
            gap = sd["mean"] - st["mean"]
            shown = {f: (dep.get(model) or {}).get(f, {}).get("significant", False) for f in ("data", "task")}
            if h2h["favouring"] == h2h["total"] and shown["task"]:
                entry["holds"], outcome = True, ("borne out by these runs: every comparison favours it and the task "
                                                 "dependence is shown")
            elif h2h["favouring"] == 0 and h2h["ties"] == 0 and shown["data"]:
                entry["holds"], outcome = False, ("contradicted by these runs: every comparison goes against it and "
                                                  "the data dependence is shown")
            else:
                entry["holds"], outcome = None, ("not resolved by these runs: the comparisons disagree, or the "
                                                 "dependence they need is not shown by its test")
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


def _param_cost(records: list[dict], runs_dir: Path) -> dict | None:
    """What one free generator costs in parameters and what its orbit saves, from an lgn-free run's config."""
    run = next((r for r in records if r["model"] == "lgn-free"), None)
    if run is None:
        return None
    c = _run_config(runs_dir / run["run_dir"]).model
    k, p, channels = c.kernel_size, c.group_size, c.in_channels
    m, blocks = (k * k, channels) if c.action == "channel" else (channels * k * k, 1)
    per = blocks * m * m
    return {"kernel_size": k, "order": p, "generator": per,
            "with_inverse": per * (2 if c.regularizer == "aux-inverse" else 1),
            "saved": (p - 1) * channels * k * k}


def _cell(measures: dict, dataset: str, task: str, model: str) -> dict | None:
    return next((c for c in measures["cells"] if (c["dataset"], c["task"], c["model"]) == (dataset, task, model)),
                None)


def _learn_claim(results: dict, records: list[dict]) -> dict:
    d = results.get("discovery")
    free = [r["analysis"]["summary"]["group_error"]["finite_order"] for r in records
            if r["model"] == "lgn-free" and r.get("analysis")]
    order = (f"; on the grid, the median lgn-free generator's finite-order error (0 for A^p = c·I, 1 for a "
             f"nilpotent A) is {np.median(free):.3f}" if free else "")
    claim_text = "LGNs learn groups without supervision or knowledge of the hidden symmetries in the data"
    if not d:
        return {"claim": claim_text, "number": "not tested here (the planted-symmetry comparison has not run)"
                + order, "verdict": "not tested"}
    rows = {(x["dataset"], x["method"]): x for x in d["summary"]}
    sets = list(dict.fromkeys(x["dataset"] for x in d["summary"]))
    paper = [rows[(s, "paper")] for s in sets if (s, "paper") in rows]
    found = [rows[(s, "discover")] for s in sets if (s, "discover") in rows]
    number = (f"planted symmetries ({', '.join(sets)}): the paper's recipe learns generators aligned "
              + " / ".join(f"{x['alignment_mean']:.3f}" for x in paper) + " with the planted group (1 = the group, "
              "a random generator about 0.03–0.06) at test accuracy "
              + " / ".join(f"{x['accuracy_mean']:.4f}" for x in paper)
              + ", so these tasks do not even need the symmetry"
              + ("; `lgn discover` " + " / ".join(f"{x['alignment_mean']:.3f}" for x in found) if found else "")
              + order)
    verdict = ("agree" if all(x["alignment_mean"] >= 0.9 for x in paper) else
               "disagree" if all(x["alignment_mean"] < 0.5 for x in paper) else "partly")
    return {"claim": claim_text, "number": number, "verdict": verdict}


def _naming_claim(results: dict) -> dict:
    m = results.get("measures") or {}
    runs = [(r, m["runs"][r["name"]]) for r in results["runs"] if r["model"] == "lgn-free" and r["name"] in
            m.get("runs", {})]
    claim_text = "The learned groups can be mapped to well-known operations"
    if not runs:
        return {"claim": claim_text, "number": "no lgn-free run analysed", "verdict": "not tested"}
    n = sum(x["generators"] for _, x in runs)
    whole = sum(x["named_whole"] for _, x in runs)
    half = sum(x["named_half"] for _, x in runs)
    orbit = sum(x["orbit_named"] for _, x in runs)
    names = Counter()
    for _, x in runs:
        names.update(x["orbit_names"])
    null = next(iter(m["null"].values()))
    best = max((x["best_whole"] for _, x in runs), key=lambda b: b[1])
    number = (f"lgn-free: {whole} of {n:,} generators reach cosine ≥ {NAMED} with a library operation as whole "
              f"matrices, {half} reach ≥ 0.5 (the best: {best[0]} at {best[1]:.2f}); on the orbit the layer uses "
              f"(A acting on B, A·B, …, A^(p−2)·B), the median residual of the best operation is {np.median([x['orbit_residual'] for _, x in runs]):.2f} against "
              f"{null['one_step']['median']:.2f} for random generators on one step and "
              f"{null['orbit']['median']:.2f} on the whole orbit, and {orbit} of {n:,} fall below chance's 5% "
              f"quantile ({null['one_step']['q05']:.2f})"
              + (", most often " + ", ".join(f"{k} {v}" for k, v in names.most_common(3)) if names else "")
              + (" (identity: on its orbit A only rescales B, so the p filters are one filter at p scales)"
                 if "identity" in names else ""))
    verdict = "agree" if max(whole, orbit) >= n / 2 else "disagree"
    return {"claim": claim_text, "number": number, "verdict": verdict}


def _dependence_claim(results: dict) -> dict:
    claim_text = "The learned group depends on the distribution of the data and on the task"
    dep = (results.get("dependence") or {}).get("lgn-free")
    if not dep or dep["data"].get("p") is None or dep["task"].get("p") is None:
        return {"claim": claim_text, "number": "not testable here: it needs lgn-free on two seeds or more of two "
                                               "datasets and two tasks", "verdict": "not tested"}
    shown = [dep[f].get("significant") for f in ("data", "task")]
    number = ("lgn-free: data dependence p = {:.3g}, task dependence p = {:.3g} (permutation tests against the "
              "seed-to-seed floor; Holm-adjusted over {} tests: {:.3g}, {:.3g})").format(
        dep["data"]["p"], dep["task"]["p"], dep["data"]["tests"], dep["data"]["p_holm"], dep["task"]["p_holm"])
    m = results.get("measures") or {}
    moved = []
    for dataset in dict.fromkeys(r["dataset"] for r in results["runs"]):
        for task in ("classify", "reconstruct"):
            c = _cell(m, dataset, task, "lgn-free") if m else None
            if c and "data_free_cosine" in c:
                moved.append(f"{dataset} {task} {c['data_free_cosine']['mean']:.3f}")
    if moved:
        number += ("; median cosine of the trained generators with the data-free path's (Adam on the regulariser "
                   "alone): " + ", ".join(moved) + ": classification moves A, reconstruction leaves it on the "
                   "data-free path")
    control = m.get("data_free_dependence") if m else None
    if control and control["data"]["p"] is not None and control["task"]["p"] is not None:
        number += (f"; the same tests on the data-free paths' generators alone find gaps of "
                   f"{control['data']['gap']:+.4f} (data) and {control['task']['gap']:+.4f} (task) over their floor "
                   f"of {control['data']['floor']:.3f}, against {dep['data']['gap']:+.3f} and "
                   f"{dep['task']['gap']:+.3f} for the trained runs: the recipe's own differences between cells (μ per task, steps per "
                   f"dataset) do not make the dependence")
    parts = results["distances"].get("lgn-free", {}).get("parts") or {}
    if all(parts.get(k) for k in ("floor", "data", "task")):
        number += ("; the spectrum's share of the squared distance is " + " / ".join(
            f"{parts[k]['spectrum'] * 1e3:.1f}" for k in ("floor", "data", "task")) + " (×10⁻³; floor / other data "
                   "/ other task), the eigenvalue angles' " + " / ".join(
            f"{parts[k]['angles'] * 1e3:.1f}" for k in ("floor", "data", "task")) + ", the commutation residuals' "
                   + " / ".join(f"{parts[k]['residuals'] * 1e3:.1f}" for k in ("floor", "data", "task")))
    verdict = "agree" if all(shown) else "partly" if any(shown) else "not shown"
    return {"claim": claim_text, "number": number, "verdict": verdict}


def _efficiency_claim(results: dict, records: list[dict], runs_dir: Path) -> dict:
    claim_text = "LGNs improve parameter efficiency and generalisation"
    parts, outcomes = [], []
    for t in results["tables"]:
        rows = {row["model"]: row for row in t["models"]}
        if "lgn-free" not in rows or "unconstrained" not in rows:
            continue
        lgn, base = rows["lgn-free"], rows["unconstrained"]
        if t["task"] == "classify":
            against = []
            for b in ("unconstrained", "cnn"):
                if b in rows:
                    outcome, diff, _ = compare(lgn["metric"], rows[b]["metric"], MATCH_TOLERANCE)
                    outcomes.append(outcome)
                    against.append(f"{_OUTCOME_WORDS[outcome]} {b} ({diff:+.4f})")
            parts.append(f"{t['dataset']} classification: lgn-free " + ", ".join(against))
        else:
            diff = lgn["metric"]["mean"] - base["metric"]["mean"]
            parts.append(f"{t['dataset']} reconstruction: lgn-free {abs(diff):.2f} dB "
                         + ("below" if diff < 0 else "above") + " unconstrained")
            outcomes.append("lose" if diff < -PSNR_TOLERANCE else "win" if diff > PSNR_TOLERANCE else "tie")
    if not parts:
        return {"claim": claim_text, "number": "not testable here: no lgn-free and unconstrained pair",
                "verdict": "not tested"}
    free = next((row for t in results["tables"] for row in t["models"] if row["model"] == "lgn-free"), None)
    base = next((row for t in results["tables"] for row in t["models"] if row["model"] == "unconstrained"
                 and t["task"] == "classify"), None)
    cost = _param_cost(records, runs_dir)
    number = "; ".join(parts)
    if free and base:
        number += f"; {free['params']:,} trainable parameters against the unconstrained net's {base['params']:,}"
    if cost:
        k = cost["kernel_size"]
        number += (f": a free generator costs k⁴ = {cost['generator']:,} parameters ({cost['with_inverse']:,} with its "
                   f"auxiliary inverse) to save (p − 1)·k² = {cost['saved']:,} (k = {k}, p = {cost['order']}), so at "
                   f"these sizes the LGN cannot be more parameter-efficient than the net it constrains")
    verdict = ("agree" if all(o == "win" for o in outcomes) and free and base and free["params"] < base["params"]
               else "disagree" if "lose" in outcomes or (free and base and free["params"] > base["params"])
               else "neither (ties)")
    return {"claim": claim_text, "number": number, "verdict": verdict}


def abstract_claims(results: dict, records: list[dict], runs_dir: Path) -> list[dict]:
    """One entry per claim of the paper's abstract: ``{claim, number, verdict}``, the two that fail here first.

    Verdicts: *agree*, *disagree*, *partly*, *not shown* or *not tested*, each by the rule in its function:
    learning (the paper's recipe on planted symmetries: agree if it aligns ≥ 0.9 everywhere, disagree if
    below 0.5 everywhere), naming (agree if half the lgn-free generators are named, as whole matrices at
    cosine ≥ :data:`NAMED` or on their orbit below chance's 5% quantile), dependence (the Holm-adjusted
    permutation tests of :func:`dependence`) and efficiency (lgn-free against the baselines, with parameter
    counts).
    """
    return [_learn_claim(results, records), _naming_claim(results), _dependence_claim(results),
            _efficiency_claim(results, records, runs_dir)]


def code_sizes(records: list[dict], runs_dir: Path) -> dict:
    """Per reconstruction model: ``{values, pixels}``, the size of its code (``model.encode``) for one image
    against the image's own size; a code at least as large as the image is no bottleneck."""
    import torch

    from lgn.models import build_model

    out = {}
    for r in records:
        if r["task"] != "reconstruct" or r["model"] in out:
            continue
        c = _run_config(runs_dir / r["run_dir"]).model
        x = torch.zeros(1, c.in_channels, c.image_size, c.image_size)
        with torch.no_grad():
            code = build_model(c).eval().encode(x)  # (1, channels, h, w)
        out[r["model"]] = {"values": int(code[0].numel()), "shape": list(code.shape[1:]), "pixels": int(x[0].numel())}
    return out
