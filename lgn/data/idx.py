"""The IDX format of MNIST and Fashion-MNIST: our own reader, gzipped or not.

An IDX file is two zero bytes, a type code, the number of dimensions d, then d
big-endian uint32 sizes and the data, big-endian, in row-major order.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from lgn.data.dataset import Dataset, from_arrays

__all__ = ["read_idx", "load_mnist_folder", "MNIST_FILES"]

# type code -> big-endian numpy dtype
_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

# the four files of an MNIST-format folder; each may be gzipped (.gz) and some
# mirrors write "-idx3-ubyte" as ".idx3-ubyte"
MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({e})") from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into an array of its shape, native byte order."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'empty'})")
    dtype, ndim = np.dtype(_TYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({ndim} dimensions, {len(data)} bytes)")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = header + math.prod(shape) * dtype.itemsize  # Python ints: no wrap-around at 2**64
    if len(data) != expected:
        raise ValueError(f"{path}: IDX shape {shape} needs {expected} bytes, the file has {len(data)}"
                         f" ({'truncated' if len(data) < expected else 'trailing data'})")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(directory: Path, stem: str) -> Path | None:
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def load_mnist_folder(directory: str | os.PathLike, name: str, *, missing_hint: str = "") -> Dataset:
    """An MNIST-format folder (the four IDX files, gzipped or not) as a :class:`Dataset` in [0, 1].

    ``missing_hint`` is appended to the error raised when a file is absent.
    """
    directory = Path(directory)
    arrays, paths = {}, {}
    for key, stem in MNIST_FILES.items():
        path = _find(directory, stem)
        if path is None:
            raise FileNotFoundError(f"{name}: no {stem}[.gz] in {directory}{missing_hint}")
        arrays[key], paths[key] = read_idx(path), path
    for split in ("train", "test"):
        x = arrays[f"x_{split}"]
        if x.ndim != 3:
            raise ValueError(f"{name}: {paths[f'x_{split}']} must hold (N, H, W) images, got shape {x.shape}")
    x_train, x_test, value_range = arrays["x_train"], arrays["x_test"], None
    if x_train.dtype == np.uint8:  # pixel bytes: scale to [0, 1]
        x_train, x_test, value_range = x_train / np.float32(255), x_test / np.float32(255), 1.0
    return from_arrays(name, x_train, arrays["y_train"], x_test, arrays["y_test"], value_range=value_range,
                       files=paths)
