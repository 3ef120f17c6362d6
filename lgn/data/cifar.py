"""CIFAR-10 in its python-batch format, read with a restricted unpickler.

Each batch file is a pickle of a dict with ``data`` (a uint8 ndarray of shape
``(N, 3072)``, channel-major 3×32×32) and ``labels`` (a list of ints), plus the
strings ``batch_label`` and ``filenames``. Unpickling can run arbitrary code, so
:class:`RestrictedUnpickler` resolves only the few globals that an ndarray in
such a file needs and refuses every other.
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
import pickletools
from pathlib import Path

import numpy as np

from lgn.data.dataset import Dataset, from_arrays

__all__ = ["RestrictedUnpickler", "read_cifar_batch", "load_cifar10"]

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"


def _multiarray(name: str):
    try:  # numpy >= 2
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray, numeric
    return {"_reconstruct": multiarray._reconstruct, "_frombuffer": numeric._frombuffer}[name]


def _latin1_bytes(text, encoding):
    """``_codecs.encode`` as Python 3 pickles bytes with protocol < 3, limited to that use."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("refusing _codecs.encode other than (str, 'latin1')")
    return codecs.encode(text, "latin1")


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler for the CIFAR python-batch format: dicts, lists, strings, bytes and ndarrays.

    The only globals it resolves are numpy's array reconstructors and dtype
    (under their numpy 1 and numpy 2 module names) and the latin-1 ``encode``
    that Python 3 uses for bytes in protocol 2; anything else raises
    :class:`pickle.UnpicklingError` before any code runs.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): lambda: _multiarray("_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"): lambda: _multiarray("_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"): lambda: _multiarray("_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"): lambda: _multiarray("_frombuffer"),
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        ("_codecs", "encode"): lambda: _latin1_bytes,
    }

    def find_class(self, module: str, name: str):
        resolve = self.ALLOWED.get((module, name))
        if resolve is None:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}: not part of the CIFAR format")
        return resolve()

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refusing persistent ids: not part of the CIFAR format")


def _check_memo(data: bytes) -> None:
    """Refuse memo indices a pickler never writes, before unpickling.

    A pickler numbers memo entries 0, 1, 2, ...; the C unpickler sizes its memo
    table by the largest index it meets, so a damaged ``LONG_BINPUT 4e9`` would
    allocate tens of gigabytes. :func:`pickletools.genops` reads the opcodes
    without running any.
    """
    puts = 0
    for opcode, arg, pos in pickletools.genops(data):
        if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            if opcode.name != "MEMOIZE" and not 0 <= arg <= puts:
                raise pickle.UnpicklingError(f"memo index {arg} at byte {pos}, after {puts} memo entries")
            puts += 1


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One batch file as ``(images (N, 3, 32, 32) uint8, labels (N,) int64)``.

    Raises ``ValueError`` for a file that is not a CIFAR batch, including any
    pickle that names a global outside the format.
    """
    path = Path(path)
    data = path.read_bytes()
    try:
        _check_memo(data)
        batch = RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:  # noqa: BLE001
        # a damaged stream fails inside the unpickler in many ways (UnpicklingError, EOFError, OverflowError,
        # struct.error, a REDUCE of an allowed callable with wrong arguments, ...); each means the same
        raise ValueError(f"{path}: not a CIFAR python batch: {e}") from None
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: not a CIFAR python batch: expected a dict, got {type(batch).__name__}")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: 'data' must be a uint8 array of shape (N, 3072), got {got}")
    if not isinstance(labels, list) or len(labels) != len(data) \
            or not all(isinstance(v, int) and 0 <= v < 10 for v in labels):
        raise ValueError(f"{path}: 'labels' must be a list of {len(data)} ints in 0..9")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def load_cifar10(data_dir: str | os.PathLike | None = None) -> Dataset:
    """CIFAR-10 from ``data_dir`` (or its ``cifar-10-batches-py`` sub-folder), scaled to [0, 1]."""
    if data_dir is None:
        raise FileNotFoundError("cifar10: give --data-dir, the folder holding data_batch_1..5 and test_batch "
                                "(the python version of CIFAR-10)")
    directory = Path(data_dir)
    if not (directory / TEST_BATCH).is_file() and (directory / "cifar-10-batches-py" / TEST_BATCH).is_file():
        directory = directory / "cifar-10-batches-py"
    missing = [n for n in TRAIN_BATCHES + (TEST_BATCH,) if not (directory / n).is_file()]
    if missing:
        raise FileNotFoundError(f"cifar10: {directory} lacks {', '.join(missing)} (python-batch CIFAR-10)")
    train = [read_cifar_batch(directory / n) for n in TRAIN_BATCHES]
    x_test, y_test = read_cifar_batch(directory / TEST_BATCH)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return from_arrays("cifar10", x_train / np.float32(255), y_train, x_test / np.float32(255), y_test,
                       num_classes=10, value_range=1.0)
