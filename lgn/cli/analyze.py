"""``lgn analyze``: measure every learned generator of a run (or of an .npz of arrays)."""

from __future__ import annotations

from pathlib import Path

from lgn.cli import UsageError, positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "analyze", help="measure the learned generators: structure, group-ness, nearest known operation",
        description="Analyse every generator of a run folder, or the arrays A (L, K, C, n, n) and optional "
                    "B (L, K, C, k, k) of an .npz file. Says in a sentence or two what was found, writes "
                    "analysis.json, groups.npz (for a run) and figures, and prints a table.")
    p.add_argument("run", nargs="?", metavar="RUN", help="run folder with model.json and model.safetensors")
    p.add_argument("--groups", metavar="FILE.npz", help="analyse arrays A (and B) from this file instead of a run")
    p.add_argument("--out", metavar="DIR", help="output folder (default: RUN/analysis, or FILE-analysis/ next to "
                                                "the .npz)")
    p.add_argument("--order", type=positive_int, metavar="P", help="p for the finite-order error (default: the "
                                                                   "run's group_size, else 4)")
    p.add_argument("--kernel-size", type=positive_int, metavar="K", help="k, when it cannot be read from the arrays "
                                                                        "(a joint generator without B)")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.set_defaults(func=run)


def require_figures(alternative: str) -> None:
    """Stop before any work when matplotlib is missing, naming the extra to install and ``alternative``."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError(f"figures need the optional matplotlib package: pip install 'lgn[figures]', "
                         f"or {alternative}")


def run(args) -> int:
    if (args.run is None) == (args.groups is None):
        raise UsageError("give either a run folder or --groups FILE.npz (exactly one)")
    if not args.no_figures:
        require_figures("pass --no-figures")

    from lgn.analysis.energy import add_code_energy, describe_code_energy
    from lgn.analysis.summary import ANALYSIS_FILE, format_table, load_groups, load_run_groups, write_analysis
    from lgn.analysis.verdict import verdict
    from lgn.runs import ANALYSIS_DIR

    if args.groups is not None:
        path = Path(args.groups)
        groups = load_groups(path, order=args.order, kernel_size=args.kernel_size)
        out = Path(args.out) if args.out else path.with_name(path.stem + "-analysis")
    else:
        groups = load_run_groups(args.run)
        if args.order is not None:
            groups.order = args.order
        if args.kernel_size is not None and args.kernel_size != groups.kernel_size:
            raise UsageError(f"--kernel-size {args.kernel_size} disagrees with the run's {groups.kernel_size}")
        out = Path(args.out) if args.out else Path(args.run) / ANALYSIS_DIR
    analysis = write_analysis(groups, out, figures=not args.no_figures, save_arrays=args.run is not None)
    if args.run is not None:
        analysis = add_code_energy(analysis, args.run, out / ANALYSIS_FILE)
    print(verdict(analysis))
    print()
    print(format_table(analysis))
    if "code_energy" in analysis:
        print(describe_code_energy(analysis["code_energy"]))
    print(f"wrote {out / ANALYSIS_FILE}"
          + (f" and {len(analysis['figures'])} figures" if analysis["figures"] else ""))
    return 0
