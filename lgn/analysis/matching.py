"""The nearest known operation: which exact matrix of the library a generator resembles most.

Similarity is the cosine of matrices, ⟨A, M⟩_F / (‖A‖_F‖M‖_F): scale-invariant,
1 for A = c·M with c > 0, −1 for c < 0. Matching ranks library entries by |cos|;
a negative best match is named with a leading ``'-'`` (A ≈ −M) and its
similarity reported as |cos|.

A joint-action generator on C channels (m = C·k²) is compared with I_C ⊗ M, the
operation applied to every channel alike: ⟨A, I_C ⊗ M⟩ = ⟨Σ_c A_cc, M⟩ and
‖I_C ⊗ M‖ = √C·‖M‖.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lgn.groups import operators

__all__ = ["Match", "cosine_similarity", "similarity_matrix", "nearest_operation", "nearest_operations"]


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
