"""``lgn reproduce``: the paper's data × task grid with baselines and seeds, into RESULTS.md and results.json."""

from __future__ import annotations

import argparse
import shlex

DESCRIPTION = """\
Train the paper's grid and write DIR/RESULTS.md and DIR/results.json.

Data × task: MNIST (mnist5k, or full MNIST with --mnist-dir) and Fashion-MNIST for
classification and reconstruction, CIFAR-10 for both when --cifar-dir is given, and
16×16 grey natural-image patches for reconstruction. Models for each: lgn-free (the
paper's LGN), lgn-cyclic (exact cyclic groups), lgn-learned (each group picks a known
pixel permutation in training), unconstrained (same net, independent
filters), rot90 (fixed 90° rotation group) and cnn (plain CNN, K·p channels). Every run
is a run folder DIR/runs/<dataset>-<task>-<model>-s<seed>/; LGN runs are analysed
(analysis/analysis.json, groups.npz), and the distances between their learned groups
test whether the groups depend more on the task than on the data.

--scale paper (default): the paper's recipe, 100 epochs on all of mnist5k (4,000 / 1,000)
and Fashion-MNIST (60,000 / 10,000), full MNIST and CIFAR-10 when their folders are
given; models lgn-free, lgn-cyclic, lgn-learned, unconstrained and cnn on --seeds seeds
each (no rot90, no natural patches). Hours on a CPU: run it in pieces with --max-runs,
and --jobs N on many cores.

--scale quick, or --quick (under 20 minutes on a 2-core CPU): classification 8 epochs on
at most 4,000 training images (2,000 test), reconstruction 8 epochs on 4,000 (1,000 test);
every model, with the natural patches; LGN models on --seeds seeds, the baselines on one;
the planted-symmetry comparison on one seed.

--preprocessing authors: standardise, then ZCA-whiten with epsilon 1e-8 (the authors'
setting) instead of our per-channel standardisation alone.

Re-running the same command skips finished runs and resumes a partial one; other grid
settings for an existing DIR are refused unless --force. A grid stopped early (--max-runs,
or killed) still writes RESULTS.md: partial tables, the runs not yet run marked with the
time each is projected to need."""


def register(sub) -> None:
    p = sub.add_parser("reproduce", help="the paper's grid with baselines and seeds, into RESULTS.md",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, metavar="DIR", help="where runs/, results/, RESULTS.md and "
                                                               "results.json go")
    p.add_argument("--scale", choices=("quick", "paper"), default=None,
                   help="paper: 100 epochs on all the data (default); quick: the reduced grid (under 20 minutes on a "
                        "2-core CPU)")
    p.add_argument("--quick", action="store_true", help="the same as --scale quick")
    p.add_argument("--preprocessing", choices=("ours", "authors"), default="ours",
                   help="ours: per-channel standardisation (default); authors: then ZCA with epsilon 1e-8")
    p.add_argument("--seeds", type=int, default=3, metavar="N",
                   help="seeds 0..N-1 of every LGN model (default 3, the least for a spread)")
    p.add_argument("--cifar-dir", metavar="DIR", help="folder of python-batch CIFAR-10: adds CIFAR-10 to the grid")
    add_run_flags(p, "the partial RESULTS.md (0: only the report)", "mnist/, fashion-mnist/ and cifar10/ (or "
                                                                    "cifar-10-batches-py/)")
    p.set_defaults(func=run)


def add_run_flags(p, partial: str, sub_folders: str) -> None:
    """The flags ``lgn reproduce`` and ``lgn curves`` share: data folders, device, jobs, --max-runs, --force."""
    p.add_argument("--mnist-dir", metavar="DIR", help="folder of the four MNIST IDX files: full MNIST instead "
                                                      "of mnist5k")
    p.add_argument("--fashion-dir", metavar="DIR", help="folder of Fashion-MNIST (default: Debian's "
                                                        "/usr/share/datasets/fashion-mnist)")
    p.add_argument("--data-dir", metavar="DIR", help=f"a folder whose sub-folders {sub_folders} are used when "
                                                     f"present")
    p.add_argument("--device", default="cpu", metavar="cpu|cuda", help="where to train (default cpu)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="train N runs at once, each in a process of its own (default 1). For machines with "
                        "more cores than one run uses well; on 2 cores it measured no faster (docs/reproduce.md)")
    p.add_argument("--max-runs", type=int, metavar="N", help=f"train at most N runs in this invocation, then write "
                                                            f"{partial}")
    p.add_argument("--force", action="store_true", help="accept other settings for an existing DIR: runs whose "
                                                        "settings changed are retrained")


def scale_of(args) -> str:
    """The scale ``args`` select: --quick is --scale quick; the two may not disagree."""
    if args.quick and args.scale not in (None, "quick"):
        raise ValueError(f"--quick is --scale quick, but --scale {args.scale} was given too")
    return "quick" if args.quick else args.scale or "paper"


def _command(args, scale: str) -> str:
    """The canonical command line of ``args`` at ``scale``."""
    parts = ["lgn", "reproduce"] + (["--quick"] if scale == "quick" else ["--scale", scale]) + ["--out", args.out]
    if args.seeds != 3:
        parts += ["--seeds", str(args.seeds)]
    if args.preprocessing != "ours":
        parts += ["--preprocessing", args.preprocessing]
    return shlex.join(parts + data_and_device(args, ("mnist_dir", "fashion_dir", "cifar_dir", "data_dir")))


def data_and_device(args, flags: tuple[str, ...]) -> list[str]:
    """The folder ``flags`` given in ``args`` and a device other than the CPU, as command-line words."""
    parts = []
    for flag in flags:
        if getattr(args, flag):
            parts += ["--" + flag.replace("_", "-"), getattr(args, flag)]
    if args.device != "cpu":
        parts += ["--device", args.device]
    return parts


def check_limits(args) -> None:
    """Check ``--max-runs`` and ``--jobs``. ``--threads`` is every command's (:mod:`lgn.cli`); with ``--jobs``
    it is each worker's, and without it the workers share this machine's cores out."""
    if args.max_runs is not None and args.max_runs < 0:
        raise ValueError(f"--max-runs must be 0 or more, got {args.max_runs}")
    if args.jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {args.jobs}")


def run(args) -> int:
    import dataclasses

    from lgn.reproduce import (AUTHORS_PREPROCESSING, FULL_DISCOVERY, QUICK_DISCOVERY, SCALES, data_plans,
                               reproduce)

    if args.seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {args.seeds}")
    scale = scale_of(args)
    check_limits(args)
    recipe = SCALES[scale]
    if args.preprocessing == "authors":
        recipe = dataclasses.replace(recipe, data={**recipe.data, **AUTHORS_PREPROCESSING})
    plans = data_plans(mnist_dir=args.mnist_dir, fashion_dir=args.fashion_dir, cifar_dir=args.cifar_dir,
                       data_root=args.data_dir)
    results = reproduce(args.out, plans=plans, recipe=recipe, seeds=args.seeds, device=args.device, force=args.force,
                        discovery=QUICK_DISCOVERY if scale == "quick" else FULL_DISCOVERY,
                        command=_command(args, scale), full_command=_command(args, "paper"), limit=args.max_runs,
                        jobs=args.jobs, threads=args.threads)
    for t in results["targets"]:
        print(f"{t['verdict']}: {t['target']} ({t['measured']})")
    for c in results["claim"].values():
        print(c["verdict"])
    return 0
