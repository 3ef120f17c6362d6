"""The run folder: which files a run writes, when a folder may be used, and its metrics log.

A run folder holds ``config.json`` (the resolved config), ``metrics.jsonl``
(one JSON object per epoch), ``model.safetensors`` + ``model.json`` (the latest
model, readable with :func:`lgn.models.load_model`), ``preprocess.safetensors``
(the input scaling fitted on the training data), two checkpoint slots
(:mod:`lgn.train.checkpoint`) and, with TensorBoard, ``tensorboard/``. The
files a resumed run reads are written atomically.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from lgn.data.preprocess import PREPROCESS_FILE
from lgn.models.io import CONFIG_FILE as MODEL_CONFIG_FILE
from lgn.models.io import WEIGHTS_FILE, atomic_write
from lgn.train.checkpoint import CHECKPOINT_FILES

__all__ = ["CONFIG_FILE", "METRICS_FILE", "TENSORBOARD_DIR", "RUN_FILES", "check_run_dir", "clear_run_files",
           "read_metrics", "write_metrics", "append_metrics", "read_config", "write_config"]

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
RUN_FILES = (CONFIG_FILE, METRICS_FILE, WEIGHTS_FILE, MODEL_CONFIG_FILE, PREPROCESS_FILE, *CHECKPOINT_FILES)


def check_run_dir(out: str | os.PathLike, *, resume: bool, force: bool) -> Path:
    """Refuse an ``out`` that is a file, or a non-empty folder without ``resume``/``force``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (resume or force):
        raise FileExistsError(f"{out} exists and is not empty; pass --resume to continue the run in it, "
                              f"or --force to overwrite its run files")
    return out


def clear_run_files(out: Path) -> None:
    """Delete the files a run writes (and only those) from ``out``; other files stay."""
    for name in RUN_FILES:
        for path in (out / name, out / (name + ".tmp")):
            path.unlink(missing_ok=True)
    if (out / TENSORBOARD_DIR).is_dir():
        shutil.rmtree(out / TENSORBOARD_DIR)


def read_config(out: str | os.PathLike) -> dict | None:
    """The ``config.json`` of a run folder, or None if it has none."""
    path = Path(out) / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return config


def write_config(out: Path, config: dict) -> None:
    atomic_write(out / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode())


def read_metrics(out: str | os.PathLike, *, skip_damaged: bool = False) -> list[dict]:
    """The records of a run folder's ``metrics.jsonl`` (none without the file), one per epoch.

    A line that is not a JSON object raises ``ValueError`` naming the file, or,
    with ``skip_damaged`` (for a report of a run still being written), is left out.
    """
    path = Path(out) / METRICS_FILE
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            if skip_damaged:
                continue
            raise ValueError(f"{path} is not valid JSON lines: line {number}: {e}") from None
        if isinstance(record, dict):
            records.append(record)
        elif not skip_damaged:
            raise ValueError(f"{path} line {number} is not a JSON object")
    return records


def write_metrics(out: Path, records: list[dict]) -> None:
    atomic_write(out / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in records).encode())


def append_metrics(out: Path, record: dict) -> None:
    with open(out / METRICS_FILE, "a") as f:
        f.write(json.dumps(record) + "\n")
