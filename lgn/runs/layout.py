"""The run folder's layout: which files a run writes, when a folder may be used, and its lock.

The files are named here once (:data:`RUN_FILES` lists those ``lgn train``
writes; the checkpoint slots are named by :mod:`lgn.train.checkpoint`, which
owns their format). The files a resumed run reads are written atomically.

One writer at a time: a run holds an exclusive lock on ``.lgn-lock`` in its
folder for as long as it runs (:func:`lock_run_dir`); a second ``lgn train``
on the same folder is refused, naming the holder's process id. Readers
(``lgn eval``, ``lgn analyze``) take no lock. The lock dies with its process,
so a killed run's leftover lock file never blocks anyone.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no lock (one writer per folder is then the user's to keep)
    fcntl = None

from lgn.data.preprocess import PREPROCESS_FILE
from lgn.models.io import CONFIG_FILE as MODEL_CONFIG_FILE
from lgn.models.io import WEIGHTS_FILE

__all__ = ["CONFIG_FILE", "METRICS_FILE", "MODEL_CONFIG_FILE", "WEIGHTS_FILE", "BEST_WEIGHTS_FILE", "PREPROCESS_FILE",
           "RUN_RECORD_FILE", "TENSORBOARD_DIR", "MACHINES_FILE", "RECORD_FILE", "ANALYSIS_DIR", "LOCK_FILE",
           "RUN_FILES", "RunFolderBusy",
           "check_run_dir", "lock_run_dir", "clear_run_files"]

CONFIG_FILE = "config.json"          # the resolved settings (lgn.runs.records)
METRICS_FILE = "metrics.jsonl"       # one JSON object per epoch (lgn.runs.records)
RUN_RECORD_FILE = "run.json"         # what is not a setting: the run it started from, its extensions, its best
#                                      epoch (lgn.runs.records)
BEST_WEIGHTS_FILE = "model-best.safetensors"  # the weights of the best epoch (model.safetensors: the last one)
TENSORBOARD_DIR = "tensorboard"      # event files, with train.tensorboard
MACHINES_FILE = "machines.jsonl"     # the CPU and threads each invocation of lgn reproduce trained on
RECORD_FILE = "reproduce.json"       # the record of a finished lgn reproduce run
ANALYSIS_DIR = "analysis"            # analysis.json and groups.npz of lgn analyze (and lgn reproduce)
LOCK_FILE = ".lgn-lock"              # held while a run trains into the folder
# what lgn train writes besides its checkpoints: the model (model.safetensors + model.json, lgn.models.io),
# the best epoch's weights and the input scaling fitted on the training data (preprocess.safetensors,
# lgn.data.preprocess)
RUN_FILES = (CONFIG_FILE, METRICS_FILE, RUN_RECORD_FILE, WEIGHTS_FILE, BEST_WEIGHTS_FILE, MODEL_CONFIG_FILE,
             PREPROCESS_FILE)


class RunFolderBusy(ValueError):
    """Another process holds the run folder's lock."""


def check_run_dir(out: str | os.PathLike, *, resume: bool, force: bool) -> Path:
    """Refuse an ``out`` that is a file, or a non-empty folder without ``resume``/``force``, or whose lock
    file or TensorBoard folder is a symbolic link (a run would write or delete through it, outside ``out``).

    A folder holding only a killed run's lock file (a regular file) counts as empty.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    for name in (LOCK_FILE, TENSORBOARD_DIR):
        if (out / name).is_symlink():
            raise FileExistsError(f"{out / name} is a symbolic link: a run writes and deletes only inside its "
                                  f"folder; remove the link, or choose another --out")
    leftover = lambda p: p.name == LOCK_FILE and p.is_file() and not p.is_symlink()  # noqa: E731
    if out.is_dir() and any(not leftover(p) for p in out.iterdir()) and not (resume or force):
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
                fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)  # never a link
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
                    same = os.path.samestat(os.fstat(fd), os.lstat(path))
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


def clear_run_files(out: Path, checkpoint_files: Iterable[str]) -> None:
    """Delete the files a run writes (and only those) from ``out``: :data:`RUN_FILES`, the trainer's
    ``checkpoint_files`` and the run's TensorBoard event files; other files stay."""
    for name in (*RUN_FILES, *checkpoint_files):
        for path in (out / name, out / (name + ".tmp")):
            path.unlink(missing_ok=True)
    events = out / TENSORBOARD_DIR
    if events.is_dir() and not events.is_symlink():  # the event files a run wrote there, never through a link;
        # a user's own files (and the folder then) stay
        for path in events.glob("events.out.tfevents.*"):
            if path.is_file():
                path.unlink()
        with contextlib.suppress(OSError):
            events.rmdir()
