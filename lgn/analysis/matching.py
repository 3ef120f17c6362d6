"""The nearest known operation: which exact matrix of the library a generator resembles most.

Similarity is the cosine of matrices, ⟨A, M⟩_F / (‖A‖_F‖M‖_F): scale-invariant,
1 for A = c·M with c > 0, −1 for c < 0. Matching ranks library entries by |cos|;
a negative best match is named with a leading ``'-'`` (A ≈ −M) and its
similarity reported as |cos|.

A joint-action generator on C channels (m = C·k²) is compared with I_C ⊗ M, the
operation applied to every channel alike: ⟨A, I_C ⊗ M⟩ = ⟨Σ_c A_cc, M⟩ and
‖I_C ⊗ M‖ = √C·‖M‖.

Whole-matrix similarity weighs all m² entries alike, but a layer's filters
only use A on the orbit's span: the code sees A·B, A²·B, …, A^(p−1)·B, so
A is shaped on span{B, A·B, …, A^(p−2)·B}, at most p − 1 of m dimensions.
:func:`orbit_residual` names a generator by what it does there: with the
orbit X = [B, A·B, …, A^(p−2)·B] ``(m, p−1)``, the residual of operation T is

    min over c of ‖A·X − c·T·X‖_F / ‖A·X‖_F = sqrt(1 − cos²(A·X, T·X)),

0 when A acts on the orbit exactly as a multiple of T, and 1 when T·X is
orthogonal to A·X. :func:`orbit_null` calibrates it on random generators and
random bases, so a learned generator's residual can be read against chance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lgn.analysis.measures import orbit_vectors
from lgn.groups import operators

__all__ = ["Match", "cosine_similarity", "similarity_matrix", "nearest_operation", "nearest_operations",
           "orbit_library", "orbit_residuals", "orbit_residual", "orbit_null"]


@dataclass(frozen=True)
class Match:
    name: str          # library name, '-' prefixed when the generator is ≈ −operation
    similarity: float  # |cosine similarity| in [0, 1]

    def to_dict(self) -> dict:
        return {"name": self.name, "similarity": self.similarity}


def cosine_similarity(a, b) -> float:
    """⟨A, B⟩_F / (‖A‖_F‖B‖_F) for two arrays of the same shape; 0 if either is zero."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare shapes {a.shape} and {b.shape}")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(np.sum(a * b) / (na * nb)) if na > 0 and nb > 0 else 0.0


def _diagonal_sum(a: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """(G, m, m) with m = C·n → (Σ_c A_cc of shape (G, n, n), C)."""
    G, m, _ = a.shape  # generators, matrix size
    if m % n:
        raise ValueError(f"{m}×{m} generators do not act on operators of size {n}×{n}")
    c = m // n
    blocks = a.reshape(G, c, n, c, n)
    return np.einsum("gcicj->gij", blocks), c


def similarity_matrix(generators, operations) -> np.ndarray:
    """Signed cosine similarity of every generator with every operation.

    Args:
        generators: ``(G, m, m)`` (or one ``(m, m)``), m = C·n.
        operations: ``(E, n, n)``, compared as I_C ⊗ M when C > 1; or a scipy sparse array ``(E, n²)``
            of the operations flattened row-major (:func:`lgn.groups.operators.library_matrix`).

    Returns:
        ``(G, E)`` cosines; rows or columns of zero matrices are 0.
    """
    from scipy import sparse

    a = np.asarray(generators, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if sparse.issparse(operations):
        flat = sparse.csr_array(operations, dtype=np.float64)  # (E, n²)
        n = int(round(flat.shape[1] ** 0.5))
        shape_ok = n * n == flat.shape[1]
        op_norms = np.sqrt(flat.multiply(flat).sum(axis=1)).ravel()  # (E,)
    else:
        ops = np.asarray(operations, dtype=np.float64)
        shape_ok = ops.ndim == 3 and ops.shape[-1] == ops.shape[-2]
        n = ops.shape[-1]
        flat = ops.reshape(ops.shape[0], -1)  # (E, n²)
        op_norms = np.linalg.norm(flat, axis=1)
    if a.ndim != 3 or a.shape[-1] != a.shape[-2] or not shape_ok:
        raise ValueError(f"expected generators (G, m, m) and operations (E, n, n) or sparse (E, n²), "
                         f"got {a.shape} and {operations.shape}")
    norms = np.linalg.norm(a.reshape(a.shape[0], -1), axis=1)  # (G,)
    diag, c = _diagonal_sum(a, n)  # (G, n, n)
    op_norms = op_norms * np.sqrt(c)
    dots = np.asarray((flat @ diag.reshape(diag.shape[0], -1).T).T)  # (G, E)
    denom = norms[:, None] * op_norms[None, :]
    return np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)


def nearest_operations(generators, kernel_size: int, *, library: dict[str, np.ndarray] | None = None,
                       top: int = 1) -> list[list[Match]]:
    """The ``top`` best library matches of each generator ``(G, m, m)``, best first.

    ``library`` (name → n×n matrix) defaults to the sparse form of :func:`lgn.groups.operators.library`
    for ``kernel_size`` (:func:`lgn.groups.operators.library_matrix`), which fits in memory at any size.
    """
    if library is None:
        names, ops = operators.library_matrix(kernel_size)
        names = list(names)
    else:
        names = list(library)
        ops = np.stack([library[name] for name in names]) if names else None
    if not names:
        raise ValueError("the operation library is empty")
    sims = similarity_matrix(generators, ops)  # (G, E)
    order = np.argsort(-np.abs(sims), axis=1, kind="stable")[:, :top]
    out = []
    for row, idx in zip(sims, order):
        out.append([Match(("-" if row[j] < 0 else "") + names[j], float(abs(row[j]))) for j in idx])
    return out


def nearest_operation(a, kernel_size: int | None = None, *,
                      library: dict[str, np.ndarray] | None = None) -> Match:
    """The library operation most similar to one generator ``a`` ``(m, m)``.

    ``kernel_size`` defaults to √m (per-channel action); pass it for a joint
    generator, m = C·k².
    """
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"expected a square matrix (m, m), got shape {a.shape}")
    if kernel_size is None:
        kernel_size = int(round(a.shape[0] ** 0.5))
        if kernel_size ** 2 != a.shape[0]:
            raise ValueError(f"cannot infer the kernel size of a {a.shape[0]}×{a.shape[0]} generator; "
                             "pass kernel_size")
    return nearest_operations(a[None], kernel_size, library=library)[0][0]


