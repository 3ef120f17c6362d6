"""Numbers that say what a generator matrix is: structure indices and group-ness.

Every function takes one generator ``a`` of shape ``(m, m)`` acting on a filter
flattened as (channel, row, column), row-major, so m = C·k² with C = 1 for the
per-channel action (one k×k kernel) and C = in_channels for the joint action
(docs/method.md §3). The spatial indices (Toeplitz, circulant, DFT, blocks) read the k×k
geometry inside every (output channel, input channel) k²×k² block; for C = 1
that block is the whole matrix. Pure numpy, float64.

Every index is scale-invariant (a generator is only defined up to scale, docs/method.md §5)
and lies in [0, 1]; an all-zero matrix gets 0 everywhere.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from lgn.groups import operators
from lgn.settings import check_positive_int

__all__ = [
    "INDEX_NAMES",
    "GROUP_ERROR_NAMES",
    "skew_index",
    "symmetric_index",
    "toeplitz_index",
    "circulant_index",
    "dft_conjugate",
    "dft_diagonal_index",
    "dft_top_index",
    "block_index",
    "structure_indices",
    "singular_values",
    "finite_order_error",
    "orthogonality_error",
    "group_errors",
    "orbit_vectors",
    "orbit_norms",
]

INDEX_NAMES = ("skew", "symmetric", "toeplitz", "circulant", "dft_diagonal", "dft_top", "block")
GROUP_ERROR_NAMES = ("min_singular", "cond", "finite_order", "orthogonality")


def _matrix(a, kernel_size: int | None = None) -> tuple[np.ndarray, int, int]:
    """``a`` as float64 ``(m, m)``, with its kernel size k and channel count C = m / k²."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"expected a square matrix (m, m), got shape {a.shape}")
    m = a.shape[0]
    if kernel_size is None:
        k = math.isqrt(m)
        if k * k != m:
            raise ValueError(f"cannot infer the kernel size of a {m}×{m} generator; pass kernel_size")
    else:
        k = int(kernel_size)
        if k < 1 or m % (k * k):
            raise ValueError(f"a {m}×{m} generator does not act on {k}×{k} kernels "
                             f"(m must be a multiple of k² = {k * k})")
    return a, k, m // (k * k)


def _energy(a: np.ndarray) -> float:
    return float(np.sum(a * a))


def _ratio(part: float, whole: float) -> float:
    return float(min(1.0, max(0.0, part / whole))) if whole > 0 else 0.0


# --- symmetry -----------------------------------------------------------------

def skew_index(a) -> float:
    """‖(A − Aᵀ)/2‖_F / ‖A‖_F: 1 for a skew-symmetric A, 0 for a symmetric one."""
    a, _, _ = _matrix(a, kernel_size=1)
    return math.sqrt(_ratio(_energy((a - a.T) / 2), _energy(a)))


def symmetric_index(a) -> float:
    """‖(A + Aᵀ)/2‖_F / ‖A‖_F: 1 for a symmetric A, 0 for a skew-symmetric one.

    The two parts are orthogonal, so skew² + symmetric² = 1.
    """
    a, _, _ = _matrix(a, kernel_size=1)
    return math.sqrt(_ratio(_energy((a + a.T) / 2), _energy(a)))


# --- shift structure ----------------------------------------------------------

@functools.lru_cache(maxsize=32)
def _classes(k: int, channels: int, cyclic: bool) -> tuple[np.ndarray, np.ndarray]:
    """Class label of each entry of an m×m matrix, and the size of each class.

    Entry (i, j) with i = (c, r, x), j = (c', r', x') belongs to class
    (c, c', r − r', x − x') (Toeplitz), or (c, c', (r − r') mod k, (x − x') mod k)
    (circulant).
    """
    c, r, x = np.unravel_index(np.arange(channels * k * k), (channels, k, k))
    dr = r[:, None] - r[None, :]
    dx = x[:, None] - x[None, :]
    span = k if cyclic else 2 * k - 1
    dr = dr % k if cyclic else dr + k - 1
    dx = dx % k if cyclic else dx + k - 1
    label = ((c[:, None] * channels + c[None, :]) * span + dr) * span + dx  # (m, m)
    label = label.reshape(-1)
    counts = np.bincount(label, minlength=channels * channels * span * span)
    return label, counts


