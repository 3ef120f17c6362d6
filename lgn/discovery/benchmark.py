"""The planted-symmetry benchmark of one dataset and seed: each recipe's recovery of the planted group.

Recipes (``methods``):

- ``discover``: ``lgn discover``'s default, the group estimated from cluster centres;
- ``learn``: ``lgn discover --method learn``, the generator learned by gradient descent from random starts;
- ``paper``: the paper's recipe (free generators, unit norm, auxiliary inverse, random start).

All train the same architecture with the same loop. Shared by ``lgn bench-discovery`` and ``lgn reproduce``.
"""

from __future__ import annotations

import time

from lgn.discovery.fit import DiscoveryConfig, discover, model_groups, standardise, train_paper_recipe
from lgn.discovery.learn import LearnConfig
from lgn.discovery.score import alignment

__all__ = ["BENCH_METHODS", "bench_one"]

BENCH_METHODS = ("discover", "learn", "paper")


def _paper(x_train, y_train, x_test, y_test, order, config, n_groups, progress):
    x_train, x_test = standardise(x_train, x_test)
    model, acc = train_paper_recipe(x_train, y_train, x_test, y_test, order, config, n_groups, progress)
    return (*model_groups(model), acc)


def bench_one(name: str, seed: int, *, epochs: int, sigma: float, n_train: int, n_test: int,
              methods: tuple[str, ...] = ("discover", "paper"), restarts: int = 8,
              orbit_pool: str | None = None, progress=None) -> list[dict]:
    """The ``methods`` on one planted set: a list of ``{dataset, seed, method, alignment, accuracy, seconds}``.

    ``sigma``, ``n_train`` and ``n_test`` apply to template sets; ``digits-*`` sets are
    the mnist5k split. ``restarts``: random starts of ``learn``. ``orbit_pool`` ("max", "mean"): every
    recipe's LGN reads each orbit pooled. ``paper`` uses as many
    groups as the first recipe run before it (one per class). ``progress`` receives
    :func:`lgn.discovery.discover`'s lines, and the paper recipe's epoch lines.
    """
    from lgn.data.planted import DIGIT_NAMES, planted_data

    unknown = [m for m in methods if m not in BENCH_METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; expected {', '.join(BENCH_METHODS)}")
    options = {} if name in DIGIT_NAMES else {"sigma": sigma, "n_train": n_train, "n_test": n_test}
    x_train, y_train, x_test, y_test, planted, order = planted_data(name, seed=seed, **options)
    n_groups = None
    rows = []
    for method in methods:
        start = time.time()
        if method == "paper":
            config = DiscoveryConfig(epochs=epochs, seed=seed, orbit_pool=orbit_pool)
            groups = n_groups or min(int(y_train.max()) + 1, 16)
            a, b, acc = _paper(x_train, y_train, x_test, y_test, order, config, groups, progress)
        else:
            config = DiscoveryConfig(epochs=epochs, seed=seed, orbit_pool=orbit_pool,
                                     method="learn" if method == "learn" else "estimate",
                                     learn=LearnConfig(restarts=restarts))
            result = discover(x_train, y_train, x_test, y_test, order, config, progress=progress)
            a, b, acc = result.generators, result.bases, result.test_accuracy
            n_groups = a.shape[1]
        rows.append({"dataset": name, "seed": seed, "method": method, "alignment": alignment(a, b, planted, order),
                     "accuracy": acc, "seconds": time.time() - start})
    return rows
