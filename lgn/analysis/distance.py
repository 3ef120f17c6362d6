"""A distance between the learned groups of two runs, blind to the order of the groups and to scale.

A run's generators form, per layer, a set: the K groups (and, for the per-channel
action, their C blocks) come in no meaningful order, and every generator is defined
only up to scale (docs/method.md §5). Each generator A ``(m, m)`` is therefore described by
scale-free features:

- its structure indices (:func:`lgn.analysis.measures.structure_indices`, seven
  ratios in [0, 1]: skew, symmetric, Toeplitz, circulant, DFT-diagonal, DFT-top,
  block), and
- its singular-value spectrum normalised to unit length, σ/‖σ‖₂ (descending), which
  tells a permutation-like A (flat spectrum) from a projection-like one.

The cost of pairing two generators is the root mean square of the two normalised
squared differences,

    cost(a, b) = sqrt( ( ‖Δindices‖² / 7 + ‖Δspectrum‖² / 2 ) / 2 )  ∈ [0, 1],

(a spectrum difference is at most √2: both are non-negative unit vectors; a shorter
spectrum is padded with zeros). Per layer, the two sets are paired by the optimal
assignment (Hungarian algorithm, :func:`scipy.optimize.linear_sum_assignment`); a
larger set has its surplus left unmatched. The distance is the mean matched cost,
averaged over layers:

    d(r, s) = mean over layers l of  min over pairings π of  mean_i cost(a_i^l, b_π(i)^l).

So d(r, r) = 0, d is symmetric, and it does not change when the groups of a layer
are permuted or any generator is multiplied by c > 0. (It is a pseudo-distance:
generators with equal features are at distance 0.) Pure numpy and scipy.
"""

from __future__ import annotations

import numpy as np

from lgn.analysis.measures import INDEX_NAMES, singular_values, structure_indices

__all__ = ["generator_features", "run_features", "feature_distance", "group_distance", "distance_matrix"]

N_INDICES = len(INDEX_NAMES)


def generator_features(a, kernel_size: int | None = None) -> np.ndarray:
    """The scale-free features of one generator ``(m, m)``: 7 structure indices, then σ/‖σ‖₂ ``(m,)``."""
    indices = structure_indices(a, kernel_size)
    s = singular_values(a)
    norm = float(np.linalg.norm(s))
    spectrum = s / norm if norm > 0 else s
    return np.concatenate([[indices[n] for n in INDEX_NAMES], spectrum])


def run_features(A, kernel_size: int | None = None) -> list[np.ndarray]:
    """Per layer, the features of every generator of ``A`` ``(L, K, C', m, m)``: a list of ``(K·C', 7 + m)``."""
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 5 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"generators must have shape (L, K, C', m, m), got {A.shape}")
    L, K, Cb, m = A.shape[:4]  # layers, groups, action blocks, matrix size
    return [np.stack([generator_features(a, kernel_size) for a in A[l].reshape(K * Cb, m, m)]) for l in range(L)]


def _cost_matrix(f: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``cost(f_i, g_j)`` for features ``f`` ``(n, 7 + m)`` and ``g`` ``(n', 7 + m')``: ``(n, n')``."""
    fi, gi = f[:, :N_INDICES], g[:, :N_INDICES]
    fs, gs = f[:, N_INDICES:], g[:, N_INDICES:]
    width = max(fs.shape[1], gs.shape[1])
    fs = np.pad(fs, ((0, 0), (0, width - fs.shape[1])))
    gs = np.pad(gs, ((0, 0), (0, width - gs.shape[1])))
    d_idx = np.sum((fi[:, None] - gi[None]) ** 2, axis=-1) / N_INDICES  # (n, n')
    d_spec = np.sum((fs[:, None] - gs[None]) ** 2, axis=-1) / 2.0  # (n, n')
    return np.sqrt(np.clip((d_idx + d_spec) / 2.0, 0.0, 1.0))


def feature_distance(f: list[np.ndarray], g: list[np.ndarray]) -> float:
    """The distance of two runs from their :func:`run_features` (same number of layers)."""
    from scipy.optimize import linear_sum_assignment

    if len(f) != len(g):
        raise ValueError(f"runs with {len(f)} and {len(g)} layers cannot be compared layer by layer")
    per_layer = []
    for fl, gl in zip(f, g):
        cost = _cost_matrix(fl, gl)
        rows, cols = linear_sum_assignment(cost)
        per_layer.append(float(cost[rows, cols].mean()))
    return float(np.mean(per_layer))


def group_distance(A1, A2, kernel_size: int | None = None) -> float:
    """d between the generators ``A1`` and ``A2`` ``(L, K, C', m, m)`` of two runs (see the module doc)."""
    return feature_distance(run_features(A1, kernel_size), run_features(A2, kernel_size))


def distance_matrix(features: list[list[np.ndarray]]) -> np.ndarray:
    """All pairwise distances ``(n, n)`` of ``n`` runs given by their :func:`run_features`."""
    n = len(features)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = feature_distance(features[i], features[j])
    return out
