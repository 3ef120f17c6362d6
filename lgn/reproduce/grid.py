"""The reproduction grid: which data, tasks, models, seeds and training recipe make up ``lgn reproduce``.

A :class:`DataPlan` is one dataset with the tasks it is used for; a :class:`Recipe`
says how long and on how much of each dataset to train; :func:`build_grid` crosses
them with :data:`MODELS` and the seeds into :class:`RunSpec` s, each one an
ordinary ``train()`` run.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MODELS", "LGN_MODELS", "DataPlan", "Recipe", "RunSpec", "QUICK", "PAPER", "SCALES", "data_plans",
           "build_grid", "PATCH_SIZE", "AUTHORS_PREPROCESSING"]

# model name → model settings; everything else is the paper's default (docs/method.md §2, §5)
MODELS: dict[str, dict] = {
    "lgn-free": {"generator": "free", "regularizer": "aux-inverse"},  # the paper's LGN
    "lgn-cyclic": {"generator": "cyclic"},                             # exact cyclic groups, A^p = I
    "lgn-learned": {"generator": "select"},                            # picks a library permutation of order p
    "unconstrained": {"generator": "independent"},                     # same unfolded net, K·p free filters
    "rot90": {"generator": "fixed:rot90"},                             # a fixed 90° rotation group
    "cnn": {"architecture": "cnn"},                                    # a plain CNN, K·p channels per layer
}
LGN_MODELS = ("lgn-free", "lgn-cyclic", "lgn-learned")  # the models whose learned groups are analysed and compared

PATCH_SIZE = 16  # the natural patches are 16×16 grey crops: small images with room for a 6×6 kernel to move


@dataclass(frozen=True)
class DataPlan:
    """One dataset of the grid."""

    dataset: str                 # the name in run names and tables: 'mnist5k', 'fashion-mnist', ...
    data: dict                   # the run's [data] settings: name, data_dir, options
    tasks: tuple[str, ...]       # 'classify' and/or 'reconstruct'
    n_train: int                 # size of the full training split (for subsets and time budgets)
    n_test: int                  # size of the full test split


@dataclass(frozen=True)
class Recipe:
    """How every run of the grid trains; the rest is the paper's recipe (Adam 0.01, the step schedule, clip 2)."""

    name: str                                  # 'quick' or 'paper'
    epochs: dict                               # task → epochs
    train_subset: dict = field(default_factory=dict)  # task → first N training examples (absent: all)
    test_subset: dict = field(default_factory=dict)   # task → first N test examples (absent: all)
    baseline_seeds: int | None = None          # seeds of the non-LGN models; None: as many as the LGN models
    model: dict = field(default_factory=dict)  # model settings shared by every run (tests: a tiny net)
    train: dict = field(default_factory=dict)  # train settings shared by every run
    data: dict = field(default_factory=dict)   # data settings shared by every run (preprocessing)
    models: tuple[str, ...] | None = None      # the models of the grid; None: all of MODELS
    datasets: tuple[str, ...] | None = None    # the datasets kept from the plans; None: all

    def to_dict(self) -> dict:
        return {"name": self.name, "epochs": dict(self.epochs), "train_subset": dict(self.train_subset),
                "test_subset": dict(self.test_subset), "baseline_seeds": self.baseline_seeds,
                "model": dict(self.model), "train": dict(self.train), "data": dict(self.data),
                "models": list(self.grid_models()), "datasets": None if self.datasets is None else list(self.datasets)}

    def grid_models(self) -> tuple[str, ...]:
        """The models this recipe trains, in the order of :data:`MODELS`."""
        return tuple(m for m in MODELS if self.models is None or m in self.models)

    def keeps(self, plan: "DataPlan") -> bool:
        return self.datasets is None or plan.dataset in self.datasets


# --quick: < 20 min on a 2-core CPU. Classification keeps 8 epochs (mnist5k reaches ≈ 0.977, the demo's
# measurement) on at most 4,000 training images; reconstruction the same 8 × 4,000 (4 epochs on 2,000 left the
# generators near their initialisation); baselines one seed. Measured: about 13 min on an idle 2-core machine.
QUICK = Recipe("quick", epochs={"classify": 8, "reconstruct": 8},
               train_subset={"classify": 4000, "reconstruct": 4000},
               test_subset={"classify": 2000, "reconstruct": 1000}, baseline_seeds=1)
# the paper's scale: its recipe for 100 epochs on all the data (mnist5k 4,000 / 1,000, Fashion-MNIST 60,000 / 10,000,
# full MNIST and CIFAR-10 when their folders are given), every model on every seed, the learned-group recipe
# (lgn-learned) too. Not rot90 (the authors' earlier fixed group, not a model of the paper's comparison) and not
# the natural patches (not in the paper's data).
PAPER = Recipe("paper", epochs={"classify": 100, "reconstruct": 100},
               models=tuple(m for m in MODELS if m != "rot90"),
               datasets=("mnist5k", "mnist", "fashion-mnist", "cifar10"))
SCALES = {"quick": QUICK, "paper": PAPER}  # the recipes `lgn reproduce --scale` selects

