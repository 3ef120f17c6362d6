"""A distance between the learned groups of two runs, blind to the order of the groups and to scale.

A run's generators form, per layer, a set: the K groups (and, for the per-channel
action, their C blocks) come in no meaningful order, and every generator is defined
only up to scale (docs/method.md §5). Each generator A ``(m, m)`` is therefore described by
scale-free features in four groups:

- its structure indices (:func:`lgn.analysis.measures.structure_indices`, seven
  ratios in [0, 1]: skew, symmetric, Toeplitz, circulant, DFT-diagonal, DFT-top,
  block);
- its singular-value spectrum normalised to unit length, σ/‖σ‖₂ (descending), which
  tells a permutation-like A (flat spectrum) from a projection-like one;
- its eigenvalue angles |arg λ|/π ∈ [0, 1], sorted: a conjugacy invariant (A and
  P·A·P⁻¹ share it), which tells orthogonal generators apart where the first two see
  only a flat spectrum (a quarter turn has angles 1/2, a reflection 0 and 1);
- its commutation residuals with the library's exact operators
  (:data:`COMMUTATION_OPERATORS` of :mod:`lgn.groups.operators`, acting on every
  channel's k×k block), ‖A·O − O·A‖_F / (2‖A‖_F) ∈ [0, 1]: not conjugacy invariant, they
  tell which pixel geometry A respects, so a rotation-like group is told from a
  shift-like one of the same order and spectrum.

The cost of pairing two generators is the root mean square of the four normalised
squared differences,

    cost(a, b) = sqrt( ( ‖Δindices‖²/7 + ‖Δspectrum‖²/2 + ‖Δangles‖²/m + ‖Δresiduals‖²/R ) / 4 )  ∈ [0, 1],

(a spectrum difference is at most √2: both are non-negative unit vectors; a shorter
spectrum or angle list is padded with zeros, m is the longer; R residuals). Per layer,
the two sets are paired by the optimal assignment (Hungarian algorithm,
:func:`scipy.optimize.linear_sum_assignment`); a larger set has its surplus left
unmatched. The distance is the mean matched cost, averaged over layers:

    d(r, s) = mean over layers l of  min over pairings π of  mean_i cost(a_i^l, b_π(i)^l).

So d(r, r) = 0, d is symmetric, and it does not change when the groups of a layer
are permuted or any generator is multiplied by c > 0. (It is a pseudo-distance:
generators with equal features are at distance 0.) A distance under :data:`RESOLUTION`
is float64 rounding (runs of the same permutations come out about 1e-17 apart, with a
sign that differs between CPUs) and is returned as 0.

:func:`dependence_test` asks of a set of runs whether their distances depend on the
data or on the task beyond the seed-to-seed floor (a permutation test). Pure numpy
and scipy.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from lgn.analysis.measures import INDEX_NAMES, singular_values, structure_indices
from lgn.groups.operators import named_operator

__all__ = ["generator_features", "eigen_angles", "commutation_residuals", "run_features", "feature_distance",
           "feature_parts", "group_distance", "distance_matrix", "dependence_test", "FEATURE_PARTS",
           "COMMUTATION_OPERATORS", "RESOLUTION"]

N_INDICES = len(INDEX_NAMES)
# the exact operators whose commutators with a generator are features (rot270 and rot180's are implied by rot90's)
COMMUTATION_OPERATORS = ("rot90", "flip-x", "flip-y", "transpose", "anti-transpose", "shift-x", "shift-y")
N_RESIDUALS = len(COMMUTATION_OPERATORS)
# distances closer than this are equal: float64 rounding in the features (eigenvalues above all) leaves about
# 1e-17 between runs whose generators are the same permutations, and its sign differs from one CPU to another
RESOLUTION = 1e-12


def eigen_angles(a) -> np.ndarray:
    """|arg λ| / π of the eigenvalues λ of ``a`` ``(m, m)``, ascending, in [0, 1] (0 for λ = 0)."""
    a = np.asarray(a, dtype=np.float64)
    return np.sort(np.abs(np.angle(np.linalg.eigvals(a))) / np.pi)


def _kernel_size(m: int, kernel_size: int | None) -> int | None:
    if kernel_size is not None:
        return int(kernel_size) if m % (kernel_size * kernel_size) == 0 else None
    k = math.isqrt(m)
    return k if k * k == m else None


def commutation_residuals(a, kernel_size: int | None = None) -> np.ndarray:
    """‖A·O − O·A‖_F / (2‖A‖_F) for O each of :data:`COMMUTATION_OPERATORS` on every channel's k×k block.

    ``(R,)`` in [0, 1]; 0 where A commutes with O. All zeros for an all-zero A, and for a
    size that is not C·k² (no kernel geometry to compare with).
    """
    a = np.asarray(a, dtype=np.float64)
    m = a.shape[0]
    k = _kernel_size(m, kernel_size)
    norm = float(np.linalg.norm(a))
    if k is None or norm == 0:
        return np.zeros(N_RESIDUALS)
    eye = np.eye(m // (k * k))
    out = []
    for name in COMMUTATION_OPERATORS:
        o = np.kron(eye, named_operator(name, k))
        out.append(np.linalg.norm(a @ o - o @ a) / (2 * norm))
    return np.clip(np.array(out), 0.0, 1.0)


def generator_features(a, kernel_size: int | None = None) -> np.ndarray:
    """The scale-free features of one generator ``(m, m)``: 7 structure indices, σ/‖σ‖₂ ``(m,)``, the eigenvalue
    angles ``(m,)`` and the commutation residuals ``(R,)``: ``(7 + 2m + R,)``."""
    indices = structure_indices(a, kernel_size)
    s = singular_values(a)
    norm = float(np.linalg.norm(s))
    spectrum = s / norm if norm > 0 else s
    return np.concatenate([[indices[n] for n in INDEX_NAMES], spectrum, eigen_angles(a),
                           commutation_residuals(a, kernel_size)])


def run_features(A, kernel_size: int | None = None) -> list[np.ndarray]:
    """Per layer, the features of every generator of ``A`` ``(L, K, C', m, m)``: a list of ``(K·C', 7 + 2m + R)``."""
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 5 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"generators must have shape (L, K, C', m, m), got {A.shape}")
    L, K, Cb, m = A.shape[:4]  # layers, groups, action blocks, matrix size
    return [np.stack([generator_features(a, kernel_size) for a in A[l].reshape(K * Cb, m, m)]) for l in range(L)]


def _split(f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features ``(n, 7 + 2m + R)`` → indices, spectra, angles, residuals."""
    m = (f.shape[1] - N_INDICES - N_RESIDUALS) // 2
    return f[:, :N_INDICES], f[:, N_INDICES:N_INDICES + m], f[:, N_INDICES + m:N_INDICES + 2 * m], \
        f[:, N_INDICES + 2 * m:]


