"""User data as one ``.npz`` file: ``x_train``, ``x_test`` and optionally ``y_train``, ``y_test``."""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from lgn.data.dataset import Dataset, from_arrays

__all__ = ["load_npz", "NPZ_ARRAYS"]

NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def _check_headers(path: Path, name: str) -> None:
    """Refuse object arrays, and arrays whose ``.npy`` header promises more data than the file holds.

    numpy allocates the array a header describes before reading its data, so a
    damaged header claiming 10¹⁵ elements would otherwise exhaust memory.
    """
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if not info.filename.endswith(".npy"):
                continue
            array = info.filename[:-len(".npy")]
            with z.open(info) as f:
                try:
                    version = np.lib.format.read_magic(f)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(f)
                except ValueError as e:
                    raise ValueError(f"{name}: array {array} is not a readable .npy array ({e})") from None
                held = info.file_size - f.tell()
            if dtype.hasobject:
                raise ValueError(f"{name}: {array} holds object arrays, which would need pickle; "
                                 f"save plain numeric arrays")
            needed = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
            if needed > held:
                raise ValueError(f"{name}: array {array} of shape {shape} needs {needed} bytes, the file holds "
                                 f"{held} (truncated or damaged)")


def load_npz(path: str | os.PathLike) -> Dataset:
    """Load and check an npz dataset; never unpickles (``allow_pickle=False``).

    ``x_*`` are ``(N, H, W)`` or ``(N, C, H, W)`` numbers; ``y_*`` are ``(N,)``
    integer labels, optional (both or neither) for reconstruction. Unknown array
    names are refused, so a misspelt one is not silently ignored.
    """
    path = Path(path)
    name = f"npz:{path}"
    if not path.is_file():
        raise FileNotFoundError(f"{name}: no such file")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{name}: not an .npz file (a zip archive of .npy arrays, as numpy.savez writes)")
    try:
        _check_headers(path, name)
        with np.load(path, allow_pickle=False) as f:
            names = set(f.files)
            unknown = sorted(names - set(NPZ_ARRAYS))
            if unknown:
                raise ValueError(f"{name}: unknown array(s) {', '.join(unknown)}; expected {', '.join(NPZ_ARRAYS)}")
            missing = [k for k in ("x_train", "x_test") if k not in names]
            if missing:
                raise ValueError(f"{name}: missing array(s) {', '.join(missing)}")
            arrays = {k: f[k] if k in names else None for k in NPZ_ARRAYS}
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise ValueError(f"{name}: holds object arrays, which would need pickle; "
                             f"save plain numeric arrays") from None
        if str(e).startswith(name):
            raise
        raise ValueError(f"{name}: unreadable array ({e})") from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as e:
        # RuntimeError: an encrypted member; NotImplementedError: a compression zipfile cannot read
        raise ValueError(f"{name}: not a readable .npz file ({e})") from None
    return from_arrays(name, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"])
