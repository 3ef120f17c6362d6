"""``lgn demo``: train the paper's classifier on 5,000 real MNIST digits, in a few minutes on a laptop CPU."""

from __future__ import annotations

import time

from lgn.cli import positive_int

# measured on a 2-core machine: test accuracy 0.965-0.972 after 6 epochs, 0.977 after 8, 2.5-4 s per epoch on
# an idle machine with torch's default threads, 2 there (lgn's default is now 1, docs/performance.md#threads);
# 8 gives a margin above 0.95 and stays well inside 5 minutes
DEMO_EPOCHS = 8


def register(sub) -> None:
    p = sub.add_parser("demo", help="train the paper's classifier on mnist5k (a few minutes on a CPU)",
                       description="Train the paper's default LGN classifier (L=4, K=5, p=4, k=6) with the "
                                   "paper's recipe on mnist5k (4,000 real MNIST digits, tested on 1,000) and "
                                   "say where the results are. Overwrites the run files in --out.")
    p.add_argument("--out", default="runs/demo", metavar="DIR", help="the run folder (default runs/demo)")
    p.add_argument("--epochs", type=positive_int, default=DEMO_EPOCHS, metavar="N",
                   help=f"passes over the training set (default {DEMO_EPOCHS})")
    p.add_argument("--device", default="cpu", metavar="cpu|cuda", help="where to train (default cpu)")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from lgn.train import train

    threads = torch.get_num_threads()
    print(f"Training the paper's LGN classifier on mnist5k for {args.epochs} epochs, on {threads} CPU "
          f"thread{'s' if threads > 1 else ''} (--threads) ...")
    start = time.perf_counter()
    result = train({"data": {"name": "mnist5k"}, "train": {"epochs": args.epochs, "device": args.device}},
                   args.out, force=True)
    last = result.metrics[-1]
    print(f"Done in {time.perf_counter() - start:.0f} s: test accuracy {last['test_acc']:.4f} "
          f"on the 1,000 held-out digits after {last['epoch']} epochs.")
    print(f"Results are in {result.out}/: config.json, metrics.jsonl (per epoch), model.safetensors + model.json "
          f"(load with lgn.runs.load_run('{result.out}'), which takes raw images).")
    print(f"Re-evaluate with: lgn eval {result.out}")
    return 0
