"""Curves of a found group: does a model built on the group ``lgn discover`` finds beat the baselines with few examples?

:func:`found_curves` (``lgn curves --found``) first finds, for each dataset and seed, the
cyclic group of order p in the training images the curve may use (the first
``max(sizes)``; never a test image): the estimate of ``lgn discover``
(:func:`lgn.discovery.estimate_group`, the same standardisation) and its verdict, saved as
``OUT/groups/<dataset>-s<seed>/groups.npz`` in ``lgn discover``'s layout. Then, for each
training size, model and seed, one run with the step budget and recipe of
:mod:`lgn.reproduce.curves` (the first N training images, per-channel standardisation,
Adam 0.01 halved at 1/2, 3/4, 7/8 of the epochs, clipping 2): trained in memory by
:func:`lgn.train.fit`, the loop of ``lgn train``, and tested once at the end. A run at 100
images is 256 epochs of one step; ``lgn train`` would test and checkpoint after each, which
cost several times the training itself here. Each finished run writes its record,
``OUT/runs/<name>.json``, at once; a repeated command reads those back and trains the rest.

Planted sets (``digits-*``) train every model; natural sets (mnist5k, Fashion-MNIST) the
group MLPs (found, rot90-pooled, mlp): their LGN and CNN baselines on the same recipe are the
runs of ``results/curves``.

- ``found``: the group MLP (:mod:`lgn.models.mlp`) on ``generator='file:<groups.npz>'``,
  each orbit max-pooled: invariant to the found group;
- ``oracle``: the same on the planted T (planted sets only);
- ``rot90-pooled``: the same on a 90° rotation of the whole image (natural data: the group a
  user might assume when discovery finds none);
- ``mlp``: the same MLP with K·p independent first-layer rows and no pooling (equal width);
- ``unconstrained``, ``cnn``, ``lgn-free``: the models of the paper's grid.

Writes ``OUT/curves.json`` (the ``runs`` records of ``results/curves``, plus each
discovery's verdict), ``OUT/CURVES.md`` and ``OUT/curves.png``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from lgn.reproduce.curves import CURVES_FIGURE, curve_epochs, curve_table, write_curves
from lgn.reproduce.grid import MODELS, RunSpec
from lgn.runs import cpu_model

__all__ = ["FoundSettings", "FOUND", "FOUND_MODELS", "BASELINES", "PLANTED_SETS", "NATURAL_SETS", "find_group",
           "build_found", "found_verdicts", "found_curves"]

PLANTED_SETS = ("digits-rot90", "digits-perm4", "digits-shift-y")
NATURAL_SETS = ("mnist5k", "fashion-mnist")
INVARIANT = ("found", "oracle", "rot90-pooled")   # group MLPs with orbit pooling
BASELINES = ("mlp", "unconstrained", "cnn", "lgn-free")
FOUND_MODELS = INVARIANT + BASELINES
CHEAP = INVARIANT + ("mlp",)                       # the group MLPs: seconds per run, trained first
NATURAL_MODELS = ("found", "rot90-pooled", "mlp")       # what natural sets train (their other baselines: results/curves)
_DATA = {**{name: {"name": f"planted:{name}"} for name in PLANTED_SETS},
         "mnist5k": {"name": "mnist5k"}, "fashion-mnist": {"name": "fashion-mnist"}}
_IMAGE_SIZE = {**dict.fromkeys(PLANTED_SETS, 16), "mnist5k": 28, "fashion-mnist": 28}
_N_TRAIN = {**dict.fromkeys(PLANTED_SETS, 4000), "mnist5k": 4000, "fashion-mnist": 60000}
_N_TEST = {**dict.fromkeys(PLANTED_SETS, 1000), "mnist5k": 1000, "fashion-mnist": 10000}


@dataclass(frozen=True)
class FoundSettings:
    """What the found-group curves train: datasets, sizes, seeds, the step budget, the models and their width."""

    datasets: tuple[str, ...] = PLANTED_SETS + NATURAL_SETS
    sizes: tuple[int, ...] = (100, 250, 500, 1000, 4000)
    seeds: int = 3
    steps: int = 256                 # optimisation steps of every run, as lgn curves
    test_subset: int = 1000          # the first N test images
    group_size: int = 4              # p: the order discovery looks for, and of every orbit
    width: int = 32                  # K: orbits of the group MLPs (K·p = 128 first-layer rows)
    null_draws: int = 19             # draws of the discovery verdict's null (lgn.discovery.judge)
    headline: int = 250              # the size whose baselines train first (the target's comparison)
    models: tuple[str, ...] = FOUND_MODELS
    model: dict = field(default_factory=dict)   # model settings shared by every run (tests: a tiny net)
    train: dict = field(default_factory=dict)   # train settings shared by every run

    def __post_init__(self) -> None:
        unknown = [d for d in self.datasets if d not in _DATA]
        if unknown:
            raise ValueError(f"unknown dataset(s) {', '.join(unknown)}; known: {', '.join(_DATA)}")
        unknown = [m for m in self.models if m not in FOUND_MODELS]
        if unknown:
            raise ValueError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(FOUND_MODELS)}")
        if not self.sizes or any(not isinstance(n, int) or n < 1 for n in self.sizes):
            raise ValueError(f"training sizes must be positive integers, got {self.sizes}")
        for name in ("seeds", "steps", "width", "null_draws"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.group_size < 2:
            raise ValueError(f"group_size must be at least 2, got {self.group_size}")

    @property
    def batch_size(self) -> int:
        return int(self.train.get("batch_size", 128))

    def to_dict(self) -> dict:
        return {"datasets": list(self.datasets), "sizes": list(self.sizes), "seeds": self.seeds, "steps": self.steps,
                "test_subset": self.test_subset, "group_size": self.group_size, "width": self.width,
                "null_draws": self.null_draws, "headline": self.headline,
                "models": list(self.models), "model": dict(self.model), "train": dict(self.train),
                "batch_size": self.batch_size}


FOUND = FoundSettings()


def find_group(dataset: str, seed: int, n_images: int, order: int, path: Path, null_draws: int = 19) -> dict:
    """Find the group of ``order`` in the first ``n_images`` training images of ``dataset`` (seed ``seed``).

    Writes ``path`` (a ``groups.npz`` as ``lgn discover`` writes it: A ``(1, 1, 1, n, n)``, B the first
    cluster centre, the order) and ``path``.json (the verdict); returns the verdict's dict. Both are read
    back when they exist. The test images are never loaded into the estimate.
    """
    record_path = path.with_suffix(".json")
    if path.is_file() and record_path.is_file():
        return json.loads(record_path.read_text())
    from lgn.analysis.summary import Groups, save_groups
    from lgn.data import get_dataset
    from lgn.discovery import estimate_group, judge
    from lgn.discovery.fit import standardise
    from lgn.files import write_json

    start = time.perf_counter()
    data = get_dataset(_DATA[dataset]["name"], seed=seed).subset(n_images, None)
    x, = standardise(data.x_train)  # as lgn discover: one scalar mean and scale, which every permutation keeps
    channels, k = x.shape[1], x.shape[-1]
    estimate = estimate_group(x.reshape(len(x), -1).double().numpy(), data.y_train.numpy(), order, seed=seed)
    # naming the nearest library operation needs the operator library of k×k images: skipped above 16×16
    verdict = judge(estimate, k if k <= 16 else None, channels, null_draws=null_draws, seed=seed)
    n = estimate.generator.shape[0]
    base = estimate.centres[:1].reshape(1, 1, channels, k, k)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_groups(Groups(A=estimate.generator.reshape(1, 1, 1, n, n), B=base, kernel_size=k, channels=channels,
                       order=order, source=f"lgn curves --found: {dataset} seed {seed}, first {n_images} "
                                           f"training images"), path)
    record = {"dataset": dataset, "seed": seed, "n_images": len(x), "verdict": verdict.to_dict(),
              "text": verdict.text(), "seconds": time.perf_counter() - start}
    if dataset in PLANTED_SETS:
        from lgn.data.planted import planted_generator
        from lgn.discovery import alignment

        t, t_order = planted_generator(dataset, k)
        m = len(estimate.centres)  # scored with every cluster centre as a base filter, as docs/discovery.md
        record["planted_alignment"] = alignment(np.broadcast_to(estimate.generator, (1, m, 1, n, n)),
                                                estimate.centres.reshape(1, m, channels, k, k), t, t_order)
    write_json(record, record_path)
    return record


def _fixed_matrix(out: Path, dataset: str, name: str) -> Path:
    """Write the planted T (``name='oracle'``) or a 90° rotation of the whole image as ``OUT/groups/…npy``."""
    from lgn.groups import operators

    k = _IMAGE_SIZE[dataset]
    if name == "oracle":
        from lgn.data.planted import planted_generator

        matrix, _ = planted_generator(dataset, k)
    else:
        matrix = operators.rotation(k, 90)
    path = out / "groups" / f"{dataset}-{name}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        np.save(path, matrix)
    return path


def _model(model: str, settings: FoundSettings, generator: str | None) -> dict:
    if model in BASELINES and model in MODELS:
        return dict(MODELS[model])
    mlp = {"architecture": "mlp", "n_groups": settings.width, "group_size": settings.group_size, "action": "joint"}
    if model == "mlp":
        return {**mlp, "generator": "independent"}
    return {**mlp, "generator": generator, "orbit_pool": "max"}


def build_found(out: Path, settings: FoundSettings, groups: dict[tuple[str, int], Path]) -> list[RunSpec]:
    """Every run; ``groups[(dataset, seed)]`` is the found group's file.

    In the order they train: the group MLPs (seconds each) of the planted sets, every size and
    seed; the LGN and CNN baselines (a minute or more each) at the headline size
    (``settings.headline``); the group MLPs of the natural sets; the other baselines size by size,
    seed by seed within a size. A stopped grid then holds the headline comparison first.
    """
    cells = []
    for seed in range(settings.seeds):
        for dataset in settings.datasets:
            for n in settings.sizes:
                if n > _N_TRAIN[dataset]:
                    raise ValueError(f"training size {n} exceeds {dataset}'s {_N_TRAIN[dataset]:,} training images")
                for model in settings.models:
                    if dataset in PLANTED_SETS and model == "rot90-pooled" or \
                            dataset in NATURAL_SETS and model not in NATURAL_MODELS:
                        continue  # the planted T where there is one, a guessed rotation where there is none
                    cells.append((seed, dataset, n, model))
    sizes = sorted(settings.sizes, key=lambda n: (n != settings.headline, n))

    def phase(cell) -> tuple:
        seed, dataset, n, model = cell
        if model in CHEAP:
            return (0 if dataset in PLANTED_SETS else 2), 0, seed
        return (1 if n == settings.headline else 3), sizes.index(n), seed

    cells.sort(key=phase)
    specs = []
    for seed, dataset, n, model in cells:
        data = {**_DATA[dataset], "train_subset": n}
        n_test = min(settings.test_subset, _N_TEST[dataset])
        if n_test < _N_TEST[dataset]:
            data["test_subset"] = n_test
        generator = (f"file:{groups[dataset, seed]}" if model == "found" else
                     f"file:{_fixed_matrix(out, dataset, model)}" if model in ("oracle", "rot90-pooled") else None)
        run = {"model": {**settings.model, **_model(model, settings, generator), "task": "classify",
                         "image_size": _IMAGE_SIZE[dataset]},
               "train": {**settings.train, "epochs": curve_epochs(n, settings.steps, settings.batch_size),
                         "seed": seed},
               "data": data}
        specs.append(RunSpec(dataset, "classify", model, seed, run, n, n_test, tag=f"n{n}"))
    return specs


def found_verdicts(table: list[dict]) -> list[dict]:
    """Per dataset and size, each invariant model against the best baseline (highest mean) and found against
    oracle: win, tie or lose with the seed spread (:func:`lgn.reproduce.results.compare`)."""
    from lgn.reproduce.results import MATCH_TOLERANCE, compare

    index = {(r["dataset"], r["n_train"], r["model"]): r for r in table if r["accuracy"]["n"]}
    models = {(r["dataset"], r["model"]) for r in table}  # the models of the grid, finished or not
    out = []
    for (dataset, n, model), row in index.items():
        if model not in INVARIANT:
            continue
        bases = [index[dataset, n, b] for b in BASELINES if (dataset, n, b) in index]
        others = ([max(bases, key=lambda r: r["accuracy"]["mean"])] if bases else []) + \
                 ([index[dataset, n, "oracle"]] if model == "found" and (dataset, n, "oracle") in index else [])
        for other in others:
            outcome, diff, margin = compare(row["accuracy"], other["accuracy"], MATCH_TOLERANCE)
            out.append({"dataset": dataset, "n_train": n, "model": model, "against": other["model"],
                        "best_baseline": other["model"] != "oracle", "outcome": outcome, "difference": diff,
                        "margin": margin, "seeds": [row["accuracy"]["n"], other["accuracy"]["n"]],
                        "baselines_missing": [] if other["model"] == "oracle" else
                        [b for b in BASELINES if (dataset, b) in models and (dataset, n, b) not in index]})
    return out


def _markdown(result: dict, path: Path) -> Path:
    """Write ``CURVES.md`` from the ``curves.json`` dict of :func:`found_curves` (the template
    ``templates/found.md.j2``)."""
    from lgn.reproduce.curves import _pm
    from lgn.reproduce.report import render

    table = result["table"]
    discovery = [[d["dataset"], str(d["seed"]), f"{d['n_images']:,}", "yes" if d["verdict"]["found"] else "no",
                  f"{d['verdict']['fit_residual']:.3f} / {d['verdict']['null_quantiles']['0.5']:.3f}",
                  f"{d['planted_alignment']:.3f}" if "planted_alignment" in d else "–"]
                 for d in result["discovery"]]
    datasets = []
    for dataset in dict.fromkeys(r["dataset"] for r in table):
        models = list(dict.fromkeys(r["model"] for r in table if r["dataset"] == dataset))
        rows = [[f"{n:,}"] + [_pm(next(r for r in table if (r["dataset"], r["n_train"], r["model"]) == (dataset, n, m))
                                  ["accuracy"]) for m in models]
                for n in dict.fromkeys(r["n_train"] for r in table if r["dataset"] == dataset)]
        datasets.append({"name": dataset, "models": models, "rows": rows})
    params = []
    for key in dict.fromkeys((r["dataset"], r["model"]) for r in table):
        row = next((r for r in table if (r["dataset"], r["model"]) == key and r["params"] is not None), None)
        if row:
            params.append([*key, f"{row['params']:,}", f"{row['params_export']:,}"])
    path.write_text(render("found.md.j2", r=result, s=result["settings"], discovery=discovery, datasets=datasets,
                           params=params, baselines=BASELINES, figure=CURVES_FIGURE,
                           missing=sum(len(r["seeds_missing"]) for r in table)))
    return path


def _read_record(runs: Path, spec: RunSpec) -> dict | None:
    """The record of ``spec``'s run if it finished with ``spec``'s settings, else None."""
    path = runs / f"{spec.name}.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None  # not run yet, or a torn write: trained again
    return record if isinstance(record, dict) and record.get("settings") == spec.settings else None


_DATA_CACHE: dict = {}


def _data(spec: RunSpec):
    """``(x_train, y_train, x_test, y_test)`` of ``spec``, preprocessed as ``lgn train`` does."""
    from lgn.data import get_dataset
    from lgn.data.preprocess import fit_preprocessing

    d = spec.settings["data"]
    key = (d["name"], spec.seed)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()  # one dataset at a time: the runs are ordered dataset by dataset
        _DATA_CACHE[key] = get_dataset(d["name"], seed=spec.seed)
    data = _DATA_CACHE[key].subset(d.get("train_subset"), d.get("test_subset"))
    prep = fit_preprocessing(data.x_train)
    return prep(data.x_train), data.y_train, prep(data.x_test), data.y_test


def train_found_run(spec: RunSpec, runs: Path, device: str = "cpu") -> dict:
    """Train ``spec`` in memory (:func:`lgn.train.fit`), test it once, write and return its record."""
    import torch

    from lgn.files import write_json
    from lgn.models import ModelConfig, build_model
    from lgn.train import TrainConfig, evaluate, fit

    start = time.perf_counter()
    x_train, y_train, x_test, y_test = (t.to(device) for t in _data(spec))
    train = TrainConfig(**{**spec.settings["train"], "progress": False, "device": device})
    config = ModelConfig(**{**spec.settings["model"], "in_channels": x_train.shape[1]})
    torch.manual_seed(train.seed)
    model = build_model(config).to(device)
    t0 = time.perf_counter()
    metrics = fit(model, x_train, y_train, train)
    train_seconds = time.perf_counter() - t0
    test = evaluate(model, x_test, y_test, task="classify", batch_size=train.eval_batch_size)

    def count(m) -> int:
        return sum(p.numel() for p in m.parameters() if p.requires_grad)

    record = {"name": spec.name, "dataset": spec.dataset, "task": "classify", "model": spec.model, "seed": spec.seed,
              "metric_name": "test_acc", "metric": test["acc"], "test_loss": test["loss"],
              "params": count(model),                 # trainable parameters, auxiliary inverses included
              "params_export": count(model.export()),  # parameters of the exported plain network
              "train_seconds": train_seconds, "train_acc": metrics[-1]["train_acc"], "epochs": metrics[-1]["epoch"],
              "n_train": spec.n_train, "n_test": spec.n_test, "device": device, "threads": torch.get_num_threads(),
              "cpu": cpu_model(), "settings": spec.settings, "wall_seconds": time.perf_counter() - start}
    runs.mkdir(parents=True, exist_ok=True)
    write_json(record, runs / f"{spec.name}.json")
    return record


def found_curves(out: str | os.PathLike, *, settings: FoundSettings = FOUND, device: str = "cpu",
                 force: bool = False, command: str = "lgn curves --found", log: Callable[[str], None] | None = print,
                 limit: int | None = None) -> dict:
    """Find the groups, train (or finish) every run into ``out``; write ``curves.json``, ``CURVES.md``, ``curves.png``.

    Each finished run writes its record as it completes, so a stopped invocation resumes where it
    stopped; ``limit`` trains at most that many runs in this call (the outputs are then partial,
    ``complete`` false).
    """
    from lgn.device import resolve_device
    from lgn.reproduce import _git, check_grid, machine_info
    from lgn.reproduce.runner import format_line

    start = time.perf_counter()
    resolve_device(device)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    groups = {(d, seed): out / "groups" / f"{d}-s{seed}" / "groups.npz"
              for d in settings.datasets for seed in range(settings.seeds)}
    specs = build_found(out, settings, groups)

    def discovered(dataset: str, seed: int) -> dict:  # found once, when a run first needs it
        record = find_group(dataset, seed, min(max(settings.sizes), _N_TRAIN[dataset]), settings.group_size,
                            groups[dataset, seed], settings.null_draws)
        if log and (dataset, seed) not in announced:
            log(f"discovery {dataset} s{seed}: {record['text'].splitlines()[0]}")
        announced.add((dataset, seed))
        return record

    announced: set = set()
    check_grid(out, {"found": settings.to_dict(), "runs": {s.name: s.settings for s in specs}}, force)
    if log:
        log(f"lgn curves --found: {len(specs)} runs into {out}/runs")
    records, reused = [], []
    trained = 0
    for i, spec in enumerate(specs):
        record = _read_record(out / "runs", spec)
        if record is None and (limit is None or trained < limit):
            if spec.model == "found":
                discovered(spec.dataset, spec.seed)
            record = train_found_run(spec, out / "runs", device)
            trained += 1
            reused.append(False)
        elif record is not None:
            reused.append(True)
        if record is not None:
            records.append(record)
            if log:
                log(format_line(i + 1, len(specs), record, reused[-1]))
    complete = len(records) == len(specs)
    discovery = [discovered(d, seed) for (d, seed), path in groups.items()
                 if path.with_suffix(".json").is_file()]  # those found so far
    order = {m: i for i, m in enumerate(FOUND_MODELS)}
    table = sorted(curve_table(records, specs), key=lambda r: (settings.datasets.index(r["dataset"]), r["n_train"],
                                                                order[r["model"]]))
    commit, dirty = _git()
    result = {"command": command, "complete": complete, "machine": machine_info(device),
              "git_commit": commit, "git_dirty": dirty, "settings": settings.to_dict(), "reused_runs": sum(reused),
              "discovery": discovery,
              "runs": [{k: v for k, v in r.items() if k != "settings"} for r in records], "table": table,
              "verdicts": found_verdicts(table)}
    return write_curves(result, out, start, _markdown, log, len(specs))