# The authors' preprocessing of MNIST: standardise, then ZCA-whiten with ε = 1e-8 (docs/reproduce.md)
AUTHORS_PREPROCESSING = {"zca": True, "zca_epsilon": 1e-8}


@dataclass(frozen=True)
class RunSpec:
    """One run of the grid: a run folder ``runs/<name>`` trained with ``settings``."""

    dataset: str
    task: str
    model: str
    seed: int
    settings: dict        # the nested settings given to train() (without the device)
    n_train: int          # training examples the run sees per epoch
    n_test: int
    tag: str = ""         # tells apart runs of one dataset, task, model and seed (a curve's training size)

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.task}-{self.model}-s{self.seed}" + (f"-{self.tag}" if self.tag else "")

    @property
    def cell(self) -> tuple[str, str]:
        return self.dataset, self.task


def _folder(path: str | os.PathLike | None, what: str) -> str | None:
    if path is None:
        return None
    if not Path(path).is_dir():
        raise FileNotFoundError(f"{what} {path} is not a folder")
    return str(Path(path).resolve())


def data_plans(*, mnist_dir=None, fashion_dir=None, cifar_dir=None, data_root=None) -> list[DataPlan]:
    """The grid's datasets: MNIST (mnist5k, or full MNIST from ``mnist_dir``), Fashion-MNIST, CIFAR-10 when a
    folder is given, and natural patches (reconstruction only: they have no labels).

    ``data_root`` is a folder whose sub-folders ``mnist``, ``fashion-mnist`` and ``cifar10`` (or
    ``cifar-10-batches-py``) are used when present; an explicit folder wins.
    """
    if data_root is not None:
        root = Path(_folder(data_root, "--data-dir"))
        found = {name: root / name for name in ("mnist", "fashion-mnist", "cifar10", "cifar-10-batches-py")
                 if (root / name).is_dir()}
        mnist_dir = mnist_dir or found.get("mnist")
        fashion_dir = fashion_dir or found.get("fashion-mnist")
        cifar_dir = cifar_dir or found.get("cifar10") or found.get("cifar-10-batches-py")
    both = ("classify", "reconstruct")
    plans = []
    if mnist_dir is not None:
        plans.append(DataPlan("mnist", {"name": "mnist", "data_dir": _folder(mnist_dir, "MNIST folder")},
                              both, 60000, 10000))
    else:
        plans.append(DataPlan("mnist5k", {"name": "mnist5k"}, both, 4000, 1000))
    fashion = {"name": "fashion-mnist"}
    if fashion_dir is not None:
        fashion["data_dir"] = _folder(fashion_dir, "Fashion-MNIST folder")
    plans.append(DataPlan("fashion-mnist", fashion, both, 60000, 10000))
    if cifar_dir is not None:
        plans.append(DataPlan("cifar10", {"name": "cifar10", "data_dir": _folder(cifar_dir, "CIFAR-10 folder")},
                              both, 50000, 10000))
    plans.append(DataPlan("patches", {"name": "patches", "options": {"kernel_size": PATCH_SIZE, "channels": 1,
                                                                     "n_train": 10000, "n_test": 2000}},
                          ("reconstruct",), 10000, 2000))
    return plans


def _settings(plan: DataPlan, task: str, model: str, seed: int, recipe: Recipe) -> tuple[dict, int, int]:
    data = {**copy.deepcopy(plan.data), **recipe.data}
    n_train, n_test = plan.n_train, plan.n_test
    if recipe.train_subset.get(task) is not None and recipe.train_subset[task] < n_train:
        n_train = data["train_subset"] = recipe.train_subset[task]
    if recipe.test_subset.get(task) is not None and recipe.test_subset[task] < n_test:
        n_test = data["test_subset"] = recipe.test_subset[task]
    settings = {
        "model": {**recipe.model, **MODELS[model], "task": task},
        "train": {**recipe.train, "epochs": recipe.epochs[task], "seed": seed},
        "data": data,
    }
    return settings, n_train, n_test


def build_grid(plans: list[DataPlan], recipe: Recipe, seeds: int,
               models: tuple[str, ...] | None = None) -> list[RunSpec]:
    """Every run: per dataset and task, per seed, per model (LGN models on ``seeds`` seeds, 0..seeds−1).

    Seed-major within a cell, so that a grid trained in pieces has every model of a
    cell on one seed before any model gets its second: a partial grid can already
    compare the models. ``models`` defaults to the recipe's; datasets the recipe
    leaves out are skipped.
    """
    if models is None:
        models = recipe.grid_models()
    if seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    specs = []
    for plan in plans:
        if not recipe.keeps(plan):
            continue
        for task in plan.tasks:
            for seed in range(seeds):
                for model in models:
                    if model not in LGN_MODELS and recipe.baseline_seeds is not None \
                            and seed >= recipe.baseline_seeds:
                        continue
                    settings, n_train, n_test = _settings(plan, task, model, seed, recipe)
                    specs.append(RunSpec(plan.dataset, task, model, seed, settings, n_train, n_test))
    return specs