def _squared(f: np.ndarray, g: np.ndarray, scale: float | None = None) -> np.ndarray:
    """Σ (f_i − g_j)² ``(n, n')`` after padding the shorter with zeros, divided by ``scale`` (default: the width)."""
    width = max(f.shape[1], g.shape[1])
    f = np.pad(f, ((0, 0), (0, width - f.shape[1])))
    g = np.pad(g, ((0, 0), (0, width - g.shape[1])))
    return np.sum((f[:, None] - g[None]) ** 2, axis=-1) / (scale or width)


FEATURE_PARTS = ("indices", "spectrum", "angles", "residuals")  # the four feature groups, in the order of the cost


def _parts(f: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Each feature group's normalised squared difference ``(4, n, n')`` (:data:`FEATURE_PARTS`)."""
    (fi, fs, fa, fr), (gi, gs, ga, gr) = _split(f), _split(g)
    return np.stack([_squared(fi, gi), _squared(fs, gs, 2.0), _squared(fa, ga), _squared(fr, gr)])


def _cost_matrix(f: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``cost(f_i, g_j)`` for features ``f`` ``(n, 7 + 2m + R)`` and ``g`` ``(n', 7 + 2m' + R)``: ``(n, n')``."""
    return np.sqrt(np.clip(_parts(f, g).sum(axis=0) / 4.0, 0.0, 1.0))


def feature_parts(f: list[np.ndarray], g: list[np.ndarray]) -> dict[str, float]:
    """What the distance of two runs (:func:`feature_distance`) is made of: per feature group of
    :data:`FEATURE_PARTS`, its share of the squared cost, ``‖Δpart‖²/(4·width)``, averaged over the matched
    generator pairs and the layers. The four add up to the mean squared matched cost."""
    from scipy.optimize import linear_sum_assignment

    if len(f) != len(g):
        raise ValueError(f"runs with {len(f)} and {len(g)} layers cannot be compared layer by layer")
    per_layer = []
    for fl, gl in zip(f, g):
        parts = _parts(fl, gl) / 4.0  # (4, n, n')
        rows, cols = linear_sum_assignment(np.sqrt(np.clip(parts.sum(axis=0), 0.0, 1.0)))
        per_layer.append(parts[:, rows, cols].mean(axis=1))
    return dict(zip(FEATURE_PARTS, np.mean(per_layer, axis=0).tolist()))


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
    d = float(np.mean(per_layer))
    return d if d > RESOLUTION else 0.0  # runs whose generators agree up to rounding are at distance 0


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