def _projection_energy(a: np.ndarray, k: int, channels: int, cyclic: bool) -> float:
    """Energy ‖P(A)‖²_F of the orthogonal projection of A onto matrices constant on each class.

    P replaces every entry by the mean of its class, so ‖P(A)‖² = Σ_class (Σ entries)² / size.
    """
    label, counts = _classes(k, channels, cyclic)
    sums = np.bincount(label, weights=a.reshape(-1), minlength=counts.shape[0])
    nonempty = counts > 0
    return float(np.sum(sums[nonempty] ** 2 / counts[nonempty]))


def toeplitz_index(a, kernel_size: int | None = None) -> float:
    """‖P_T(A)‖²_F / ‖A‖²_F, P_T the projection onto block-Toeplitz-with-Toeplitz-blocks matrices.

    A BTTB matrix has A[(r, x), (r', x')] = t(r − r', x − x'): it acts on the k×k
    kernel as a 2-D correlation with zero padding (every zero-padded shift, every
    convolution). 1 for such A; 0 for A orthogonal to all of them (zero sum along
    every 2-D diagonal). A random Gaussian matrix scores about (2k−1)²/k⁴.
    """
    a, k, channels = _matrix(a, kernel_size)
    return _ratio(_projection_energy(a, k, channels, cyclic=False), _energy(a))


def circulant_index(a, kernel_size: int | None = None) -> float:
    """‖P_C(A)‖²_F / ‖A‖²_F, P_C the projection onto doubly-circulant (BCCB) matrices.

    A BCCB matrix has A[(r, x), (r', x')] = t((r − r') mod k, (x − x') mod k): a
    cyclic 2-D convolution (every cyclic shift). Circulant matrices are Toeplitz,
    so this index never exceeds :func:`toeplitz_index`. It equals
    :func:`dft_diagonal_index`: the DFT diagonalises exactly the BCCB matrices.
    """
    a, k, channels = _matrix(a, kernel_size)
    return _ratio(_projection_energy(a, k, channels, cyclic=True), _energy(a))


# --- Fourier ------------------------------------------------------------------

def dft_conjugate(a, kernel_size: int | None = None) -> np.ndarray:
    """F·A·F⁻¹ (complex ``(m, m)``), F the unitary 2-D DFT on every channel's k×k kernel.

    F = I_C ⊗ F_k (:func:`lgn.groups.operators.dft`), F⁻¹ = Fᴴ. Frequencies are in
    ``np.fft`` order (0, 1, …, k−1 along each axis).
    """
    a, k, channels = _matrix(a, kernel_size)
    f = operators.dft(k)  # (k², k²)
    blocks = a.reshape(channels, k * k, channels, k * k)
    out = f @ blocks.transpose(0, 2, 1, 3) @ f.conj().T  # F·A_cd·Fᴴ per channel pair, (C, C, k², k²)
    out = out.transpose(0, 2, 1, 3)  # back to (C, k², C, k²)
    return out.reshape(a.shape)


def dft_diagonal_index(a, kernel_size: int | None = None) -> float:
    """Σ_i |(F·A·F⁻¹)_ii|² / ‖A‖²_F: the energy on the diagonal in the Fourier basis.

    1 for cyclic shifts and cyclic convolutions (the DFT diagonalises them), 0 for A
    with zero circulant part. For C > 1 the diagonals of all C×C blocks count.
    """
    a, k, channels = _matrix(a, kernel_size)
    n = k * k
    conj = dft_conjugate(a, k).reshape(channels, n, channels, n)
    diag = np.diagonal(conj, axis1=1, axis2=3)  # (C, C, n)
    return _ratio(float(np.sum(np.abs(diag) ** 2)), _energy(a))


