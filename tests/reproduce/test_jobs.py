"""lgn reproduce --jobs: runs trained in worker processes give the serial runs' records; errors stop the grid."""

import dataclasses

import pytest
import torch

from lgn.cli import main
from lgn.reproduce import build_grid
from lgn.reproduce.runner import run_all
from lgn.runs import RECORD_FILE
from tests.reproduce.test_reproduce import PLANS, RECIPE

SPECS = build_grid(PLANS[:1], RECIPE, 2, ("lgn-free", "unconstrained"))  # 2 tasks × 2 models × 2 seeds


@pytest.fixture
def one_thread():
    """Serial runs on one thread, as each worker below trains: the same arithmetic, bit for bit."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_runs_in_workers_equal_the_serial_runs(tmp_path, one_thread, capfd):
    serial_lines, parallel_lines = [], []
    serial, _ = run_all(SPECS, tmp_path / "serial", log=serial_lines.append)
    parallel, reused = run_all(SPECS, tmp_path / "parallel", log=parallel_lines.append, jobs=2, threads=1)
    assert not any(reused)
    assert [r["name"] for r in parallel] == [s.name for s in SPECS]  # the grid's order, whatever finished first
    for a, b in zip(serial, parallel):
        assert b["metric"] == a["metric"] and b["test_loss"] == a["test_loss"], a["name"]
        assert b["params"] == a["params"] and b["analysis"] == a["analysis"]
    # one line per run as it finishes, the serial lines but for the seconds each took
    assert sorted(line.rsplit(",", 1)[0] for line in parallel_lines) == sorted(
        line.rsplit(",", 1)[0] for line in serial_lines)
    # each worker printed its run's first epoch line, naming the run (progress bars would interleave)
    printed = capfd.readouterr().out
    assert all(f"  {s.name}: epoch 1/1 " in printed for s in SPECS), printed
    # a second call trains nothing: every run is read back, in order
    again, reused = run_all(SPECS, tmp_path / "parallel", log=None, jobs=2)
    assert all(reused) and [r["name"] for r in again] == [s.name for s in SPECS]


def test_a_limit_trains_the_first_unfinished_runs(tmp_path):
    records, reused = run_all(SPECS, tmp_path, log=None, limit=3, jobs=2, threads=1)
    assert [r["name"] for r in records] == [s.name for s in SPECS[:3]] and not any(reused)
    assert not (tmp_path / SPECS[3].name / RECORD_FILE).exists()


def test_an_error_in_one_run_stops_the_grid_with_that_error(tmp_path):
    bad = dataclasses.replace(SPECS[1], settings={**SPECS[1].settings,
                                                  "train": {**SPECS[1].settings["train"], "epochs": 0}})
    with pytest.raises(ValueError, match="epochs"):
        run_all([SPECS[0], bad, SPECS[2]], tmp_path, log=None, jobs=2, threads=1)
    assert not (tmp_path / bad.name / RECORD_FILE).exists()


@pytest.mark.parametrize("jobs", [0, -1, True, 1.5])
def test_jobs_must_be_a_positive_integer(tmp_path, jobs):
    with pytest.raises(ValueError, match="--jobs must be a positive integer"):
        run_all(SPECS, tmp_path, log=None, jobs=jobs)


def test_cli_refuses_no_jobs_in_one_line(tmp_path, capsys):
    assert main(["reproduce", "--out", str(tmp_path), "--jobs", "0"]) == 2
    assert main(["curves", "--out", str(tmp_path / "c"), "--jobs", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("--jobs must be at least 1" in line for line in err)
    assert not (tmp_path / "runs").exists()


def test_reproduce_with_jobs_says_how_its_runs_trained(tmp_path):
    from lgn.reproduce import reproduce
    from tests.reproduce.test_reproduce import PLANS as plans

    results = reproduce(tmp_path, plans=plans[:1], recipe=RECIPE, seeds=1, discovery=None,
                        models=("lgn-free", "cnn"), log=None, jobs=2, threads=1)
    assert results["complete"] and results["machine"]["jobs"] == 2 and results["machine"]["torch_threads"] == 1
    assert all(r["threads"] == 1 for r in results["runs"])  # each worker's own count, not this process's
    assert "(1 thread per run, 2 runs at once)" in (tmp_path / "RESULTS.md").read_text()
