"""Whole training epochs, the baseline against ours, at MNIST and CIFAR shape, epochs interleaved.

``python -m benchmarks.epochs [--epochs N] [--runs R] [--shapes mnist,cifar]`` trains
both models from the same weights on the same standardised images, in the same
order, with the recipe of ``lgn train`` (batch 128, Adam, clipping,
re-projection), and prints each epoch's train seconds (the measure ``lgn train``
writes as ``train_seconds``). Baseline and ours take turns epoch by epoch, the
order flipped each epoch, so that load from other processes hits both. Each of
the R runs starts from fresh models.

- ``mnist``: the 4,000 training images of mnist5k (1×28×28).
- ``cifar``: 4,000 random 32×32 colour crops of scikit-learn's two sample
  photographs (3×32×32, :func:`lgn.data.patches.natural_patches`; no download),
  with random labels of 10 classes: a step's cost does not depend on what the
  images show.

The speedup is the ratio of the median epochs; the per-round range is the least
and greatest ratio of the two epochs of one round.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from lgn.bench.measure import build_pair, train_step
from lgn.data import fit_preprocessing, get_dataset
from lgn.data.patches import natural_patches
from lgn.train.loop import epoch_order
from lgn.memory import keep_freed_memory

BATCH = 128
SHAPES = ("mnist", "cifar")
N_TRAIN = 4000  # mnist5k's training images; the CIFAR-shaped set is as large


def training_images(shape: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardised training images ``(N, C, H, W)`` and labels ``(N,)`` of ``shape``."""
    if shape == "mnist":
        data = get_dataset("mnist5k", seed=seed)
        x, y = data.x_train, data.y_train
    elif shape == "cifar":
        x = torch.from_numpy(natural_patches(32, N_TRAIN, seed=seed, channels=3))
        y = torch.from_numpy(np.random.default_rng(seed).integers(10, size=N_TRAIN))
    else:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    return fit_preprocessing(x)(x), y


def epoch_seconds(shape: str = "mnist", epochs: int = 3, seed: int = 0) -> dict[str, list[float]]:
    """Train seconds of each epoch of the baseline and ours, fresh models, epochs interleaved."""
    keep_freed_memory()  # as lgn train does
    x, y = training_images(shape, seed)
    base, ours = build_pair(x.shape[1], x.shape[-1], torch.device("cpu"), seed=seed)
    models = {"baseline": base, "ours": ours}
    optimizers = {name: torch.optim.Adam(m.parameters(), lr=0.01) for name, m in models.items()}
    seconds = {name: [] for name in models}
    for epoch in range(epochs):
        order = epoch_order(len(x), seed, epoch)
        for name in (list(models) if epoch % 2 == 0 else list(models)[::-1]):
            start = time.perf_counter()
            for idx in order.split(BATCH):
                train_step(models[name], optimizers[name], x[idx], y[idx])
            seconds[name].append(time.perf_counter() - start)
    return seconds


def summary(seconds: dict[str, list[float]]) -> dict:
    """The median epochs, their ratio and the range of the per-epoch ratios."""
    ratios = [b / o for b, o in zip(seconds["baseline"], seconds["ours"])]
    median = {name: statistics.median(v) for name, v in seconds.items()}
    return {"median_seconds": median, "speedup": median["baseline"] / median["ours"],
            "speedup_range": [min(ratios), max(ratios)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3)")
    parser.add_argument("--runs", type=int, default=1, help="runs from fresh models (default 1)")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="mnist, cifar or both (default mnist,cifar)")
    args = parser.parse_args()
    for shape in args.shapes.split(","):
        every = {"baseline": [], "ours": []}
        for run in range(args.runs):
            seconds = epoch_seconds(shape, args.epochs)
            for name, values in seconds.items():
                every[name] += values
                print(f"{shape} run {run + 1} {name:9s} train_seconds per epoch: "
                      + ", ".join(f"{v:.2f}" for v in values), flush=True)
        s = summary(every)
        print(f"{shape}: median epoch baseline {s['median_seconds']['baseline']:.2f} s, "
              f"ours {s['median_seconds']['ours']:.2f} s; speedup {s['speedup']:.2f} "
              f"(per-round range {s['speedup_range'][0]:.2f}-{s['speedup_range'][1]:.2f}, "
              f"{len(every['ours'])} rounds)", flush=True)


if __name__ == "__main__":
    main()
