"""Exact linear operators on k×k kernels, as n×n matrices (n = k²).

Every matrix here acts on a kernel flattened row-major (pixel (r, c) has index
r·k + c), so ``(M @ x.reshape(n)).reshape(k, k)`` applies the operation to ``x``.
These are the reference points of the project: fixed generators for baselines,
planted groups for the discovery benchmark, and the library the analysis matches
learned generators against. Pure numpy, float64.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "identity",
    "shift",
    "rotation",
    "flip",
    "transpose",
    "average_pool",
    "cyclic_permutation",
    "permutation_matrix",
    "named_operator",
    "OPERATOR_NAMES",
]


def _check_size(k: int) -> None:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"kernel size must be a positive integer, got {k!r}")


def _from_pixel_map(k: int, fn) -> np.ndarray:
    """Build M with M[out, in] = weight for each (out pixel, in pixel, weight) fn yields."""
    n = k * k
    m = np.zeros((n, n))
    for r in range(k):
        for c in range(k):
            for (rr, cc, w) in fn(r, c):
                m[r * k + c, rr * k + cc] += w
    return m


def identity(k: int) -> np.ndarray:
    """The n×n identity."""
    _check_size(k)
    return np.eye(k * k)


def shift(k: int, dx: int, dy: int, *, cyclic: bool = True) -> np.ndarray:
    """Translate by ``dx`` columns (right) and ``dy`` rows (down).

    out[r, c] = x[r − dy, c − dx]; indices wrap when ``cyclic``, and pixels that
    come from outside the kernel are zero otherwise.
    """
    _check_size(k)

    def src(r, c):
        rr, cc = r - dy, c - dx
        if cyclic:
            yield rr % k, cc % k, 1.0
        elif 0 <= rr < k and 0 <= cc < k:
            yield rr, cc, 1.0

    return _from_pixel_map(k, src)


def rotation(k: int, degrees: float) -> np.ndarray:
    """Rotate counter-clockwise by ``degrees`` about the kernel centre.

    Multiples of 90° are exact permutations (``np.rot90``). Other angles sample
    the input at the inversely rotated position with bilinear interpolation;
    samples outside the kernel are zero.
    """
    _check_size(k)
    quarter = degrees / 90.0
    if abs(quarter - round(quarter)) < 1e-12:
        turns = int(round(quarter)) % 4
        eye = np.eye(k * k).reshape(k * k, k, k)
        # column j of M is the rotated j-th basis image
        return np.stack([np.rot90(e, turns).reshape(-1) for e in eye], axis=1)
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    centre = (k - 1) / 2.0

    def src(r, c):
        # image coordinates: x to the right, y up (rows go down)
        x, y = c - centre, centre - r
        # inverse rotation of the output position gives the source position
        xs, ys = cos * x + sin * y, -sin * x + cos * y
        cs, rs = xs + centre, centre - ys
        r0, c0 = math.floor(rs), math.floor(cs)
        fr, fc = rs - r0, cs - c0
        for dr, wr in ((0, 1 - fr), (1, fr)):
            for dc, wc in ((0, 1 - fc), (1, fc)):
                rr, cc, w = r0 + dr, c0 + dc, wr * wc
                if w > 1e-12 and 0 <= rr < k and 0 <= cc < k:
                    yield rr, cc, w

    return _from_pixel_map(k, src)


def flip(k: int, axis: str = "x") -> np.ndarray:
    """Mirror: ``axis='x'`` reverses columns (left↔right), ``'y'`` reverses rows."""
    _check_size(k)
    if axis not in ("x", "y"):
        raise ValueError(f"flip axis must be 'x' or 'y', got {axis!r}")
    if axis == "x":
        return _from_pixel_map(k, lambda r, c: [(r, k - 1 - c, 1.0)])
    return _from_pixel_map(k, lambda r, c: [(k - 1 - r, c, 1.0)])


def transpose(k: int, anti: bool = False) -> np.ndarray:
    """Reflect about the main diagonal, or about the anti-diagonal when ``anti``."""
    _check_size(k)
    if anti:
        return _from_pixel_map(k, lambda r, c: [(k - 1 - c, k - 1 - r, 1.0)])
    return _from_pixel_map(k, lambda r, c: [(c, r, 1.0)])


def average_pool(k: int, radius: int) -> np.ndarray:
    """Stride-1 box average of side 2·radius + 1, centred on each pixel.

    Only pixels inside the kernel are averaged (no zero padding counted), so
    constants are preserved: every row of M sums to 1.
    """
    _check_size(k)
    if radius < 0:
        raise ValueError(f"pooling radius must be >= 0, got {radius}")

    def src(r, c):
        rows = range(max(0, r - radius), min(k, r + radius + 1))
        cols = range(max(0, c - radius), min(k, c + radius + 1))
        w = 1.0 / (len(rows) * len(cols))
        for rr in rows:
            for cc in cols:
                yield rr, cc, w

    return _from_pixel_map(k, src)


def permutation_matrix(perm: np.ndarray) -> np.ndarray:
    """M with (M x)[i] = x[perm[i]]."""
    perm = np.asarray(perm)
    n = perm.shape[0]
    if sorted(perm.tolist()) != list(range(n)):
        raise ValueError(f"not a permutation of 0..{n - 1}: {perm.tolist()}")
    m = np.zeros((n, n))
    m[np.arange(n), perm] = 1.0
    return m


def cyclic_permutation(n: int, order: int, seed: int = 0) -> np.ndarray:
    """A random pixel permutation made of ⌊n/order⌋ disjoint cycles of length ``order``.

    The remaining n mod order pixels are fixed, so the matrix has order exactly
    ``order``. Deterministic for a given seed.
    """
    if order < 1 or order > n:
        raise ValueError(f"order must be in 1..{n}, got {order}")
    rng = np.random.default_rng(seed)
    pixels = rng.permutation(n)
    perm = np.arange(n)
    for start in range(0, n - n % order, order):
        cycle = pixels[start:start + order]
        perm[cycle] = np.roll(cycle, 1)
    return permutation_matrix(perm)


# name -> builder(k); the CLI and configs refer to operators by these names.
def _named():
    table = {
        "identity": lambda k: identity(k),
        "rot90": lambda k: rotation(k, 90),
        "rot180": lambda k: rotation(k, 180),
        "rot270": lambda k: rotation(k, 270),
        "flip-x": lambda k: flip(k, "x"),
        "flip-y": lambda k: flip(k, "y"),
        "transpose": lambda k: transpose(k),
        "anti-transpose": lambda k: transpose(k, anti=True),
        "shift-x": lambda k: shift(k, 1, 0),
        "shift-y": lambda k: shift(k, 0, 1),
    }
    return table


OPERATOR_NAMES = tuple(_named())


def named_operator(name: str, k: int) -> np.ndarray:
    """The operator called ``name`` (one of ``OPERATOR_NAMES``) on k×k kernels."""
    table = _named()
    if name not in table:
        raise ValueError(f"unknown operator {name!r}; expected one of {', '.join(table)}")
    return table[name](k)
