"""Symbolic links planted in a run folder: ``lgn train`` never writes or deletes through them (issue 41, item 1).

Each attack points an entry of the run folder at a file outside it, holding
``PRECIOUS``. Whatever the run does then (refuse with one line naming the
entry, or go on without the link), the file outside stays as it was.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lgn.cli import main
from tests.robustness.attacks import DIGITS_1, assert_one_line_error, files_under, lgn, lines

PRECIOUS = b"PRECIOUS\n"


def _victim(root: Path) -> Path:
    victim = root / "victim"
    victim.write_bytes(PRECIOUS)
    return victim


def _refused_naming_or_done(proc, command: str, entry: str) -> None:
    """Either the run went on (exit 0), or it stopped with one line naming ``entry``."""
    if proc.returncode != 0:
        assert_one_line_error(proc, command, entry)


def test_lock_file_linked_outside_is_never_written(tmp_path):
    """``mkdir s && ln -s $PWD/victim s/.lgn-lock && lgn train --dataset digits --epochs 1 --out s``."""
    victim = _victim(tmp_path)
    (tmp_path / "s").mkdir()
    os.symlink(victim, tmp_path / "s" / ".lgn-lock")
    proc = lgn("train", *DIGITS_1, "--out", "s", cwd=tmp_path)
    assert victim.read_bytes() == PRECIOUS, f"victim now holds {victim.read_bytes()!r}"
    assert_one_line_error(proc, "train", ".lgn-lock")  # a folder holding a link is not empty


def test_lock_file_linked_outside_under_force(tmp_path, run1, capsys):
    victim = _victim(tmp_path)
    (run1 / ".lgn-lock").symlink_to(victim)
    rc = main(["train", *DIGITS_1, "--out", str(run1), "--force"])
    err = capsys.readouterr().err
    assert victim.read_bytes() == PRECIOUS, f"victim now holds {victim.read_bytes()!r}"
    assert rc == 2 and len(lines(err)) == 1 and ".lgn-lock" in err, err


def test_temporary_file_linked_outside_is_never_written(tmp_path, run1):
    """``ln -s $PWD/victim r/config.json.tmp; lgn train --out r --resume``."""
    victim = _victim(tmp_path)
    os.symlink(victim, run1 / "config.json.tmp")
    proc = lgn("train", "--out", "r", "--resume", "--no-progress", cwd=tmp_path)
    assert victim.read_bytes() == PRECIOUS, f"victim now holds {victim.read_bytes()[:80]!r}"
    _refused_naming_or_done(proc, "train", "config.json.tmp")


@pytest.mark.parametrize("name", ["checkpoint-1.safetensors.tmp", "checkpoint-1.json.tmp", "model.safetensors.tmp",
                                  "metrics.jsonl.tmp", "preprocess.safetensors.tmp"])
def test_every_temporary_file_of_a_resumed_epoch(tmp_path, run2, name, capsys):
    """A run whose second epoch was lost (its checkpoint gone) resumes it, writing every run file once more."""
    for slot in ("checkpoint-1.json", "checkpoint-1.safetensors"):
        (run2 / slot).unlink()
    victim = _victim(tmp_path)
    (run2 / name).symlink_to(victim)
    rc = main(["train", "--out", str(run2), "--resume", "--no-progress"])
    err = capsys.readouterr().err
    assert victim.read_bytes() == PRECIOUS, f"victim now holds {victim.read_bytes()[:80]!r}"
    assert rc == 0 or (rc == 2 and len(lines(err)) == 1 and name in err), err


def test_force_never_deletes_through_a_linked_tensorboard_folder(tmp_path, run1):
    """``ln -s ~/my_tb r/tensorboard; lgn train ... --out r --force`` leaves the user's event files."""
    my_tb = tmp_path / "my_tb"
    my_tb.mkdir()
    (my_tb / "events.out.tfevents.1700000000.host.1.0").write_bytes(b"the user's own events")
    (my_tb / "notes.txt").write_bytes(b"mine")
    before = files_under(my_tb)
    (run1 / "tensorboard").symlink_to(my_tb)
    proc = lgn("train", *DIGITS_1, "--out", "r", "--force", cwd=tmp_path)
    assert files_under(my_tb) == before, f"{my_tb} changed: {sorted(files_under(my_tb))}"
    _refused_naming_or_done(proc, "train", "tensorboard")


def test_force_still_clears_a_real_tensorboard_folder(tmp_path, run1, capsys):
    """The guard above keeps --force's job: a run's own event files in a real folder go, a user's file stays."""
    events = run1 / "tensorboard"
    events.mkdir()
    (events / "events.out.tfevents.1.host.1.0").write_bytes(b"old run")
    (events / "notes.txt").write_bytes(b"mine")
    assert main(["train", *DIGITS_1, "--out", str(run1), "--force"]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in events.iterdir()) == ["notes.txt"]


def test_a_killed_runs_leftover_files_do_not_block_a_resume(tmp_path, run2, capsys):
    """What a SIGKILL leaves (a stale lock file and temporary files, as regular files) is no attack."""
    for slot in ("checkpoint-1.json", "checkpoint-1.safetensors"):
        shutil.move(run2 / slot, run2 / f"{slot}.tmp")
    (run2 / ".lgn-lock").write_text("12345\n")
    assert main(["train", "--out", str(run2), "--resume", "--no-progress"]) == 0, capsys.readouterr().err
    assert not list(run2.glob("*.tmp")) and not (run2 / ".lgn-lock").exists()
