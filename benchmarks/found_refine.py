"""Does refining a found map by the distribution loss bring the found-group network nearer the oracle?

results/found-groups/RESULTS.md measures a gap of 0.02–0.06 between the network built on the
group that ``lgn discover`` estimates (``found``) and the one built on the planted map
(``oracle``), and traces it to the map: right on the class centres, wrong on single images.
This trial refines the estimated map with ``lgn discover --method learn --start estimate``'s
search (:func:`lgn.discovery.learn_generator`, 64 images per class and side) and trains the
same orbit-pooled group MLP as ``lgn curves --found`` on the estimated map, the refined map
and T, at one training size:

    python -m benchmarks.found_refine DATASET SEED N_TRAIN OUT
    python -m benchmarks.found_refine digits-rot90 0 250 /tmp/refine

It prints, per map, ‖A^s·x − T·x‖ / ‖x‖ on the first 1,000 standardised test images (s the
power of A nearest T) and the test accuracy. The estimated map and the training settings are
those of ``lgn curves --found``, so its accuracy equals that grid's ``found`` run.
One torch thread; seconds to a few minutes per map.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from lgn.data import get_dataset
from lgn.data.planted import planted_generator
from lgn.discovery import estimate_group
from lgn.discovery.fit import standardise
from lgn.discovery.learn import LearnConfig, learn_generator
from lgn.reproduce.curves import curve_epochs
from lgn.reproduce.found import FOUND
from lgn.train import train


def image_distance(a: np.ndarray, t: np.ndarray, order: int, x: np.ndarray) -> float:
    """min over s ∈ {1, order − 1} of ‖x·(A^s)ᵀ − x·Tᵀ‖_F / ‖x‖_F for images ``x`` ``(N, n)``."""
    return min(float(np.linalg.norm(x @ np.linalg.matrix_power(a, s).T - x @ t.T) / np.linalg.norm(x))
               for s in (1, order - 1))


def main(dataset: str, seed: int, n_train: int, out: Path) -> None:
    torch.set_num_threads(1)
    data = get_dataset(f"planted:{dataset}", seed=seed)
    x, x_test = standardise(data.subset(4000, None).x_train, data.x_test)
    x = x.reshape(len(x), -1).double()
    x_test = x_test.reshape(len(x_test), -1).double().numpy()[:1000]
    t, order = planted_generator(dataset, 16)
    estimate = estimate_group(x.numpy(), data.y_train[:4000].numpy(), order, seed=seed)
    refined, _ = learn_generator(x, data.y_train[:4000], order, LearnConfig(sample=64, start="estimate"), seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    for name, a in (("estimate", estimate.generator), ("refined", refined.generator), ("oracle", t)):
        path = out / f"{dataset}-s{seed}-{name}.npy"
        np.save(path, a)
        settings = {"model": {"architecture": "mlp", "n_groups": FOUND.width, "group_size": order, "action": "joint",
                              "generator": f"file:{path}", "orbit_pool": "max", "task": "classify",
                              "image_size": 16},
                    "train": {"epochs": curve_epochs(n_train, FOUND.steps, FOUND.batch_size), "seed": seed},
                    "data": {"name": f"planted:{dataset}", "train_subset": n_train, "test_subset": FOUND.test_subset}}
        result = train(settings, out / f"{dataset}-s{seed}-{name}-n{n_train}")
        print(f"{dataset} seed {seed} n={n_train} {name}: distance to T on test images "
              f"{image_distance(a, t, order, x_test):.3f}, test_acc {result.metrics[-1]['test_acc']:.3f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