def dft_top_index(a, kernel_size: int | None = None) -> float:
    """Fraction of the energy of F·A·F⁻¹ held by its m largest entries (m = C·k²).

    1 when F·A·F⁻¹ has one entry per row, i.e. A maps every Fourier mode to a
    multiple of one other: shifts, 90° rotations, flips, transposes. The floor is
    1/m, reached when the energy is spread evenly over all m² entries; a random
    Gaussian A scores about (1 + ln m)/m.
    """
    a, k, _ = _matrix(a, kernel_size)
    m = a.shape[0]
    power = np.sort(np.abs(dft_conjugate(a, k)).reshape(-1) ** 2)[::-1]
    return _ratio(float(power[:m].sum()), float(power.sum()))


# --- blocks -------------------------------------------------------------------

def block_index(a, kernel_size: int | None = None) -> float:
    """Energy concentration in the strongest k×k blocks, rescaled to [0, 1].

    Cut A into its (m/k)² blocks of k×k (block (R, R') maps kernel row R' to row
    R); let f be the fraction of ‖A‖²_F held by the m/k strongest blocks. The
    index is (f − k/m) / (1 − k/m): 1 when all energy sits in m/k blocks (a block
    diagonal or block permutation: a row-wise operation, a vertical shift, the
    "concentrated blocks" of reconstruction runs), 0 when every block holds the
    same energy (a 90° rotation, which moves every row into every column).
    """
    a, k, _ = _matrix(a, kernel_size)
    m = a.shape[0]
    tiles = m // k
    energy = np.sum((a * a).reshape(tiles, k, tiles, k), axis=(1, 3)).reshape(-1)  # (tiles²,)
    floor = k / m
    if floor >= 1.0:  # a single row of blocks (k = 1 with C = 1): nothing to concentrate
        return 1.0 if energy.sum() > 0 else 0.0
    if energy.sum() == 0:
        return 0.0
    f = _ratio(float(np.sort(energy)[::-1][:tiles].sum()), float(energy.sum()))
    return float(min(1.0, max(0.0, (f - floor) / (1.0 - floor))))


def structure_indices(a, kernel_size: int | None = None) -> dict[str, float]:
    """All indices of :data:`INDEX_NAMES` for one generator ``(m, m)``."""
    a, k, _ = _matrix(a, kernel_size)
    return {
        "skew": skew_index(a),
        "symmetric": symmetric_index(a),
        "toeplitz": toeplitz_index(a, k),
        "circulant": circulant_index(a, k),
        "dft_diagonal": dft_diagonal_index(a, k),
        "dft_top": dft_top_index(a, k),
        "block": block_index(a, k),
    }


# --- group-ness ---------------------------------------------------------------

def singular_values(a) -> np.ndarray:
    """σ_1 ≥ … ≥ σ_m of A."""
    a, _, _ = _matrix(a, kernel_size=1)
    return np.linalg.svd(a, compute_uv=False)


def _best_scale_error(m: np.ndarray, nonnegative: bool) -> float:
    """min over s of ‖s·M − I‖_F / ‖I‖_F, s ≥ 0 when ``nonnegative``.

    ‖sM − I‖² = s²‖M‖² − 2s·tr M + m is smallest at s* = tr M / ‖M‖², giving
    √(1 − (tr M)² / (m‖M‖²)); when s must be ≥ 0 and s* < 0 the best is s = 0, error 1.
    """
    size = m.shape[0]
    e = _energy(m)
    tr = float(np.trace(m))
    if e == 0 or (nonnegative and tr < 0):
        return 1.0
    return math.sqrt(max(0.0, 1.0 - tr * tr / (size * e)))