def _pair_masks(labels: np.ndarray, strata: np.ndarray, seeds: np.ndarray):
    """Pairs i < j of one stratum and different seeds, and which of them have equal labels."""
    n = len(labels)
    upper = np.triu(np.ones((n, n), dtype=bool), 1)
    pairs = upper & (strata[:, None] == strata[None, :]) & (seeds[:, None] != seeds[None, :])
    return pairs


def _gap(d: np.ndarray, pairs: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    same = labels[:, None] == labels[None, :]
    within, between = d[pairs & same], d[pairs & ~same]
    return float(between.mean() - within.mean()), float(between.mean()), float(within.mean())


def _arrangements(labels: list) -> list[tuple]:
    """Every distinct ordering of the multiset ``labels``."""
    if not labels:
        return [()]
    out = []
    for first in sorted(set(labels), key=str):
        rest = list(labels)
        rest.remove(first)
        out += [(first, *tail) for tail in _arrangements(rest)]
    return out


def dependence_test(d, labels, strata, seeds, *, max_exact: int = 20000, n_random: int = 9999,
                    seed: int = 0) -> dict:
    """Do runs of different ``labels`` lie farther apart than runs of one label, beyond the seed-to-seed floor?

    ``d`` ``(n, n)`` are run distances; ``labels`` the factor under test (the dataset, for
    data dependence), ``strata`` what is held fixed (the task), ``seeds`` each run's seed.
    Only pairs of one stratum and different seeds are compared (runs of one seed share
    their start). The statistic is the mean distance between runs of different labels
    minus the mean between runs of one label (the seed-to-seed floor); its p-value is
    one-sided, from the labels permuted within each stratum: exactly over every distinct
    arrangement when there are at most ``max_exact`` (p = share of arrangements with a gap
    ≥ the observed one, the observed included), else from ``n_random`` random ones
    (p = (1 + count) / (1 + n_random)). ``min_p`` is the smallest p the design allows (exactly: one over
    the number of distinct ways the labels split the pairs, since renaming the labels ties).

    Returns ``{"gap", "between", "floor", "p", "min_p", "arrangements", "exact", "pairs"}``, or
    ``{"p": None, "reason": ...}`` when there is nothing to compare.
    """
    d = np.asarray(d, dtype=np.float64)
    labels, strata, seeds = (np.asarray(x, dtype=object) for x in (labels, strata, seeds))
    n = len(labels)
    if d.shape != (n, n) or len(strata) != n or len(seeds) != n:
        raise ValueError(f"expected a ({n}, {n}) distance matrix and {n} labels, strata and seeds; got {d.shape}, "
                         f"{len(strata)} strata and {len(seeds)} seeds")
    pairs = _pair_masks(labels, strata, seeds)
    same = labels[:, None] == labels[None, :]
    if not (pairs & same).any() or not (pairs & ~same).any():
        return {"p": None, "reason": "needs, within one stratum, pairs of runs of different seeds both with equal "
                                     "and with different labels (two seeds and two labels at least)"}
    gap, between, floor = _gap(d, pairs, labels)
    groups = [np.flatnonzero(strata == s) for s in dict.fromkeys(strata.tolist())]
    counts = [math.factorial(len(g)) // math.prod(math.factorial(c) for c in
                                                   np.unique(labels[g].astype(str), return_counts=True)[1])
              for g in groups]
    total = math.prod(counts)
    perm = labels.copy()
    if total <= max_exact:
        per_stratum = [_arrangements(list(labels[g])) for g in groups]
        gaps, partitions = [], set()
        for choice in itertools.product(*per_stratum):
            for g, arrangement in zip(groups, choice):
                perm[g] = arrangement
            equal = perm[:, None] == perm[None, :]
            partitions.add((equal & pairs).tobytes())
            gaps.append(_gap(d, pairs, perm)[0] if (pairs & equal).any() and (pairs & ~equal).any() else -np.inf)
        gaps = np.array(gaps)
        # arrangements that only rename the labels split the pairs alike and tie: p is at least 1 / #splits
        p, min_p, exact, count = float(np.mean(gaps >= gap - RESOLUTION)), 1.0 / len(partitions), True, total
    else:
        rng = np.random.default_rng(seed)
        hits = 0
        for _ in range(n_random):
            for g in groups:
                perm[g] = labels[g][rng.permutation(len(g))]
            hits += _gap(d, pairs, perm)[0] >= gap - RESOLUTION
        p, min_p, exact, count = (1 + hits) / (1 + n_random), 1.0 / (1 + n_random), False, n_random
    return {"gap": gap, "between": between, "floor": floor, "p": p, "min_p": min_p, "arrangements": count,
            "exact": exact, "pairs": int(pairs.sum())}
