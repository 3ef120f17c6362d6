"""``lgn curves``: sample-efficiency curves, test accuracy against training size for every model of the grid."""

from __future__ import annotations

import argparse
import shlex

from lgn.cli.reproduce import add_run_flags, check_limits, data_and_device

DESCRIPTION = """\
Train every model of the paper-scale grid (lgn-free, lgn-cyclic, unconstrained, cnn) on
the first N training images of mnist5k (or full MNIST with --mnist-dir) and
Fashion-MNIST, N in --sizes (default 250, 500, 1000, 2000, 4000), on --seeds seeds, and
write DIR/CURVES.md (verdicts: where an LGN wins, ties or loses against each baseline,
with the seed spread; accuracy and parameter tables), DIR/curves.json and
DIR/curves.png (test accuracy against training size).

Every run takes --steps optimisation steps (default 256: the quick recipe's 8 epochs on
4,000 images at batch 128), so a smaller set trains for more epochs instead of being
under-trained; tested on the first 1,000 test images.

Re-running the same command skips finished runs and resumes a partial one; --max-runs N
stops after N runs and writes partial tables (the seeds not yet run are marked).

--found: the curves of a found group instead (docs/invariance.md). For each dataset
(--datasets; default digits-rot90, digits-perm4, digits-shift-y, mnist5k, fashion-mnist)
and seed, find the group of order 4 in the training images (the estimate of lgn
discover, never a test image), then train on N in 100, 250, 500, 1000, 4000 images: the
group MLP on the found group with orbit max-pooling (found), the same on the planted T
(oracle) or on a 90° rotation (rot90, natural data), a plain MLP of equal width (mlp),
unconstrained, cnn and lgn-free."""


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated training sizes like 250,500, got {text!r}")
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"training sizes must be positive, got {text!r}")
    return sizes


def _names(text: str) -> tuple[str, ...]:
    names = tuple(x for x in text.split(",") if x)
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated dataset names, got {text!r}")
    return names


def register(sub) -> None:
    p = sub.add_parser("curves", help="sample-efficiency curves of every model, into CURVES.md",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, metavar="DIR", help="where runs/, CURVES.md, curves.json and curves.png go")
    p.add_argument("--sizes", type=_sizes, metavar="N,N,...",
                   help="training sizes (default 250,500,1000,2000,4000; with --found 100,250,500,1000,4000)")
    p.add_argument("--found", action="store_true", help="the curves of a group lgn discover finds (see above)")
    p.add_argument("--datasets", type=_names, metavar="NAME,...",
                   help="--found only: datasets (default digits-rot90,digits-perm4,digits-shift-y,mnist5k,"
                        "fashion-mnist)")
    p.add_argument("--seeds", type=int, default=3, metavar="N", help="seeds 0..N-1 of every model (default 3)")
    p.add_argument("--steps", type=int, default=256, metavar="N",
                   help="optimisation steps of every run (default 256)")
    add_run_flags(p, "the partial tables (0: only the tables)", "mnist/ and fashion-mnist/")
    p.set_defaults(func=run)


def _command(args) -> str:
    parts = ["lgn", "curves", "--out", args.out] + (["--found"] if args.found else [])
    if args.sizes is not None:
        parts += ["--sizes", ",".join(map(str, args.sizes))]
    if args.datasets is not None:
        parts += ["--datasets", ",".join(args.datasets)]
    for flag, default in (("seeds", 3), ("steps", 256)):
        if getattr(args, flag) != default:
            parts += ["--" + flag, str(getattr(args, flag))]
    return shlex.join(parts + data_and_device(args, ("mnist_dir", "fashion_dir", "data_dir")))


def run(args) -> int:
    if args.found:
        return _found(args)
    if args.datasets is not None:
        raise ValueError("--datasets needs --found")
    from lgn.reproduce import data_plans
    from lgn.reproduce.curves import CurveSettings, curves

    settings = CurveSettings(sizes=args.sizes or (250, 500, 1000, 2000, 4000), seeds=args.seeds, steps=args.steps)
    check_limits(args)
    plans = [p for p in data_plans(mnist_dir=args.mnist_dir, fashion_dir=args.fashion_dir, data_root=args.data_dir)
             if p.dataset in ("mnist5k", "mnist", "fashion-mnist")]
    result = curves(args.out, plans=plans, settings=settings, device=args.device, force=args.force,
                    command=_command(args), limit=args.max_runs, jobs=args.jobs, threads=args.threads)
    for v in result["verdicts"]:
        print(f"{v['dataset']} n={v['n_train']:,}: {v['model']} vs {v['baseline']}: {v['outcome']} "
              f"({v['difference']:+.4f} ± {v['margin']:.4f})")
    return 0


def _found(args) -> int:
    import dataclasses

    from lgn.reproduce.found import FOUND, FoundSettings, found_curves

    if args.mnist_dir or args.fashion_dir or args.data_dir:
        raise ValueError("--found trains on mnist5k, Fashion-MNIST's default folder and the planted digits; "
                         "drop --mnist-dir/--fashion-dir/--data-dir")
    if args.jobs != 1:
        raise ValueError(f"--found trains one run at a time; drop --jobs {args.jobs}")
    settings = FoundSettings(**{**dataclasses.asdict(FOUND), "seeds": args.seeds, "steps": args.steps,
                                **({"sizes": args.sizes} if args.sizes else {}),
                                **({"datasets": args.datasets} if args.datasets else {})})
    check_limits(args)
    result = found_curves(args.out, settings=settings, device=args.device, force=args.force,
                          command=_command(args), limit=args.max_runs)
    for v in result["verdicts"]:
        print(f"{v['dataset']} n={v['n_train']:,}: {v['model']} vs {v['against']}: {v['outcome']} "
              f"({v['difference']:+.4f} ± {v['margin']:.4f})")
    return 0
