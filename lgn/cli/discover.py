"""``lgn discover``: find the cyclic group a dataset is symmetric under, train an LGN on it, say what it is."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from lgn.cli import UsageError, add_alias, positive_int, stage_lines


def register(sub) -> None:
    p = sub.add_parser("discover", help="recover the symmetry group of a dataset with an LGN",
                       description="Estimate a cyclic group of the given size from the data (no prior on "
                                   "which group), train an LGN whose orbits use it, and write DIR/groups.npz, "
                                   "DIR/analysis.json and a verdict (DIR/verdict.txt). Each stage prints a "
                                   "line to stderr.")
    dataset = p.add_mutually_exclusive_group(required=True)  # --dataset, or its old spelling --data
    dataset.add_argument("--dataset", metavar="NAME",
                         help="a dataset name, as for lgn train: planted:shift-x|rot90|flip|perm4, npz:PATH, ...")
    add_alias(dataset, "--data", "--dataset")
    p.add_argument("--group-size", type=positive_int, required=True, metavar="P",
                   help="the group order p to look for")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created once the work is done)")
    p.add_argument("--set", action="append", default=[], metavar="data.options.KEY=VALUE",
                   help="a dataset option, as for lgn train, e.g. --set data.options.sigma=0.3 for planted "
                        "data (repeatable; values in TOML syntax)")
    p.add_argument("--data-dir", metavar="DIR", help="folder of a file-based dataset")
    p.add_argument("--seed", type=int, default=0, help="seed of data generation, clustering and training")
    p.add_argument("--epochs", type=positive_int, default=10, metavar="N")
    p.add_argument("--layers", type=positive_int, default=4, metavar="L", help="unfolded layers L")
    p.add_argument("--n-groups", type=positive_int, metavar="K",
                   help="base filters K (default: one per class, at most 16)")
    p.add_argument("--anchor-weight", type=float, default=1.0,
                   help="weight of the term keeping layer-0 base filters near the data (default 1)")
    p.add_argument("--clusters", type=positive_int,
                   help="unlabelled data, --method estimate (or learn with --start estimate): number of clusters, "
                        "a multiple of P")
    p.add_argument("--method", choices=("estimate", "learn", "episodic"), default="estimate",
                   help="estimate: read the group off the data's clusters (default); learn: train the generator "
                        "by gradient descent on a distribution loss, labelled or not; episodic: train it on "
                        "few-shot episodes with an orbit-pooled readout, labelled only (see docs/discovery.md)")
    p.add_argument("--restarts", type=positive_int, default=8, metavar="N",
                   help="--method learn or episodic: random starts of the generator")
    p.add_argument("--steps", type=positive_int, default=500, metavar="N",
                   help="--method learn or episodic: Adam steps of the generator")
    p.add_argument("--loss", choices=("mmd", "sinkhorn"), default="mmd",
                   help="--method learn: the distribution loss (default mmd)")
    p.add_argument("--start", choices=("random", "coarse", "estimate", "episodic"), default="random",
                   help="--method learn: random starts (default); coarse: random starts on 2×2-averaged images, "
                        "the best lifted; estimate: one start at the estimator's generator; episodic: the random "
                        "starts plus one at --method episodic's generator (labelled data)")
    p.add_argument("--refine", type=int, default=0, metavar="N",
                   help="--method learn: Adam steps continuing the best starts after the pick, the kernel "
                        "narrowing to --refine-scale × the median distance (default 0: no refine stage)")
    p.add_argument("--refine-scale", type=float, default=0.5, metavar="X",
                   help="--method learn: the refine stage's final kernel width, in median distances (default 0.5)")
    p.add_argument("--refine-keep", type=positive_int, default=1, metavar="K",
                   help="--method learn: starts the refine stage continues, the lowest losses at the pick (default 1)")
    p.add_argument("--shells", type=int, default=0, metavar="N",
                   help="--method learn, unlabelled data: compare the data within N equal-count shells of the image "
                        "norm, which every orthogonal map keeps, instead of as one pool (default 0: one pool)")
    p.add_argument("--held-out", type=float, default=0.2, metavar="F",
                   help="--method learn: fraction of each class kept out of the search; the verdict's evidence "
                        "is measured on it (default 0.2)")
    p.add_argument("--orbit-pool", choices=("max", "mean"),
                   help="the discovery LGN's head reads each orbit pooled (max or mean), so that the LGN is "
                        "invariant to the group found (default: every orbit response, not invariant)")
    p.add_argument("--figures", action="store_true", help="also draw the analysis figures (needs lgn[figures])")
    p.set_defaults(func=run)


def parse_options(items: list[str]) -> dict:
    """The dataset options of ``--set`` items: ``['data.options.sigma=0.3']`` → ``{'sigma': 0.3}``.

    The grammar is ``lgn train``'s (values in TOML syntax). The old ``KEY=VALUE`` is read as
    ``data.options.KEY=VALUE``, with a one-line hint on stderr.
    """
    import sys

    from lgn.train.config import parse_override

    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if sep and key and "." not in key:
            print(f"lgn discover: --set {item} is now --set data.options.{item} (the old spelling still works)",
                  file=sys.stderr)
            item = f"data.options.{item}"
        if not item.startswith("data.options."):
            raise UsageError(f"lgn discover takes dataset options only, --set data.options.KEY=VALUE; got {item!r}")
        _, key, value = parse_override(item)
        options[key.removeprefix("options.")] = value
    return options


def planted_truth(data: str, kernel_size: int, options: dict):
    """``(T, order)`` when ``data`` is a planted set, else None."""
    if not data.startswith("planted:"):
        return None
    from lgn.data.planted import planted_generator

    return planted_generator(data.split(":", 1)[1], kernel_size, perm_seed=options.get("perm_seed", 0))


def verdict_text(verdict, summary: dict) -> str:
    """``verdict.txt``: the verdict, whose first line starts "group found: …" or "no group of size p found: …";
    for planted data that line also says whether the planted group is the one found, by the recovery score
    against the higher of its floors (the rest of the lines give the numbers)."""
    lines = verdict.text().split("\n")
    if "planted_alignment" in summary:
        score, floor = summary["planted_alignment"], summary["alignment_floor"]
        bar = max(v for v in (floor["random_generator"], floor["unrelated_filters"]) if v == v)  # NaN left out
        if verdict.found and score > bar:
            lines[0] += f"; it is the planted group (recovery score {score:.3f} above its floor {bar:.3f})"
        elif verdict.found:
            lines[0] += f"; it is not the planted group (recovery score {score:.3f}, at or below its floor {bar:.3f})"
        lines.append(f"alignment with the planted group (recovery score): {score:.3f} "
                     f"(floor: random generator {floor['random_generator']:.3f}, "
                     f"unrelated filters {floor['unrelated_filters']:.3f})")
    if summary.get("test_accuracy") is not None:
        lines.append(f"test accuracy of the discovery LGN: {summary['test_accuracy']:.4f}")
    return "\n".join(lines)


def run(args) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    if args.figures:
        from lgn.cli.analyze import require_figures

        require_figures("leave out --figures")
    options = parse_options(args.set)
    stage = stage_lines("discover")

    from lgn.analysis import Groups, analyze_groups, save_groups
    from lgn.data import get_dataset
    from lgn.discovery import (DiscoveryConfig, EpisodicConfig, LearnConfig, alignment, alignment_floor, discover,
                               judge)
    from lgn.files import write_json

    # the settings before the data: a bad one is refused at once, not after a dataset has loaded
    learn = LearnConfig(restarts=args.restarts, steps=args.steps, loss=args.loss, start=args.start,
                        refine=args.refine, refine_scale=args.refine_scale, refine_keep=args.refine_keep,
                        held_out=args.held_out, shells=args.shells)
    config = DiscoveryConfig(n_layers=args.layers, n_groups=args.n_groups, epochs=args.epochs,
                             anchor_weight=args.anchor_weight, n_clusters=args.clusters, seed=args.seed,
                             method=args.method, orbit_pool=args.orbit_pool, learn=learn,
                             episodic=EpisodicConfig(restarts=args.restarts, steps=args.steps))
    stage(f"loading {args.dataset}")
    data = get_dataset(args.dataset, data_dir=args.data_dir, seed=args.seed, **options)
    start = time.time()
    result = discover(data.x_train, data.y_train, data.x_test, data.y_test, args.group_size, config,
                      progress=stage)
    k, channels = data.x_train.shape[-1], data.x_train.shape[1]
    stage("judging and analysing the group found")
    verdict = judge(result.estimate, k, channels)
    groups = Groups(A=result.generators, B=result.bases, kernel_size=k, channels=channels,
                    order=args.group_size, source=f"lgn discover --dataset {args.dataset}")
    analysis = analyze_groups(groups)
    summary = {"data": args.dataset, "options": options, "seed": args.seed, "config": dataclasses.asdict(config),
               "verdict": verdict.to_dict(), "test_accuracy": result.test_accuracy,
               "seconds": round(time.time() - start, 1)}
    truth = planted_truth(args.dataset, k, options)
    if truth is not None:
        summary["planted_alignment"] = alignment(result.generators, result.bases, *truth)
        summary["alignment_floor"] = alignment_floor(result.generators, result.bases, *truth, seed=args.seed)
    out.mkdir(parents=True, exist_ok=True)  # only now: a refused or failed discovery leaves no folder behind
    save_groups(groups, out / "groups.npz")
    analysis["figures"] = {}
    if args.figures:
        from lgn.analysis.figures import analysis_figures

        stage("drawing the figures")
        analysis["figures"] = analysis_figures(groups, out)
    analysis["discovery"] = summary
    write_json(analysis, out / "analysis.json")
    text = verdict_text(verdict, summary)
    (out / "verdict.txt").write_text(text + "\n")
    print(text)
    print(f"wrote {out / 'groups.npz'}, {out / 'analysis.json'}, {out / 'verdict.txt'}")
    return 0