def orbit_library(kernel_size: int, m: int) -> tuple[list[str], np.ndarray]:
    """The library's names and its operations as ``(E, m, m)`` acting on every channel alike (I_C ⊗ T)."""
    names, rows = operators.library_matrix(kernel_size)
    n = kernel_size * kernel_size
    if m % n:
        raise ValueError(f"{m}×{m} generators do not act on {kernel_size}×{kernel_size} kernels")
    ops = rows.toarray().reshape(len(names), n, n)  # (E, n, n)
    c = m // n
    if c > 1:
        ops = np.einsum("ab,eij->eaibj", np.eye(c), ops).reshape(len(names), m, m)  # I_C ⊗ T
    return list(names), ops


def orbit_residuals(a, base, order: int, kernel_size: int, *, library: tuple[list[str], np.ndarray] | None = None
                    ) -> np.ndarray:
    """sqrt(1 − cos²(A·X, T·X)) for every library operation T, X = [b, A·b, …, A^(p−2)·b] (module doc).

    Args:
        a: one generator ``(m, m)``, m = C·k².
        base: its base filter ``(m,)`` (any shape with m entries, flattened row-major).
        order: p ≥ 2, the number of filters in the orbit.
        kernel_size: k.
        library: ``(names, ops (E, m, m))``; default the library of :mod:`lgn.groups.operators`.

    Returns:
        ``(E,)`` residuals in [0, 1]; all 1 when A·X is zero (A does nothing on the orbit).
    """
    if order < 2:
        raise ValueError(f"order must be at least 2 (an orbit with a step), got {order}")
    a = np.asarray(a, dtype=np.float64)
    x = np.ascontiguousarray(orbit_vectors(a, base, order - 1).T)  # (m, p−1): the orbit A acts on
    _, ops = library or orbit_library(kernel_size, a.shape[0])
    y = a @ x  # (m, p−1)
    t = ops @ x  # (E, m, p−1)
    ny, nt2 = np.linalg.norm(y), np.sum(t * t, axis=(1, 2))  # (), (E,)
    if ny == 0:
        return np.ones(len(ops))
    c = np.divide(np.einsum("mi,emi->e", y, t), nt2, out=np.zeros(len(ops)), where=nt2 > 0)  # best scales (E,)
    return np.clip(np.linalg.norm(y[None] - c[:, None, None] * t, axis=(1, 2)) / ny, 0.0, 1.0)


def orbit_residual(a, base, order: int, kernel_size: int, *,
                   library: tuple[list[str], np.ndarray] | None = None) -> Match:
    """The library operation that best explains what ``a`` does on ``base``'s orbit, and its residual.

    ``Match.similarity`` holds the residual here (0 best): see :func:`orbit_residuals`.
    """
    lib = library or orbit_library(kernel_size, np.asarray(a).shape[0])
    r = orbit_residuals(a, base, order, kernel_size, library=lib)
    best = int(np.argmin(r))
    return Match(lib[0][best], float(r[best]))


def orbit_null(m: int, order: int, kernel_size: int, *, samples: int = 500, seed: int = 0) -> np.ndarray:
    """The best-match residual of ``samples`` random generators on random bases: ``(samples,)``, the chance level.

    Generators have i.i.d. N(0, 1/m) entries (spectral radius about 1, so the orbit
    neither blows up nor vanishes), bases i.i.d. N(0, 1); same m, p and library as
    the generators they calibrate.
    """
    rng = np.random.default_rng(seed)
    lib = orbit_library(kernel_size, m)
    return np.array([orbit_residual(rng.normal(0.0, m ** -0.5, (m, m)), rng.normal(size=m), order, kernel_size,
                                    library=lib).similarity for _ in range(samples)])
