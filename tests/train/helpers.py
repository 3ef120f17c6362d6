"""A tiny labelled dataset and a tiny model, so that a whole training run takes well under a second."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# a small model: 2 layers, 2 groups of 2, 3×3 kernels
TINY_MODEL = {"n_layers": 2, "n_groups": 2, "group_size": 2, "kernel_size": 3}
TINY_SET = [arg for setting in [f"model.{k}={v}" for k, v in TINY_MODEL.items()] + ["train.batch_size=16"]
            for arg in ("--set", setting)]  # the same as command-line arguments


def write_tiny_npz(path: Path, n_train: int = 48, n_test: int = 24, size: int = 10, labels: bool = True,
                   seed: int = 0) -> Path:
    """Three classes of noisy bars (horizontal, vertical, diagonal) on ``size``×``size`` images."""
    rng = np.random.default_rng(seed)
    templates = np.zeros((3, size, size), np.float32)
    templates[0, size // 2] = 1
    templates[1, :, size // 2] = 1
    templates[2] = np.eye(size)

    def draw(n):
        y = np.arange(n) % 3
        return templates[y] + 0.1 * rng.standard_normal((n, size, size)).astype(np.float32), y

    x_train, y_train = draw(n_train)
    x_test, y_test = draw(n_test)
    arrays = {"x_train": x_train, "x_test": x_test}
    if labels:
        arrays.update(y_train=y_train, y_test=y_test)
    np.savez(path, **arrays)
    return path


def tiny_settings(npz: Path, epochs: int = 2, **train) -> dict:
    return {"data": {"name": f"npz:{npz}"}, "model": dict(TINY_MODEL),
            "train": {"epochs": epochs, "batch_size": 16, "progress": False, **train}}


def newest_step(out: Path) -> int:
    """The step of the newest readable checkpoint in the run folder ``out``, −1 if none."""
    steps = [-1]
    for path in Path(out).glob("checkpoint-*.json"):
        try:
            steps.append(json.loads(path.read_text())["step"])
        except (OSError, ValueError, KeyError):
            pass
    return max(steps)


class Interrupt(Exception):
    """Raised by :func:`stop_after` to cut a run short, as a crash would."""


def stop_after(epoch):
    """An ``on_epoch_end`` hook that raises :class:`Interrupt` once ``epoch`` has ended."""
    def stop(record):
        if record["epoch"] == epoch:
            raise Interrupt

    return stop
