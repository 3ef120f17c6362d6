"""The committed paper-scale grid (results/paper) continues in a fresh checkout.

A session's processes and its files outside the repository end with it, so every run
that results/paper/RESULTS.md reports must be committed with what ``lgn reproduce
--scale paper --out results/paper`` needs to read it back instead of training it again:
its record, with the grid's own settings, and an LGN run's generators.
"""

import json
import shutil
from pathlib import Path

import pytest

from lgn.reproduce import FULL_DISCOVERY, PAPER, build_grid, data_plans, reproduce
from lgn.runs import RECORD_FILE, read_record

PAPER_DIR = Path(__file__).resolve().parents[2] / "results" / "paper"
RESULTS = json.loads((PAPER_DIR / "results.json").read_text())
SPECS = {s.name: s for s in build_grid(data_plans(), PAPER, RESULTS["seeds"])}


@pytest.mark.parametrize("run", RESULTS["runs"], ids=[r["name"] for r in RESULTS["runs"]])
def test_every_reported_run_is_committed_with_the_grids_settings(run):
    folder = PAPER_DIR / "runs" / run["run_dir"]
    record = read_record(folder)
    assert record is not None, f"{folder} has no readable {RECORD_FILE}"
    assert record["settings"] == SPECS[run["name"]].settings  # else the grid would train it again
    assert record["metric"] == run["metric"]
    if run["analysis"] is not None:
        assert (folder / run["analysis"]["groups"]).is_file()


def test_the_committed_grid_reads_back_without_training(tmp_path):
    out = tmp_path / "paper"
    shutil.copytree(PAPER_DIR, out)
    results = reproduce(out, plans=data_plans(), recipe=PAPER, seeds=RESULTS["seeds"], discovery=FULL_DISCOVERY,
                        log=None, limit=0)  # as `lgn reproduce --scale paper --max-runs 0`
    assert results["reused_runs"] == len(RESULTS["runs"])
    metric = {r["name"]: r["metric"] for r in results["runs"]}
    assert metric == {r["name"]: r["metric"] for r in RESULTS["runs"]}  # the grid's order may have changed since
