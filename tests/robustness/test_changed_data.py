"""A dataset that changed between a kill and ``--resume`` (issue 41, item 7).

The run record holds a digest of the training data; a resume onto other data
(``data.npz`` regenerated, same shapes) is refused in one line naming the
data, instead of exiting 0 with the preprocessing refitted mid-run. The same
data written again (a new file, the same arrays) resumes bit-identical.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lgn.cli import main
from tests.robustness.attacks import lines
from tests.train.helpers import TINY_SET, write_tiny_npz


def _train(data: Path, out: Path, *extra: str) -> int:
    return main(["train", "--dataset", f"npz:{data}", "--out", str(out), "--epochs", "2", "--no-progress",
                 *TINY_SET, *extra])


def _killed_after_epoch_one(data: Path, out: Path) -> None:
    """The run as a kill after its first epoch leaves it: the second epoch's checkpoint never written."""
    assert _train(data, out) == 0
    for name in ("checkpoint-1.json", "checkpoint-1.safetensors"):
        (out / name).unlink()


def test_a_resume_onto_regenerated_data_is_refused(tmp_path, capsys):
    data = write_tiny_npz(tmp_path / "data.npz", seed=0)
    _killed_after_epoch_one(data, tmp_path / "r")
    write_tiny_npz(data, seed=1)  # regenerated: the same shapes, other values
    capsys.readouterr()
    rc = main(["train", "--out", str(tmp_path / "r"), "--resume", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and len(lines(err)) == 1, f"exit {rc}: {err}"
    assert "data.npz" in err and "changed" in err, err


def test_the_same_data_written_again_resumes_bit_identical(tmp_path, capsys):
    data = write_tiny_npz(tmp_path / "data.npz", seed=0)
    assert _train(data, tmp_path / "full") == 0
    _killed_after_epoch_one(data, tmp_path / "r")
    write_tiny_npz(data, seed=0)  # a new file, the same arrays
    capsys.readouterr()
    assert main(["train", "--out", str(tmp_path / "r"), "--resume", "--no-progress"]) == 0
    assert not lines(capsys.readouterr().err)
    resumed, full = load_file(tmp_path / "r" / "model.safetensors"), load_file(tmp_path / "full" / "model.safetensors")
    assert all(torch.equal(resumed[k], full[k]) for k in full)
