"""Natural data under ``--method learn``: which group does the distribution loss find, and does it carry the code?

The LGN's generators act on its k×k filters (6×6 in the grid), so on natural data the group is learned where
those filters live: on 6×6 crops of the training images. For each natural dataset of the grid (mnist5k,
Fashion-MNIST, the photographs' patches) and seed:

1. ``learn``: draw 20,000 random 6×6 crops of the training images, standardise them with one scalar mean
   and scale (as ``lgn discover``), keep the half with the largest spread (the blank background of digits
   and clothes is symmetric under every map and says nothing), and learn a generator of order 4 from them
   without labels (:func:`lgn.discovery.learn_generator`, the shipped recipe: annealed MMD, 8 Haar-random
   starts × 500 steps, the pick by loss). Its nearest library operation and similarity on the crops come
   from :func:`lgn.discovery.judge`; also the pooled MMD at the median bandwidth of the learned map, of
   rot90 and of a random generator of order 4 on fixed held-out crops (lower: more symmetric).
2. ``train``: the grid's quick recipe (:data:`lgn.reproduce.QUICK`: 8 epochs, 4,000 training images) with
   every group's generator fixed to the learned map (``generator="file:…"``), on each task of the dataset;
   the test metric beside ``unconstrained``'s from docs/discovery.md, and the share of the code's energy on
   each orbit power (:func:`lgn.analysis.energy.run_code_energy`).

    python -m benchmarks.learn_natural OUT [DATASETS [SEEDS]]
    python -m benchmarks.learn_natural results/discovery-natural mnist5k,fashion-mnist,patches 0
    python -m benchmarks.learn_natural table results/discovery-natural

Rows go to OUT/natural.jsonl, one per (dataset, seed) for the generator and one per (dataset, task, seed)
for a trained run; a finished row is skipped when the command runs again. One torch thread.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lgn.analysis.energy import run_code_energy
from lgn.data import get_dataset
from lgn.discovery import judge
from lgn.discovery.fit import standardise
from lgn.discovery.learn import LearnConfig, learn_generator
from lgn.discovery.losses import median_distance, mmd2
from lgn.discovery.score import random_finite_order
from lgn.groups import operators
from lgn.reproduce.grid import PATCH_SIZE, QUICK
from lgn.train import train

K, ORDER, CROPS = 6, 4, 20000
DATA = {"mnist5k": ({"name": "mnist5k"}, ("classify", "reconstruct")),
        "fashion-mnist": ({"name": "fashion-mnist"}, ("classify", "reconstruct")),
        "patches": ({"name": "patches", "options": {"kernel_size": PATCH_SIZE, "channels": 1, "n_train": 10000,
                                                     "n_test": 2000}}, ("reconstruct",))}


def crops(dataset: str, seed: int) -> torch.Tensor:
    """(CROPS // 2, 36) float64: the busier half of CROPS random 6×6 crops of the first 4,000 training images."""
    spec, _ = DATA[dataset]
    data = get_dataset(spec["name"], seed=seed, **spec.get("options", {}))
    x = data.x_train[:4000, :1].double()  # (N, 1, H, W): the grid's first 4,000; one channel
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(x), CROPS)
    r = rng.integers(0, x.shape[-2] - K + 1, CROPS)
    c = rng.integers(0, x.shape[-1] - K + 1, CROPS)
    patches = torch.stack([x[a, 0, b:b + K, d:d + K] for a, b, d in zip(i, r, c)]).reshape(CROPS, K * K)
    patches, = standardise(patches)
    spread = patches.std(dim=1)
    return patches[spread >= spread.median()]


def pooled_mmd(a: np.ndarray, x: torch.Tensor) -> float:
    """Mean over powers 1..3 of the unbiased MMD² between two halves of ``x``, one moved by A^i; median bandwidth."""
    half = len(x) // 2
    u, v = x[:half], x[half:2 * half]
    sigma = median_distance(u)
    a = torch.from_numpy(a)
    return float(np.mean([mmd2(u, v @ torch.linalg.matrix_power(a, i).T, sigma).item() for i in range(1, ORDER)]))


