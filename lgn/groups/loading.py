"""A group generator read from a file: the ``groups.npz`` of ``lgn discover``, or one (n, n) matrix.

The one module of :mod:`lgn.groups` that reads a file, kept apart so the rest stays
pure mathematics. ``generator="file:PATH"`` in the layers and the model config ends
here (:func:`load_generator`); a matrix given directly is checked by
:func:`check_order`. Files are read with numpy's loader and never unpickled.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["load_generator", "check_order", "matrix_order", "ORDER_ATOL"]

ORDER_ATOL = 1e-5  # |A**m − I| entries below this count as the identity (a float32 file's rounding is ~1e-7)


def matrix_order(a: np.ndarray, limit: int) -> int | None:
    """The smallest m in 1..``limit`` with A**m = I (to :data:`ORDER_ATOL`), or None. ``a``: ``(n, n)``."""
    eye = np.eye(a.shape[0])
    power = eye
    for m in range(1, limit + 1):
        power = a @ power
        if np.abs(power - eye).max() <= ORDER_ATOL:
            return m
    return None


def check_order(matrix, order: int, what: str = "the generator") -> np.ndarray:
    """``matrix`` as a float64 ``(n, n)`` array, after checking it is finite, square and of order ``order``.

    Raises ``ValueError`` naming ``what`` (e.g. the file) and what was found: the
    shape, or the order (searched up to 4·``order``), or that it has none there.
    """
    a = np.asarray(matrix.detach().cpu() if hasattr(matrix, "detach") else matrix, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 1:
        raise ValueError(f"{what}: expected one (n, n) matrix, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{what}: the matrix has non-finite entries")
    found = matrix_order(a, max(4 * order, 8))
    if found is None:
        raise ValueError(f"{what}: A**m ≠ I for every m ≤ {max(4 * order, 8)}; expected a generator of order "
                         f"group_size={order}")
    if found != order:
        raise ValueError(f"{what}: the generator has order {found}, expected group_size={order}")
    return a


def _read(path: Path) -> np.ndarray:
    """The matrix stored at ``path``: an ``.npy`` array, an ``.npz`` of one array, or a ``groups.npz``'s layer 0."""
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"generator file {path} does not exist") from None
    except (OSError, ValueError) as e:
        raise ValueError(f"generator file {path} is not a numpy .npy or .npz file: {e}") from None
    if isinstance(data, np.ndarray):
        return data
    with data:
        if "A" in data.files:  # groups.npz of lgn discover / lgn analyze: A (L, K, C', n, n)
            a = data["A"]
            if a.ndim != 5:
                raise ValueError(f"{path}: A must have shape (layers, groups, blocks, n, n), got {a.shape}")
            layer = a[0].reshape(-1, *a.shape[-2:])  # every generator of layer 0
            if np.abs(layer - layer[:1]).max() > ORDER_ATOL:
                raise ValueError(f"{path}: layer 0 holds {len(layer)} different generators; save the one to use "
                                 f"as an (n, n) .npy")
            return layer[0]
        if len(data.files) != 1:
            raise ValueError(f"{path}: expected an array 'A' (a groups.npz) or exactly one array, got "
                             f"{', '.join(data.files) or 'none'}")
        return data[data.files[0]]


def load_generator(path: str | os.PathLike, order: int) -> np.ndarray:
    """The ``(n, n)`` float64 generator stored at ``path``, checked to have order ``order``.

    ``path``: a ``groups.npz`` written by ``lgn discover`` (layer 0's generator), or an
    ``.npy`` / ``.npz`` holding one (n, n) matrix. Every error names the file.
    """
    path = Path(path)
    return check_order(_read(path), order, f"generator file {path}")
