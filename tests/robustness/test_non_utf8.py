"""Folder names that are not UTF-8 (issue 41, item 10): ``lgn report`` and ``--tensorboard`` take them like
training, resume, eval and analyze do, or fail in one line naming the folder and leave nothing behind."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.robustness.attacks import DIGITS_1, assert_one_line_error, lgn

NOT_UTF8 = b"x\xff"  # a byte that is never UTF-8


@pytest.fixture
def odd_root(tmp_path) -> Path:
    """``tmp_path/x\\xff`` (a str with a surrogate, as Python decodes such a name)."""
    root = tmp_path / os.fsdecode(NOT_UTF8)
    root.mkdir()
    return root


def test_report_of_a_run_in_a_folder_whose_name_is_not_utf8(odd_root, digits_runs):
    """``lgn report $'x\\xff/run'``: the page is written, the name shown with U+FFFD for the odd byte."""
    shutil.copytree(digits_runs[1], odd_root / "run")
    proc = lgn("report", NOT_UTF8 + b"/run", cwd=odd_root.parent)
    assert proc.returncode == 0, proc.stderr
    page = (odd_root / "run" / "report" / "index.html").read_bytes().decode("utf-8")  # valid UTF-8
    assert "x\ufffd" in page and "\ufffd" not in page.replace("x\ufffd", "")
    assert "wrote" in proc.stdout


def test_tensorboard_into_a_folder_whose_name_is_not_utf8(odd_root):
    """``lgn train --tensorboard --out $'x\\xff/tb' ...``: events written, or one line naming the folder and no
    folder left behind."""
    pytest.importorskip("torch.utils.tensorboard")
    proc = lgn("train", *DIGITS_1, "--tensorboard", "--out", NOT_UTF8 + b"/tb", cwd=odd_root.parent)
    if proc.returncode == 0:
        assert list((odd_root / "tb" / "tensorboard").glob("events.out.tfevents.*"))
    else:
        assert_one_line_error(proc, "train", "tb")
        assert not (odd_root / "tb").exists(), sorted(p.name for p in (odd_root / "tb").iterdir())
