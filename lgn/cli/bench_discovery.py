"""``lgn bench-discovery``: recovery of every planted group, 3 seeds, discovery recipe vs the paper's recipe."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("bench-discovery", help="score planted-symmetry recovery against the paper's recipe",
                       description="For every planted dataset and seed: run the discovery recipe and the "
                                   "paper's recipe (free generators, unit norm, auxiliary inverse) on the same "
                                   "architecture and data; report the alignment with the planted group and the "
                                   "test accuracy, mean ± standard deviation over seeds.")
    p.add_argument("--datasets", default="shift-x,rot90,flip,perm4",
                   help="comma-separated planted names (also digits-rot90, digits-shift-y, digits-perm4)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (data, clustering, training)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--sigma", type=float, default=0.1, help="noise level of the planted data")
    p.add_argument("--n-train", type=int, default=6000)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--methods", default="discover,paper",
                   help="comma-separated recipes: discover (the estimate), learn (gradient descent from random "
                        "starts), paper (the paper's recipe)")
    p.add_argument("--restarts", type=int, default=8, help="random starts of the learn recipe")
    p.add_argument("--orbit-pool", choices=("max", "mean"),
                   help="every recipe's LGN reads each orbit pooled (max or mean): invariant to its group")
    p.add_argument("--out", metavar="FILE.json", help="also write every run's numbers here")
    p.set_defaults(func=run)


def _csv(text: str, cast=str) -> list:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError(f"expected a comma-separated list, got {text!r}")
    return [cast(t) for t in items]


def summarise(rows: list[dict]) -> str:
    """The table: one line per dataset and method, mean ± std (and min) of alignment and accuracy."""
    import numpy as np

    keys = list(dict.fromkeys((r["dataset"], r["method"]) for r in rows))
    lines = [f"{'dataset':<14} {'method':<9} {'alignment mean ± std (min)':<28} "
             f"{'test accuracy mean ± std':<26} seeds",
             "-" * 86]
    for ds, method in keys:
        sel = [r for r in rows if r["dataset"] == ds and r["method"] == method]
        al = np.array([r["alignment"] for r in sel])
        acc = np.array([r["accuracy"] for r in sel])
        lines.append(f"{ds:<14} {method:<9} {al.mean():6.3f} ± {al.std():5.3f} ({al.min():6.3f})      "
                     f"{acc.mean():6.4f} ± {acc.std():6.4f}        {len(sel)}")
    return "\n".join(lines)


def run(args) -> int:
    from lgn.cli import stage_lines

    names, seeds = _csv(args.datasets), _csv(args.seeds, int)
    from lgn.data.planted import PLANTED_NAMES
    from lgn.discovery.benchmark import bench_one
    from lgn.files import write_json

    unknown = [n for n in names if n not in PLANTED_NAMES]
    if unknown:
        raise ValueError(f"unknown planted dataset(s) {', '.join(unknown)}; expected {', '.join(PLANTED_NAMES)}")
    methods = tuple(_csv(args.methods))
    stage = stage_lines("bench-discovery")
    rows = []
    for name in names:
        for seed in seeds:
            rows += bench_one(name, seed, epochs=args.epochs, sigma=args.sigma, n_train=args.n_train,
                              n_test=args.n_test, methods=methods, restarts=args.restarts,
                              orbit_pool=args.orbit_pool,
                              progress=lambda text: stage(f"{name} seed {seed}: {text}"))
            if args.out:  # after every dataset and seed, so a long benchmark leaves what it finished
                write_json({"args": {k: v for k, v in vars(args).items() if k != "func"}, "runs": rows}, args.out)
    print(summarise(rows))
    if args.out:
        print(f"wrote {args.out}")
    return 0
