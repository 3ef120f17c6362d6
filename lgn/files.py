"""Writing and reading the files of a run: atomically, naming the file that failed, by any path the OS accepts.

:func:`atomic_write` leaves either the old file or the new one after a crash,
and an error while writing (a full disk, say) names the file and removes the
partial temporary one; :func:`write_json` writes a JSON file through it.
:func:`read_file` reads only a regular file, and a JSON file (:data:`MAX_JSON_BYTES`)
only up to a bound: a link to ``/dev/zero`` or a FIFO planted in a run folder
would otherwise be read forever, or block. :func:`read_json_lines` reads a file of JSON objects,
one per line, that may still be being appended to. :func:`read_safetensors`
reads through Python's own file handling, so a folder whose name is not UTF-8
(which safetensors' own path functions refuse) works like any other.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load

from lgn.parsing import load_json

__all__ = ["atomic_write", "write_json", "append_text", "read_file", "read_json_lines", "read_safetensors",
           "MAX_JSON_BYTES"]

MAX_JSON_BYTES = 64 << 20  # no JSON file lgn writes comes near: a checkpoint's is kilobytes, an analysis megabytes


def _named(error: OSError, path: Path) -> OSError:
    """``error`` with ``path`` in its message (an ``OSError`` of the same errno)."""
    return OSError(error.errno, f"cannot write {path}: {error.strerror or error}")


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one.

    The file is written 0644 (less the umask) to ``path``.tmp, synced and
    renamed. An ``OSError`` names ``path``; the temporary file is then removed.
    Whatever stood at ``path``.tmp (a killed run's leftover, or a symbolic
    link planted there) is unlinked first, and the temporary file is created
    afresh, never through a link (``O_EXCL | O_NOFOLLOW``): a link pointing
    outside the folder is never written through.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        tmp.unlink(missing_ok=True)  # the entry itself, never what a link points to
        with open(os.open(tmp, flags, 0o644), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise _named(e, path) from None


def _jsonable(x):
    """Non-finite floats become None (strict JSON has no inf/nan); numpy scalars become Python's."""
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def write_json(data: dict, path: str | os.PathLike) -> Path:
    """Write ``data`` to ``path`` as indented strict JSON (``inf``/``nan`` as ``null``), atomically.

    numpy scalars are written as Python numbers. A crash leaves the old file or
    the new one, never a torn one (:func:`atomic_write`).
    """
    path = Path(path)
    atomic_write(path, (json.dumps(_jsonable(data), indent=2, allow_nan=False) + "\n").encode())
    return path


def append_text(path: Path, text: str) -> None:
    """Append ``text`` to ``path``; an ``OSError`` names ``path``."""
    try:
        with open(path, "a") as f:
            f.write(text)
    except OSError as e:
        raise _named(e, Path(path)) from None


def read_file(path: str | os.PathLike, limit: int | None = None) -> bytes:
    """The bytes of ``path`` if it is a regular file (links followed) of at most ``limit`` bytes.

    Anything else (a device such as ``/dev/zero``, a FIFO, a folder) is refused
    with ``ValueError`` naming ``path``, without reading it; opening never waits
    for a FIFO's writer. ``OSError`` if it cannot be opened.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with open(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{path} is not a regular file")
        if limit is not None and info.st_size > limit:
            raise ValueError(f"{path} holds {info.st_size} bytes, more than the {limit} it may (no file lgn "
                             f"writes there is that large)")
        data = f.read() if limit is None else f.read(limit + 1)
    if limit is not None and len(data) > limit:  # grown since
        raise ValueError(f"{path} holds more than the {limit} bytes it may")
    return data


def read_json_lines(path: str | os.PathLike, *, skip_damaged: bool = False) -> list[dict]:
    """The JSON objects of ``path``, one per non-blank line (none without the file).

    A line that is not a JSON object raises ``ValueError`` naming the file and
    line, or, with ``skip_damaged`` (for a file still being appended to, whose
    last line may be torn), is left out.
    """
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(read_file(path, MAX_JSON_BYTES).decode().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = load_json(line, f"{path} line {number}")
        except ValueError as e:  # invalid JSON, or nested too deeply
            if skip_damaged:
                continue
            raise ValueError(f"{path} is not valid JSON lines: line {number}: {e}") from None
        if isinstance(record, dict):
            records.append(record)
        elif not skip_damaged:
            raise ValueError(f"{path} line {number} is not a JSON object")
    return records


def read_safetensors(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[dict, dict]:
    """The tensors (on ``device``) and the string metadata of a safetensors file.

    Raises ``OSError`` if it cannot be read and ``safetensors.SafetensorError``
    if it is not a valid safetensors file.
    """
    data = read_file(path)
    tensors = load(data)  # validates the header and every tensor's extent first
    header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
    metadata = header.get("__metadata__") or {}
    return {k: v.to(device) for k, v in tensors.items()}, metadata
