"""``lgn reproduce``: the paper's data × task grid with baselines and seeds, into RESULTS.md and results.json."""

from __future__ import annotations

import argparse
import shlex

DESCRIPTION = """\
Train the paper's grid and write DIR/RESULTS.md and DIR/results.json.

Data × task: MNIST (mnist5k, or full MNIST with --mnist-dir) and Fashion-MNIST for
classification and reconstruction, CIFAR-10 for both when --cifar-dir is given, and
16×16 grey natural-image patches for reconstruction. Models for each: lgn-free (the
paper's LGN), lgn-cyclic (exact cyclic groups), unconstrained (same net, independent
filters), rot90 (fixed 90° rotation group) and cnn (plain CNN, K·p channels). Every run
is a run folder DIR/runs/<dataset>-<task>-<model>-s<seed>/; LGN runs are analysed
(analysis/analysis.json, groups.npz), and the distances between their learned groups
test whether the groups depend more on the task than on the data.

Full grid (default): the paper's recipe, 100 epochs on all the data, every model on
--seeds seeds; far beyond a CPU (RESULTS.md states the estimated hours).

--quick (under 20 minutes on a 2-core CPU): classification 8 epochs on at most 4,000
training images (2,000 test), reconstruction 8 epochs on 4,000 (1,000 test); LGN models
on --seeds seeds, the baselines on one; the planted-symmetry comparison on one seed.

Re-running the same command skips finished runs and resumes a partial one; other grid
settings for an existing DIR are refused unless --force."""


def register(sub) -> None:
    p = sub.add_parser("reproduce", help="the paper's grid with baselines and seeds, into RESULTS.md",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, metavar="DIR", help="where runs/, results/, RESULTS.md and "
                                                               "results.json go")
    p.add_argument("--quick", action="store_true", help="the reduced grid (under 20 minutes on a 2-core CPU)")
    p.add_argument("--seeds", type=int, default=3, metavar="N",
                   help="seeds 0..N-1 of every LGN model (default 3, the least for a spread)")
    p.add_argument("--mnist-dir", metavar="DIR", help="folder of the four MNIST IDX files: full MNIST instead "
                                                      "of mnist5k")
    p.add_argument("--fashion-dir", metavar="DIR", help="folder of Fashion-MNIST (default: Debian's "
                                                        "/usr/share/datasets/fashion-mnist)")
    p.add_argument("--cifar-dir", metavar="DIR", help="folder of python-batch CIFAR-10: adds CIFAR-10 to the grid")
    p.add_argument("--data-dir", metavar="DIR", help="a folder whose sub-folders mnist/, fashion-mnist/ and "
                                                     "cifar10/ (or cifar-10-batches-py/) are used when present")
    p.add_argument("--device", default="cpu", metavar="cpu|cuda", help="where to train (default cpu)")
    p.add_argument("--force", action="store_true", help="accept other grid settings for an existing DIR: "
                                                        "runs whose settings changed are retrained")
    p.set_defaults(func=run)


def _command(args, quick: bool) -> str:
    """The canonical command line of ``args`` (with or without --quick)."""
    parts = ["lgn", "reproduce"] + (["--quick"] if quick else []) + ["--out", args.out]
    if args.seeds != 3:
        parts += ["--seeds", str(args.seeds)]
    for flag in ("mnist_dir", "fashion_dir", "cifar_dir", "data_dir"):
        if getattr(args, flag):
            parts += ["--" + flag.replace("_", "-"), getattr(args, flag)]
    if args.device != "cpu":
        parts += ["--device", args.device]
    return shlex.join(parts)


def run(args) -> int:
    from lgn.reproduce import FULL, FULL_DISCOVERY, QUICK, QUICK_DISCOVERY, data_plans, reproduce

    if args.seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {args.seeds}")
    plans = data_plans(mnist_dir=args.mnist_dir, fashion_dir=args.fashion_dir, cifar_dir=args.cifar_dir,
                       data_root=args.data_dir)
    results = reproduce(args.out, plans=plans, recipe=QUICK if args.quick else FULL, seeds=args.seeds,
                        device=args.device, force=args.force,
                        discovery=QUICK_DISCOVERY if args.quick else FULL_DISCOVERY,
                        command=_command(args, args.quick), full_command=_command(args, False))
    for t in results["targets"]:
        print(f"{t['verdict']}: {t['target']} ({t['measured']})")
    for c in results["claim"].values():
        print(c["verdict"])
    return 0
