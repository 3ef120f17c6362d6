"""The run folder: which files a run writes, when a folder may be used, and its metrics log.

A run folder holds ``config.json`` (the resolved config), ``metrics.jsonl``
(one JSON object per epoch), ``model.safetensors`` + ``model.json`` (the latest
model, readable with :func:`lgn.models.load_model`), ``preprocess.safetensors``
(the input scaling fitted on the training data), two checkpoint slots
(:mod:`lgn.train.checkpoint`) and, with TensorBoard, ``tensorboard/``. The
files a resumed run reads are written atomically.

One writer at a time: a run holds an exclusive lock on ``.lgn-lock`` in its
folder for as long as it runs (:func:`lock_run_dir`); a second ``lgn train``
on the same folder is refused, naming the holder's process id. Readers
(``lgn eval``, ``lgn analyze``) take no lock. The lock dies with its process,
so a killed run's leftover lock file never blocks anyone.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no lock (one writer per folder is then the user's to keep)
    fcntl = None

from lgn.data.preprocess import PREPROCESS_FILE
from lgn.models.io import CONFIG_FILE as MODEL_CONFIG_FILE
from lgn.files import append_text, atomic_write, read_json_lines, write_json
from lgn.models.io import WEIGHTS_FILE
from lgn.parsing import load_json
from lgn.train.checkpoint import CHECKPOINT_FILES

__all__ = ["CONFIG_FILE", "METRICS_FILE", "TENSORBOARD_DIR", "RUN_FILES", "LOCK_FILE", "RunFolderBusy",
           "check_run_dir", "lock_run_dir", "clear_run_files",
           "read_metrics", "write_metrics", "append_metrics", "read_config", "write_config"]

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
RUN_FILES = (CONFIG_FILE, METRICS_FILE, WEIGHTS_FILE, MODEL_CONFIG_FILE, PREPROCESS_FILE, *CHECKPOINT_FILES)
LOCK_FILE = ".lgn-lock"


class RunFolderBusy(ValueError):
    """Another process holds the run folder's lock."""


def check_run_dir(out: str | os.PathLike, *, resume: bool, force: bool) -> Path:
    """Refuse an ``out`` that is a file, or a non-empty folder without ``resume``/``force``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.is_dir() and any(p.name != LOCK_FILE for p in out.iterdir()) and not (resume or force):
        raise FileExistsError(f"{out} exists and is not empty; pass --resume to continue the run in it, "
                              f"or --force to overwrite its run files")
    return out


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        pid = ""
    return f"process {pid}" if pid.isdigit() else "another process"


@contextlib.contextmanager
def lock_run_dir(out: str | os.PathLike):
    """Hold an exclusive lock on the run folder ``out`` (created if missing) for the ``with`` block.

    Raises :class:`RunFolderBusy`, naming the holder's process id, if another
    process holds it; nothing is changed then. The lock file is removed on
    the way out, and so are ``out`` and the folders above it that this call
    created if they are still empty (a run refused before writing anything leaves no folder behind).
    """
    out = Path(out)
    created = [p for p in (out, *out.parents) if not p.exists()]  # deepest first
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_FILE
    fd = None
    try:
        if fcntl is not None:
            while True:  # a holder that just released may have removed the file we opened: lock the one in place
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as e:
                    os.close(fd)
                    fd = None  # not ours: leave the holder's file alone
                    if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise
                    raise RunFolderBusy(f"{out} is in use: {_holder(path)} is training into it; wait for it "
                                        f"to end, or choose another --out") from None
                try:
                    same = os.path.samestat(os.fstat(fd), os.stat(path))
                except FileNotFoundError:
                    same = False
                if same:
                    break
                os.close(fd)
                fd = None
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        yield out
    finally:
        if fd is not None:
            path.unlink(missing_ok=True)  # while still held: no one can have locked this file
            os.close(fd)
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty


def clear_run_files(out: Path) -> None:
    """Delete the files a run writes (and only those) from ``out``; other files stay."""
    for name in RUN_FILES:
        for path in (out / name, out / (name + ".tmp")):
            path.unlink(missing_ok=True)
    events = out / TENSORBOARD_DIR
    if events.is_dir():  # the event files a run wrote there; a user's own files (and the folder then) stay
        for path in events.glob("events.out.tfevents.*"):
            if path.is_file():
                path.unlink()
        with contextlib.suppress(OSError):
            events.rmdir()


def read_config(out: str | os.PathLike) -> dict | None:
    """The ``config.json`` of a run folder, or None if it has none."""
    path = Path(out) / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        config = load_json(path.read_bytes(), str(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return config


def write_config(out: Path, config: dict) -> None:
    write_json(config, out / CONFIG_FILE)


def read_metrics(out: str | os.PathLike, *, skip_damaged: bool = False) -> list[dict]:
    """The records of a run folder's ``metrics.jsonl`` (none without the file), one per epoch.

    A line that is not a JSON object raises ``ValueError`` naming the file, or,
    with ``skip_damaged`` (for a report of a run still being written), is left out.
    """
    return read_json_lines(Path(out) / METRICS_FILE, skip_damaged=skip_damaged)


def write_metrics(out: Path, records: list[dict]) -> None:
    atomic_write(out / METRICS_FILE, "".join(json.dumps(r, allow_nan=False) + "\n" for r in records).encode())


def append_metrics(out: Path, record: dict) -> None:
    append_text(out / METRICS_FILE, json.dumps(record, allow_nan=False) + "\n")  # strict JSON: a NaN is refused
