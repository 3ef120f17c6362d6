"""Finished runs the attacks start from, trained once per session: the issue's digits run of one epoch, and of two."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lgn.train import train


def _digits(root: Path, epochs: int) -> Path:
    return train({"data": {"name": "digits"}, "train": {"epochs": epochs, "progress": False}},
                 root / f"digits-{epochs}", log=None, warn=None).out


@pytest.fixture(scope="session")
def digits_runs(tmp_path_factory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("digits-runs")
    return {epochs: _digits(root, epochs) for epochs in (1, 2)}


@pytest.fixture
def run1(digits_runs, tmp_path) -> Path:
    """A copy of the finished one-epoch digits run: one checkpoint, in checkpoint-0."""
    return Path(shutil.copytree(digits_runs[1], tmp_path / "r"))


@pytest.fixture
def run2(digits_runs, tmp_path) -> Path:
    """A copy of the finished two-epoch digits run: epoch 1 in checkpoint-0, epoch 2 in checkpoint-1."""
    return Path(shutil.copytree(digits_runs[2], tmp_path / "r"))


@pytest.fixture(scope="session")
def digits_analysis(digits_runs, tmp_path_factory) -> Path:
    """``lgn analyze --no-figures`` of the one-epoch digits run, in a folder of its own."""
    from lgn.analysis.summary import load_run_groups, write_analysis

    out = tmp_path_factory.mktemp("digits-analysis") / "analysis"
    write_analysis(load_run_groups(digits_runs[1]), out, figures=False)
    return out
