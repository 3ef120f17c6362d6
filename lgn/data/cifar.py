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


class _ArrayStub:
    """Stands in for ``numpy.ndarray`` while unpickling: it records what a BUILD gives it.

    numpy's own ``__setstate__`` (of an array, and worse of a dtype, whose
    ``np.dtype('u1', ...)`` is numpy's process-wide uint8 singleton) would run on whatever
    a damaged or crafted file holds: a fuzzed dtype state changed the shared uint8 dtype
    for the whole process and later crashed it. The stubs keep numpy out of the
    unpickler; :func:`_to_array` then checks the recorded state and builds a fresh array.
    """

    def __init__(self, *args):
        self.args, self.state = args, None

    def __setstate__(self, state):
        self.state = state


class _DtypeStub(_ArrayStub):
    """Stands in for ``numpy.dtype``: a call ``dtype(*args)`` and its BUILD state, recorded."""


def _reconstruct(cls, shape, typecode):
    """``numpy.core.multiarray._reconstruct`` as an array pickle calls it: an empty array to BUILD."""
    if cls is not _ArrayStub or shape != (0,) or typecode != b"b":
        raise pickle.UnpicklingError("an ndarray reconstructor with arguments outside the CIFAR format")
    return _ArrayStub()


def _frombuffer(buffer, dtype, shape, order):
    """``numpy.core.numeric._frombuffer`` (protocol-5 array pickles), recorded like a BUILD."""
    array = _ArrayStub()
    array.state = (1, shape, dtype, order == "F", buffer)
    return array


_UINT8 = ("u1", False, True)  # how a pickled dtype('uint8') is constructed ...
_UINT8_STATE = (3, "|", None, None, None, -1, -1, 0)  # ... and its BUILD state


def _to_array(value) -> np.ndarray | None:
    """The uint8 array an :class:`_ArrayStub` describes, or None if it is not one."""
    if not isinstance(value, _ArrayStub) or isinstance(value, _DtypeStub) or not isinstance(value.state, tuple) \
            or len(value.state) != 5:
        return None
    version, shape, dtype, fortran, raw = value.state
    if version != 1 or not isinstance(dtype, _DtypeStub) or dtype.args != _UINT8 \
            or dtype.state not in (None, _UINT8_STATE) or fortran not in (False, 0):
        return None
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        return None
    if isinstance(raw, (bytearray, memoryview)):
        raw = bytes(raw)
    if not isinstance(raw, bytes) or len(raw) != int(np.prod(shape, dtype=np.int64)):
        return None
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape).copy()


def _latin1_bytes(text, encoding):
    """``_codecs.encode`` as Python 3 pickles bytes with protocol < 3, limited to that use."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("refusing _codecs.encode other than (str, 'latin1')")
    return codecs.encode(text, "latin1")


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler for the CIFAR python-batch format: dicts, lists, strings, bytes and arrays.

    The only globals it resolves are numpy's array reconstructors and dtype (under
    their numpy 1 and numpy 2 module names), each bound to a recording stand-in that
    runs no numpy code (:class:`_ArrayStub`), and the latin-1 ``encode`` that Python 3
    uses for bytes in protocol 2; anything else raises :class:`pickle.UnpicklingError`
    before any code runs. Arrays come out as :class:`_ArrayStub`, for
    :func:`_to_array` to check.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy.core.numeric", "_frombuffer"): _frombuffer,
        ("numpy._core.numeric", "_frombuffer"): _frombuffer,
        ("numpy", "ndarray"): _ArrayStub,
        ("numpy", "dtype"): _DtypeStub,
        ("_codecs", "encode"): _latin1_bytes,
    }

    def find_class(self, module: str, name: str):
        resolved = self.ALLOWED.get((module, name))
        if resolved is None:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}: not part of the CIFAR format")
        return resolved

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
    if isinstance(data, _ArrayStub):
        data = _to_array(data)
        if data is None:
            raise ValueError(f"{path}: 'data' is an array outside the CIFAR format: not uint8 C-order bytes "
                             f"that fill its shape")
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
