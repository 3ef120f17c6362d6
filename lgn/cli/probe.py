"""``lgn probe``: the paper's "in the wild" probe: least-squares maps of known operations on natural patches."""

from __future__ import annotations

from pathlib import Path

from lgn.cli import UsageError


def register(sub) -> None:
    p = sub.add_parser(
        "probe", help="fit linear maps to pooling/rotation on natural patches; compare with a run's generators",
        description="Fit one linear map on k×k patches to each known operation (applied to the image around "
                    "the patch), report each fit's relative error and measures, and with --compare the cosine "
                    "similarity of every learned generator to every fitted map.")
    p.add_argument("--dataset", choices=("patches", "cifar10"), default="patches",
                   help="patches: scikit-learn's two sample photographs (no download); cifar10: its training set")
    p.add_argument("--data-dir", default="data", metavar="DIR", help="where cifar10 lives (default: data)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--compare", metavar="RUN", help="run folder whose generators to compare with the maps")
    p.add_argument("--kernel-size", type=int, metavar="K", help="patch size k (default: the run's, else 6)")
    p.add_argument("--n", type=int, default=4000, metavar="N", help="number of patches (default 4000)")
    p.add_argument("--channels", type=int, choices=(1, 3), default=3,
                   help="patches dataset: 3 (RGB) or 1 (grey); every channel is one sample")
    p.add_argument("--ops", metavar="OP,OP,...",  # the default is read after parsing: its module imports torch
                   help="comma-separated operations, each pool<r> (average pooling of radius r), rot<deg> "
                        "(rotation by deg degrees) or pool<r>+rot<deg> (default: the paper's set, docs/method.md "
                        "§7; probe.json lists those run)")
    p.add_argument("--order", type=int, default=4, metavar="P", help="p for the finite-order error (default 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.set_defaults(func=run)


def _cifar_windows(data_dir: str, size: int, n: int, seed: int):
    """``n`` random size×size windows ``(n, C, size, size)`` of CIFAR-10 training images, a numpy array."""
    import numpy as np

    from lgn.data import get_dataset

    x = get_dataset("cifar10", data_dir=data_dir).x_train  # (N, C, H, W)
    N, C, H, W = x.shape  # images, channels, height, width
    if size > min(H, W):
        raise UsageError(f"the probe needs {size}×{size} windows, larger than the {H}×{W} images; "
                         "use a smaller --kernel-size or fewer/smaller operations")
    rng = np.random.default_rng(seed)
    idx, rows, cols = rng.integers(N, size=n), rng.integers(H - size + 1, size=n), rng.integers(W - size + 1, size=n)
    x = x.numpy() if hasattr(x, "numpy") else np.asarray(x)  # a view of the tensor, no copy
    return np.stack([x[i, :, r:r + size, c:c + size] for i, r, c in zip(idx, rows, cols)])


def _format(maps: list[dict]) -> str:
    width = max(len("operation"), *(len(m["name"]) for m in maps))
    near = max(len("nearest op"), *(len(m["nearest_op"]["name"]) for m in maps))
    head = (f"{'operation':<{width}} {'rel.err':>7} {'~exact':>6}  {'nearest op':<{near}} {'sim':>5} | "
            f"{'toepl':>5} {'circ':>5} {'dftT':>5} {'block':>5} | {'order':>6} {'orth':>6}")
    lines = [head, "-" * len(head)]
    for m in maps:
        i, g = m["indices"], m["group_error"]
        lines.append(f"{m['name']:<{width}} {m['rel_error']:7.4f} {m['exact_similarity']:6.3f}  "
                     f"{m['nearest_op']['name']:<{near}} {m['nearest_op']['similarity']:5.2f} | "
                     f"{i['toeplitz']:5.2f} {i['circulant']:5.2f} {i['dft_top']:5.2f} {i['block']:5.2f} | "
                     f"{g['finite_order']:6.3f} {g['orthogonality']:6.3f}")
    return "\n".join(lines)


def _format_compare(compare: dict) -> str:
    names = compare["maps"]
    width = max(6, *(len(n) for n in names))
    head = f"{'layer':>5} {'group':>5} {'ch':>3} | " + " ".join(f"{n:>{width}}" for n in names)
    lines = [head, "-" * len(head)]
    for g in compare["generators"]:
        lines.append(f"{g['layer']:>5} {g['group']:>5} {g['channel']:>3} | "
                     + " ".join(f"{g['similarity'][n]:>{width}.3f}" for n in names))
    return "\n".join(lines)


def run(args) -> int:
    import numpy as np

    from lgn.analysis.probe import PROBE_OPERATIONS, compare_generators, operation_margin, run_probe
    from lgn.analysis.summary import load_run_groups
    from lgn.files import write_json

    ops = list(PROBE_OPERATIONS) if args.ops is None else [o.strip() for o in args.ops.split(",") if o.strip()]
    if not ops:
        raise UsageError("--ops is empty")
    if args.n < 1 or args.order < 1:
        raise UsageError("--n and --order must be positive integers")
    groups = load_run_groups(args.compare) if args.compare else None
    k = args.kernel_size or (groups.kernel_size if groups is not None else 6)
    if groups is not None and k != groups.kernel_size:
        raise UsageError(f"--kernel-size {k} differs from the run's kernel size {groups.kernel_size}")
    size = k + 2 * max(operation_margin(op, k) for op in ops)  # validates the names too
    if args.dataset == "patches":
        from lgn.data.patches import natural_patches

        windows = natural_patches(size, args.n, seed=args.seed, channels=args.channels)
    else:
        windows = _cifar_windows(args.data_dir, size, args.n, args.seed)
    fits = run_probe(windows, k, ops, order=args.order)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"dataset": args.dataset, "kernel_size": k, "n_patches": args.n, "channels": int(windows.shape[1]),
              "window": size, "seed": args.seed, "order": args.order,
              "maps": [f.to_dict() for f in fits], "figures": {}}
    np.savez(out / "maps.npz", names=np.array([f.name for f in fits]),
             maps=np.stack([f.matrix for f in fits]), exact=np.stack([f.exact for f in fits]))
    if groups is not None:
        result["compare"] = {"run": str(args.compare), **compare_generators(groups, fits)}
    if not args.no_figures:
        from lgn.analysis.figures import probe_figure, similarity_figure

        result["figures"]["probe"] = probe_figure(fits, out / "probe.png").name
        if groups is not None:
            result["figures"]["similarity"] = similarity_figure(result["compare"], out / "similarity.png").name
    write_json(result, out / "probe.json")
    print(f"probe: {args.n} windows of {size}×{size} from {args.dataset} around {k}×{k} patches, "
          f"{windows.shape[1]} channel(s) each a sample)")
    print(_format(result["maps"]))
    if groups is not None:
        print(f"\ncosine similarity of the generators of {args.compare} with the fitted maps:")
        print(_format_compare(result["compare"]))
    print(f"wrote {out / 'probe.json'}")
    return 0
