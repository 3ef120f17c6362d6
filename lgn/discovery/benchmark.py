"""The planted-symmetry benchmark of one dataset and seed: the discovery recipe against the paper's recipe.

Shared by ``lgn bench-discovery`` and ``lgn reproduce``.
"""

from __future__ import annotations

import time

import torch

from lgn.discovery.fit import (DiscoveryConfig, discover, model_groups, paper_recipe_model, standardise,
                               train_classifier)
from lgn.discovery.score import alignment

__all__ = ["bench_one"]


def bench_one(name: str, seed: int, *, epochs: int, sigma: float, n_train: int, n_test: int,
              baseline: bool, progress=None) -> list[dict]:
    """Both recipes on one planted set: a list of ``{dataset, seed, method, alignment, accuracy, seconds}``."""
    from lgn.data.planted import planted_dataset

    x_train, y_train, x_test, y_test, planted, order = planted_dataset(
        name, sigma=sigma, n_train=n_train, n_test=n_test, seed=seed)
    config = DiscoveryConfig(epochs=epochs, seed=seed)
    rows = []
    start = time.time()
    result = discover(x_train, y_train, x_test, y_test, order, config, progress=progress)
    rows.append({"dataset": name, "seed": seed, "method": "discover",
                 "alignment": alignment(result.generators, result.bases, planted, order),
                 "accuracy": result.test_accuracy, "seconds": time.time() - start})
    if baseline:
        start = time.time()
        torch.manual_seed(seed)
        n_groups = result.generators.shape[1]
        model = paper_recipe_model(1, x_train.shape[-1], order, int(y_train.max()) + 1, n_groups, config.n_layers)
        xs = standardise(x_train, x_test)
        acc, _ = train_classifier(model, xs[0], y_train, xs[1], y_test, config, progress=progress)
        a, b = model_groups(model)
        rows.append({"dataset": name, "seed": seed, "method": "paper",
                     "alignment": alignment(a, b, planted, order), "accuracy": acc,
                     "seconds": time.time() - start})
    return rows
