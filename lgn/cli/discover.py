"""``lgn discover``: find the cyclic group a dataset is symmetric under, train an LGN on it, say what it is."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("discover", help="recover the symmetry group of a dataset with an LGN",
                       description="Estimate a cyclic group of the given size from the data (no prior on "
                                   "which group), train an LGN whose orbits use it, and write DIR/groups.npz, "
                                   "DIR/analysis.json and a verdict (DIR/verdict.txt).")
    p.add_argument("--data", required=True, metavar="NAME",
                   help="a dataset name: planted:shift-x|rot90|flip|perm4, npz:PATH, ...")
    p.add_argument("--group-size", type=int, required=True, metavar="P", help="the group order p to look for")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a dataset option, e.g. --set sigma=0.3 for planted data (repeatable)")
    p.add_argument("--data-dir", metavar="DIR", help="folder of a file-based dataset")
    p.add_argument("--seed", type=int, default=0, help="seed of data generation, clustering and training")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--layers", type=int, default=4, help="unfolded layers L")
    p.add_argument("--n-groups", type=int, help="base filters K (default: one per class, at most 16)")
    p.add_argument("--anchor-weight", type=float, default=1.0,
                   help="weight of the term keeping layer-0 base filters near the data (default 1)")
    p.add_argument("--clusters", type=int, help="unlabelled data only: number of clusters, a multiple of P")
    p.add_argument("--method", choices=("estimate", "learn"), default="estimate",
                   help="estimate: read the group off the data's clusters (default); learn: train the generator "
                        "by gradient descent from random starts (labelled data only; see docs/discovery.md)")
    p.add_argument("--restarts", type=int, default=8, help="--method learn: random starts of the generator")
    p.add_argument("--figures", action="store_true", help="also draw the analysis figures")
    p.set_defaults(func=run)


def parse_options(items: list[str]) -> dict:
    """``['sigma=0.3', 'n_classes=4']`` → ``{'sigma': 0.3, 'n_classes': 4}`` (ints, floats, else strings)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        for cast in (int, float):
            try:
                out[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            out[key] = value
    return out


def planted_truth(data: str, kernel_size: int, options: dict):
    """``(T, order)`` when ``data`` is a planted set, else None."""
    if not data.startswith("planted:"):
        return None
    from lgn.data.planted import planted_generator

    return planted_generator(data.split(":", 1)[1], kernel_size, perm_seed=options.get("perm_seed", 0))


def run(args) -> int:
    from tqdm import tqdm

    from lgn.analysis import Groups, analyze_groups, save_groups
    from lgn.data import get_dataset
    from lgn.discovery import DiscoveryConfig, LearnConfig, alignment, alignment_floor, discover, judge
    from lgn.files import write_json
    options = parse_options(args.set)
    data = get_dataset(args.data, data_dir=args.data_dir, seed=args.seed, **options)
    config = DiscoveryConfig(n_layers=args.layers, n_groups=args.n_groups, epochs=args.epochs,
                             anchor_weight=args.anchor_weight, n_clusters=args.clusters, seed=args.seed,
                             method=args.method, learn=LearnConfig(restarts=args.restarts))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    starts = config.learn.restarts if config.method == "learn" else 0
    bar = tqdm(total=(config.epochs + starts) if data.labelled else 0, desc=f"discover ({config.method})",
               unit="step", leave=False, disable=None)  # None: drawn on a terminal only, as lgn train's
    result = discover(data.x_train, data.y_train, data.x_test, data.y_test, args.group_size, config,
                      progress=lambda: bar.update())
    bar.close()
    k, channels = data.x_train.shape[-1], data.x_train.shape[1]
    verdict = judge(result.estimate, k, channels)
    groups = Groups(A=result.generators, B=result.bases, kernel_size=k, channels=channels,
                    order=args.group_size, source=f"lgn discover --data {args.data}")
    save_groups(groups, out / "groups.npz")
    analysis = analyze_groups(groups)
    analysis["figures"] = {}
    if args.figures:
        from lgn.analysis.figures import analysis_figures

        analysis["figures"] = analysis_figures(groups, out)
    summary = {"data": args.data, "options": options, "seed": args.seed, "config": dataclasses.asdict(config),
               "verdict": verdict.to_dict(), "test_accuracy": result.test_accuracy,
               "seconds": round(time.time() - start, 1)}
    truth = planted_truth(args.data, k, options)
    if truth is not None:
        summary["planted_alignment"] = alignment(result.generators, result.bases, *truth)
        summary["alignment_floor"] = alignment_floor(result.generators, result.bases, *truth, seed=args.seed)
    analysis["discovery"] = summary
    write_json(analysis, out / "analysis.json")
    lines = [verdict.text()]
    if result.test_accuracy is not None:
        lines.append(f"test accuracy of the discovery LGN: {result.test_accuracy:.4f}")
    if "planted_alignment" in summary:
        floor = summary["alignment_floor"]
        lines.append(f"alignment with the planted group (recovery score): {summary['planted_alignment']:.3f} "
                     f"(floor: random generator {floor['random_generator']:.3f}, "
                     f"unrelated filters {floor['unrelated_filters']:.3f})")
    text = "\n".join(lines)
    (out / "verdict.txt").write_text(text + "\n")
    print(text)
    print(f"wrote {out / 'groups.npz'}, {out / 'analysis.json'}, {out / 'verdict.txt'}")
    return 0