def finite_order_error(a, order: int) -> float:
    """min over c of ‖(cA)^p − I‖_F / ‖I‖_F with p = ``order``.

    With M = A^p and s = c^p: the best s is tr M / ‖M‖²_F, so the error is
    √(1 − (tr M)² / (m·‖M‖²_F)). For even p, s = c^p cannot be negative; if
    tr M < 0 the best is c = 0 and the error is 1. 0 exactly when A is a multiple
    of a matrix with A^p = I (a finite group of order dividing p, up to scale);
    1 for a nilpotent A. M is built with each power renormalised, which changes
    only its scale.
    """
    a, _, _ = _matrix(a, kernel_size=1)
    check_positive_int(order, "order")
    m = np.eye(a.shape[0])
    for _ in range(order):
        m = a @ m
        norm = np.linalg.norm(m)
        if norm == 0:
            return 1.0
        m /= norm
    return _best_scale_error(m, nonnegative=order % 2 == 0)


def orthogonality_error(a) -> float:
    """min over c of ‖(cA)ᵀ(cA) − I‖_F / ‖I‖_F: distance of the best-scaled A from orthogonal.

    With G = AᵀA and s = c² ≥ 0 the best s is tr G / ‖G‖²_F (never negative), so
    the error is √(1 − (tr G)² / (m·‖G‖²_F)) = √(1 − (Σσ_i²)² / (m·Σσ_i⁴)): 0 for a
    multiple of an orthogonal matrix (permutations, exact rotations), growing with
    the spread of the singular values, √(1 − r/m) for a rank-r projection.
    """
    a, _, _ = _matrix(a, kernel_size=1)
    return _best_scale_error(a.T @ a, nonnegative=True)


def group_errors(a, order: int) -> dict[str, float]:
    """The group-ness numbers of :data:`GROUP_ERROR_NAMES` for one generator ``(m, m)``.

    ``min_singular`` is σ_m of A as given (the paper keeps ‖A‖_F = 1, so this is
    comparable across runs), ``cond`` is σ_1/σ_m (``inf`` for a singular A),
    ``finite_order`` and ``orthogonality`` as in :func:`finite_order_error` and
    :func:`orthogonality_error`.
    """
    s = singular_values(a)
    return {
        "min_singular": float(s[-1]),
        "cond": float(s[0] / s[-1]) if s[-1] > 0 else math.inf,
        "finite_order": finite_order_error(a, order),
        "orthogonality": orthogonality_error(a),
    }


def orbit_vectors(a, base, count: int) -> np.ndarray:
    """The first ``count`` filters of ``base``'s orbit as rows, ``[b, A·b, …, A^(count−1)·b]``.

    ``a`` ``(m, m)``, ``base`` m entries (any shape, flattened row-major); returns ``(count, m)`` in float64.
    """
    a = np.asarray(a, dtype=np.float64)
    v = np.asarray(base, dtype=np.float64).reshape(-1)
    if a.ndim != 2 or a.shape != (v.size, v.size):
        raise ValueError(f"expected a generator (m, m) and a base filter of m entries, got {a.shape} and {v.size}")
    out = [v]
    for _ in range(count - 1):
        out.append(a @ out[-1])
    return np.stack(out[:count])  # (count, m)


def orbit_norms(a, base, order: int) -> np.ndarray:
    """‖A^i·b‖ / ‖b‖ for i = 0 … p−1: how the orbit's filter norms decay (or grow) along the powers.

    ``a`` ``(m, m)``, ``base`` m entries (flattened row-major); returns ``(p,)``, the first
    entry 1 (all zeros for a zero base). A code's energy per power is carried by
    filters of these norms: base filters are kept at unit norm, the powers are not
    renormalised, so a share of the code energy read without these norms mostly
    measures them.
    """
    check_positive_int(order, "order")
    norms = np.array([np.linalg.norm(v) for v in orbit_vectors(a, base, order)])  # (p,)
    return norms / norms[0] if norms[0] > 0 else np.zeros(order)
