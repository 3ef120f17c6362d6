"""Whole training epochs on mnist5k: the baseline against ours, epochs interleaved.

``python -m benchmarks.epochs [--epochs N]`` trains both models from the same
weights on the same standardised mnist5k images, in the same order, with the
recipe of ``lgn train`` (batch 128, Adam, clipping, re-projection), and prints
each epoch's train seconds (the measure ``lgn train`` writes as
``train_seconds``): baseline epoch 1, ours epoch 1, baseline epoch 2, …
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lgn.bench.measure import build_pair, train_step
from lgn.data import fit_preprocessing, get_dataset
from lgn.train.loop import epoch_order
from lgn.train.memory import keep_freed_memory

BATCH = 128


def epoch_seconds(epochs: int = 3, seed: int = 0) -> dict[str, list[float]]:
    keep_freed_memory()  # as lgn train does
    data = get_dataset("mnist5k", seed=seed)
    x = fit_preprocessing(data.x_train)(data.x_train)
    y = data.y_train
    base, ours = build_pair(x.shape[1], x.shape[-1], torch.device("cpu"), seed=seed)
    models = {"baseline": base, "ours": ours}
    optimizers = {name: torch.optim.Adam(m.parameters(), lr=0.01) for name, m in models.items()}
    seconds = {name: [] for name in models}
    for epoch in range(epochs):
        order = epoch_order(len(x), seed, epoch)
        for name, model in models.items():
            start = time.perf_counter()
            for idx in order.split(BATCH):
                train_step(model, optimizers[name], x[idx], y[idx])
            seconds[name].append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    seconds = epoch_seconds(args.epochs)
    for name, values in seconds.items():
        print(f"{name:9s} train_seconds per epoch: " + ", ".join(f"{v:.2f}" for v in values))
    ratio = statistics.median(seconds["baseline"]) / statistics.median(seconds["ours"])
    print(f"speedup (median epoch): {ratio:.2f}")


if __name__ == "__main__":
    main()
