"""``lgn analyze``: measure every learned generator of a run (or of an .npz of arrays)."""

from __future__ import annotations

from pathlib import Path

from lgn.cli import UsageError


def register(sub) -> None:
    p = sub.add_parser(
        "analyze", help="measure the learned generators: structure, group-ness, nearest known operation",
        description="Analyse every generator of a run folder, or the arrays A (L, K, C, n, n) and optional "
                    "B (L, K, C, k, k) of an .npz file. Writes analysis.json, groups.npz (for a run) and "
                    "figures, and prints a table.")
    p.add_argument("run", nargs="?", metavar="RUN", help="run folder with model.json and model.safetensors")
    p.add_argument("--groups", metavar="FILE.npz", help="analyse arrays A (and B) from this file instead of a run")
    p.add_argument("--out", metavar="DIR", help="output folder (default: RUN/analysis, or FILE-analysis/ next to "
                                                "the .npz)")
    p.add_argument("--order", type=int, metavar="P", help="p for the finite-order error (default: the run's "
                                                          "group_size, else 4)")
    p.add_argument("--kernel-size", type=int, metavar="K", help="k, when it cannot be read from the arrays "
                                                                "(a joint generator without B)")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.set_defaults(func=run)


def run(args) -> int:
    from lgn.analysis.summary import ANALYSIS_FILE, format_table, load_groups, load_run_groups, write_analysis
    from lgn.files import write_json
    from lgn.runs import ANALYSIS_DIR, CONFIG_FILE

    if (args.run is None) == (args.groups is None):
        raise UsageError("give either a run folder or --groups FILE.npz (exactly one)")
    if args.order is not None and args.order < 1:
        raise UsageError(f"--order must be a positive integer, got {args.order}")
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
    print(format_table(analysis))
    if args.run is not None and (Path(args.run) / CONFIG_FILE).is_file():
        from lgn.analysis.energy import run_code_energy

        energy = run_code_energy(args.run)
        analysis["code_energy"] = energy
        write_json(analysis, out / ANALYSIS_FILE)
        print(f"code energy per orbit power (final code, {energy['examples']} {energy['split']} images): "
              + ", ".join(f"A^{i}·B {f:.1%}" for i, f in enumerate(energy["fractions"])))
    print(f"wrote {out / ANALYSIS_FILE}"
          + (f" and {len(analysis['figures'])} figures" if analysis["figures"] else ""))
    return 0
