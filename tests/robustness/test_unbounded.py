"""Files that never end, or are far larger than any ``lgn`` writes (issue 41, item 8).

``/dev/zero`` linked in as a checkpoint is read until memory runs out, and the
message then blames the settings ("out of memory ... try smaller settings").
A JSON file is read with a size bound and only if it is a regular file; a
tensor file only if it is a regular file. Each case runs in a real process
whose address space is capped at 2 GiB, so a read without a bound ends in
``MemoryError`` quickly instead of taking the machine's memory.
"""

from __future__ import annotations

import os
import resource
import shutil
from pathlib import Path

import pytest

from tests.robustness.attacks import assert_one_line_error, lgn, lines

CAP = 2 << 30  # bytes of address space: lgn trains the digits run in well under this
HUGE = 3 << 30  # a sparse file of this size costs no disk, but reading it whole cannot fit under CAP


def _capped():
    resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))


def _run(*argv) -> object:
    return lgn(*argv, preexec_fn=_capped, timeout=120)


def _sparse(path: Path) -> None:
    path.unlink(missing_ok=True)
    with open(path, "wb") as f:
        f.truncate(HUGE)


def _not_blamed_on_settings(proc) -> None:
    assert "out of memory" not in proc.stderr and "MemoryError" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("name", ["checkpoint-1.json", "checkpoint-1.safetensors"])
def test_dev_zero_as_a_checkpoint(run1, name):
    """``ln -sf /dev/zero R/checkpoint-1.json; lgn train --out R --resume``: that slot is damaged, so the resume
    falls back to checkpoint-0 with a warning naming the file (or stops in one line naming it)."""
    if name.endswith(".safetensors"):  # a readable JSON beside it, so the tensor file is read
        shutil.copy(run1 / "checkpoint-0.json", run1 / "checkpoint-1.json")
    (run1 / name).symlink_to("/dev/zero")
    proc = _run("train", "--out", run1, "--resume", "--no-progress")
    _not_blamed_on_settings(proc)
    if proc.returncode == 0:
        warnings = [line for line in lines(proc.stderr) if line.startswith("warning: checkpoint")]
        assert len(warnings) == 1 and name in warnings[0], proc.stderr
    else:
        assert_one_line_error(proc, "train", name)


@pytest.mark.parametrize("name", ["checkpoint-0.json", "config.json"])
def test_a_huge_json_file_of_a_run_being_resumed(run1, name):
    _sparse(run1 / name)
    proc = _run("train", "--out", run1, "--resume", "--no-progress")
    _not_blamed_on_settings(proc)
    assert_one_line_error(proc, "train", name)


def test_a_huge_model_json_in_eval(run1):
    _sparse(run1 / "model.json")
    proc = _run("eval", run1)
    _not_blamed_on_settings(proc)
    assert_one_line_error(proc, "eval", "model.json")


def test_a_huge_analysis_json_in_report(tmp_path, digits_analysis):
    folder = Path(shutil.copytree(digits_analysis, tmp_path / "analysis"))
    _sparse(folder / "analysis.json")
    proc = _run("report", folder)
    _not_blamed_on_settings(proc)
    assert_one_line_error(proc, "report", "analysis.json")


def test_a_fifo_as_a_checkpoint_is_refused_without_blocking(run1):
    """A FIFO with no writer blocks ``open`` forever: it is not a regular file, so it is never opened."""
    os.mkfifo(run1 / "checkpoint-1.json")
    proc = lgn("train", "--out", run1, "--resume", "--no-progress", preexec_fn=_capped, timeout=90)
    assert proc.returncode == 0 and "checkpoint-1.json" in proc.stderr, proc.stderr