def learn_row(dataset: str, seed: int, out: Path) -> dict:
    x = crops(dataset, seed)
    train_x, held = x[:-2000], x[-2000:]
    start = time.perf_counter()
    estimate, starts = learn_generator(train_x, None, ORDER, LearnConfig(), seed=seed)
    seconds = time.perf_counter() - start
    verdict = judge(estimate, K, 1, seed=seed)
    path = out / "generators" / f"{dataset}-s{seed}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, estimate.generator)
    rng = np.random.default_rng(seed)
    return {"kind": "generator", "dataset": dataset, "seed": seed, "crops": len(train_x), "file": str(path),
            "nearest_operation": verdict.nearest_operation, "operation_similarity": verdict.operation_similarity,
            "order": verdict.order, "verdict": verdict.text().split("\n")[0],
            "mmd": {"learned": pooled_mmd(estimate.generator, held),
                    "rot90": pooled_mmd(operators.rotation(K, 90), held),
                    "random": pooled_mmd(random_finite_order(K * K, ORDER, rng), held)},
            "start_losses": [s["loss"] for s in starts], "seconds": round(seconds, 1)}


def train_row(dataset: str, task: str, seed: int, generator: str, out: Path) -> dict:
    spec, _ = DATA[dataset]
    data = dict(spec)
    data["train_subset"] = QUICK.train_subset[task]
    if dataset != "patches" or QUICK.test_subset[task] < 2000:
        data["test_subset"] = QUICK.test_subset[task]
    settings = {"model": {"generator": f"file:{generator}", "task": task},
                "train": {"epochs": QUICK.epochs[task], "seed": seed}, "data": data}
    run = out / "runs" / f"{dataset}-{task}-s{seed}"
    start = time.perf_counter()
    result = train(settings, run, force=True)
    last = result.metrics[-1]
    metric = "test_acc" if task == "classify" else "test_psnr"
    return {"kind": "run", "dataset": dataset, "task": task, "seed": seed, "metric_name": metric,
            "metric": last[metric], "code_energy": run_code_energy(run)["fractions"],
            "seconds": round(time.perf_counter() - start, 1)}


def main(out: Path, datasets: list[str], seeds: list[int]) -> None:
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    rows_file = out / "natural.jsonl"
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()] if rows_file.is_file() else []

    def done(**key) -> dict | None:
        return next((r for r in rows if all(r.get(k) == v for k, v in key.items())), None)

    def append(row: dict) -> None:
        rows.append(row)
        with rows_file.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps({k: v for k, v in row.items() if k != "start_losses"}), flush=True)

    for seed in seeds:
        for dataset in datasets:
            gen = done(kind="generator", dataset=dataset, seed=seed) or learn_row(dataset, seed, out)
            if gen not in rows:
                append(gen)
            for task in DATA[dataset][1]:
                if not done(kind="run", dataset=dataset, task=task, seed=seed):
                    append(train_row(dataset, task, seed, gen["file"], out))


def table(out: Path) -> str:
    """The Markdown table of OUT/natural.jsonl: one row per (dataset, task) for the runs, seeds side by side."""
    rows = [json.loads(line) for line in (out / "natural.jsonl").read_text().splitlines()]
    gens = {(r["dataset"], r["seed"]): r for r in rows if r["kind"] == "generator"}
    lines = ["| cell | seed | nearest operation (similarity) | MMD²: learned / rot90 / random | quality | "
             "code energy % (A⁰ / A¹ / A² / A³) |", "|---|---|---|---|---|---|"]
    for r in sorted((r for r in rows if r["kind"] == "run"), key=lambda r: (r["dataset"], r["task"], r["seed"])):
        g = gens[r["dataset"], r["seed"]]
        m = g["mmd"]
        quality = f"{r['metric']:.4f}" if r["metric_name"] == "test_acc" else f"{r['metric']:.2f} dB"
        lines.append(f"| {r['dataset']} {r['task']} | {r['seed']} | {g['nearest_operation']} "
                     f"({g['operation_similarity']:.3f}) | {m['learned']:.4f} / {m['rot90']:.4f} / {m['random']:.4f} | "
                     f"{quality} | {' / '.join(f'{100 * e:.0f}' for e in r['code_energy'])} |")
    return "\n".join(lines)


if __name__ == "__main__" and sys.argv[1] == "table":
    print(table(Path(sys.argv[2])))
elif __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2].split(",") if len(sys.argv) > 2 else list(DATA),
         [int(s) for s in sys.argv[3].split(",")] if len(sys.argv) > 3 else [0])
