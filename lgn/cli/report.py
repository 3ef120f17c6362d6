"""``lgn report``: an HTML page of a run's analysis (and probe) figures and numbers."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "report", help="write DIR/report/index.html from a run, analysis or probe folder",
        description="Collect the figures and metrics found in DIR (a run folder, whose analysis is computed "
                    "if missing; an `lgn analyze` output folder; an `lgn probe` output folder; a probe/ "
                    "subfolder is included) into DIR/report/index.html, a self-contained folder.")
    p.add_argument("directory", metavar="DIR")
    p.set_defaults(func=run)


def run(args) -> int:
    from lgn.analysis.report import write_report

    print(f"wrote {write_report(args.directory)}")
    return 0
