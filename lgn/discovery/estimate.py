"""Estimate a finite cyclic group from data, with no prior on which group it is.

Data made of symmetric copies, x = T**j · t_c + noise, form tight clusters
{T**j t_c}, and T permutes the cluster centres in cycles of length p. If T is
orthogonal (every pixel permutation is: shifts, rotations by 90°, flips, any
scrambling of pixels), it also preserves every inner product between centres:
⟨T μ_a, T μ_b⟩ = ⟨μ_a, μ_b⟩. So:

1. cluster the data: each class into p clusters (or, without labels, all data
   into a multiple of p clusters) → centres μ ``(m, n)``;
2. find the permutation π of the centres, made of p-cycles (one per class),
   that best preserves their Gram matrix G = μ μᵀ:
   minimise Σ_ab (G[π a, π b] − G[a, b])², by beam search;
3. fit the orthogonal map A with A μ_a ≈ μ_π(a) (Procrustes, closed form);
4. round A's rotation angles to multiples of 2π/p, so that A**p = I exactly;
5. refine: alternate assigning every point to its nearest orbit centre A**j·t_o and refitting
   (:func:`refine`).

Whether the result is a group at all is judged against a null computed from the same
centres (:func:`null_residuals`, used by :func:`lgn.discovery.verdict.judge`).

Nothing here knows shifts, rotations or permutations; only the order p is given.
Pure numpy (scikit-learn for k-means, scipy for the real Schur form).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["GroupEstimate", "cluster_centres", "find_cycles", "fit_orthogonal", "nearest_finite_order",
           "refine", "null_residuals", "estimate_group"]


@dataclass
class GroupEstimate:
    """What :func:`estimate_group` found.

    generator: A ``(n, n)``, orthogonal with A**order = I.
    centres: cluster centres μ ``(m, n)``.
    clusters: for each class (or the single unlabelled pool), the indices of its centres.
    cycles: π ``(m,)``: the generator maps centre a to centre ``cycles[a]``.
    gram_residual: ‖G[π, π] − G‖ / ‖G‖: 0 when π preserves every inner product.
    fit_residual: ‖A μ − μ[π]‖ / ‖μ‖ over all centres, after rounding to order p.
    order: p.
    null: residuals of the same fit where no map is present, when the method that made the
        estimate brings its own (``--method learn``); None: :func:`null_residuals` draws them.
    measure: what ``fit_residual`` and ``null`` measure: "clusters" (the residual above, the null of
        :func:`null_residuals`) or "distribution" (``--method learn`` and ``episodic``: the held-out
        within-class MMD² between {x} and {A^i·x}, the null that of random generators of the same order;
        :func:`lgn.discovery.search.held_out_loss`).
    two_sample_p: for measure "distribution", the permutation p-value of the held-out test that {A^i·x}
        has the distribution of {x} (small: A moves the data off their distribution); else NaN.
    """

    generator: np.ndarray
    centres: np.ndarray
    clusters: list[np.ndarray]
    cycles: np.ndarray
    gram_residual: float
    fit_residual: float
    order: int
    null: np.ndarray | None = None
    measure: str = "clusters"
    two_sample_p: float = float("nan")

    def orbit_of(self, centre: int) -> list[int]:
        """The centres visited from ``centre`` by repeated application of the generator."""
        out = [centre]
        while len(out) < self.order:
            out.append(int(self.cycles[out[-1]]))
        return out


def cluster_centres(x: np.ndarray, labels: np.ndarray | None, order: int, *, n_clusters: int | None = None,
                    seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """k-means centres ``(m, n)`` of ``x`` ``(N, n)`` and the clusters each class owns.

    With ``labels``: ``order`` clusters per class. Without: ``n_clusters`` (a
    multiple of ``order``) clusters of the whole set, all in one pool.
    """
    from sklearn.cluster import KMeans

    x = np.asarray(x, dtype=np.float64)
    if labels is not None:
        centres, owned = [], []
        for c in np.unique(labels):
            xc = x[labels == c]
            if len(xc) < order:
                raise ValueError(f"class {c} has {len(xc)} examples; need at least the group size {order}")
            km = KMeans(order, n_init=10, random_state=seed).fit(xc)
            owned.append(np.arange(len(centres) * order, (len(centres) + 1) * order))
            centres.append(km.cluster_centers_)
        return np.concatenate(centres), owned
    if n_clusters is None or n_clusters % order or n_clusters < order:
        raise ValueError(f"unlabelled data need n_clusters, a positive multiple of the order {order}; "
                         f"got {n_clusters!r}")
    km = KMeans(n_clusters, n_init=10, random_state=seed).fit(x)
    return km.cluster_centers_, [np.arange(n_clusters)]


def find_cycles(gram: np.ndarray, clusters: list[np.ndarray], order: int, *, width: int = 64
                ) -> tuple[np.ndarray, float]:
    """The permutation of centres, all of whose cycles have length ``order`` and stay inside one
    cluster pool, that best preserves ``gram`` ``(m, m)``; beam search of ``width``.

    Each beam builds one cycle at a time: from the first centre no cycle holds yet, it maps the
    chain's last centre to a fresh centre of the same pool, ``order`` − 1 times, then back to the
    chain's first. A pool holds a multiple of ``order`` centres, so a fresh centre is always left
    and every beam ends in a permutation (mapping centres in a fixed order instead let chains
    grow that could no longer close, and large unlabelled pools ended with no beam at all).

    Returns ``(pi (m,), cost)`` with cost Σ_ab (G[π a, π b] − G[a, b])².
    """
    m = gram.shape[0]
    pool_of = np.full(m, -1)
    for i, idx in enumerate(clusters):
        if len(idx) % order:
            raise ValueError(f"each pool must hold a multiple of {order} centres, got {len(idx)}")
        pool_of[idx] = i
    sequence = np.array([int(a) for idx in clusters for a in idx], dtype=int)
    # a beam: (cost, pi, inv, head, current, length): pi/inv the partial map (−1 unassigned), the open
    # chain runs head → … → current over ``length`` edges (current is None between chains)
    beams: list[tuple] = [(0.0, np.full(m, -1), np.full(m, -1), None, None, 0)]
    for _ in range(m):
        candidates = []
        for cost, pi, inv, head, current, length in beams:
            if current is None:  # start the next cycle at the first centre no cycle holds
                head = current = int(sequence[(pi[sequence] < 0).argmax()])
                length = 0
            if length == order - 1:
                targets = np.array([head])
            else:
                pool = clusters[pool_of[current]]
                targets = pool[(pi[pool] < 0) & (inv[pool] < 0) & (pool != current)]
            done = np.flatnonzero(pi >= 0)  # centres already mapped
            # new pairs: (a, b) and (b, a) for b done, and (a, a), for a = current mapped to each target
            inc = 2.0 * np.sum((gram[np.ix_(targets, pi[done])] - gram[current, done]) ** 2, axis=1)
            inc += (gram[targets, targets] - gram[current, current]) ** 2
            for target, extra in zip(targets.tolist(), inc.tolist()):
                closes = target == head and length == order - 1
                candidates.append((cost + extra, pi, inv, head, current, target, length, closes))
        candidates.sort(key=lambda c: c[0])
        beams = []
        for cost, pi, inv, head, current, target, length, closes in candidates[:width]:
            pi, inv = pi.copy(), inv.copy()
            pi[current], inv[target] = target, current
            beams.append((cost, pi, inv, None if closes else head, None if closes else target,
                          0 if closes else length + 1))
    cost, pi = beams[0][0], beams[0][1]
    return pi, cost


def fit_orthogonal(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The orthogonal A ``(n, n)`` minimising ‖A · sourceᵀ − targetᵀ‖ for rows ``(m, n)`` (Procrustes)."""
    u, _, vt = _svd(target.T @ source)  # (n, n)
    return u @ vt


def _svd(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.linalg.svd(m)``; where LAPACK's divide-and-conquer driver (gesdd) does not converge, as it
    sometimes does not on rank-deficient products of centres, the slower QR-iteration driver (gesvd)."""
    try:
        return np.linalg.svd(m)
    except np.linalg.LinAlgError:
        from scipy.linalg import svd

        return svd(m, lapack_driver="gesvd")


def nearest_finite_order(a: np.ndarray, order: int) -> np.ndarray:
    """An orthogonal matrix with A**order = I exactly, near the orthogonal ``a``.

    In the real Schur form a = Z·D·Zᵀ of an orthogonal matrix D is block
    diagonal: 2×2 rotations and ±1. Each rotation angle is rounded to the
    nearest multiple of 2π/order (−1 is kept only for even orders).
    """
    from scipy.linalg import schur

    d, z = schur(a, output="real")
    n = a.shape[0]
    out = np.zeros_like(d)
    i = 0
    while i < n:
        if i + 1 < n and abs(d[i + 1, i]) > 1e-9:
            theta = math.atan2(d[i + 1, i] - d[i, i + 1], d[i, i] + d[i + 1, i + 1])
            t = 2.0 * math.pi * round(theta * order / (2.0 * math.pi)) / order
            out[i:i + 2, i:i + 2] = [[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]]
            i += 2
        else:
            out[i, i] = -1.0 if d[i, i] < 0 and order % 2 == 0 else 1.0
            i += 1
    return z @ out @ z.T


def _orbits(estimate: GroupEstimate) -> list[list[int]]:
    """The cycles of ``estimate.cycles``, each as the centres it visits in order, pool by pool."""
    seen, out = set(), []
    for pool in estimate.clusters:
        for a in pool:
            if int(a) not in seen:
                orbit = estimate.orbit_of(int(a))
                seen.update(orbit)
                out.append(orbit)
    return out


def _residual(a: np.ndarray, centres: np.ndarray, pi: np.ndarray) -> float:
    return float(np.linalg.norm(centres @ a.T - centres[pi]) / (np.linalg.norm(centres) or 1.0))


def refine(x: np.ndarray, labels: np.ndarray | None, estimate: GroupEstimate, *, iterations: int = 10
           ) -> GroupEstimate:
    """Alternate assignment and fit on all points: clusters constrained to be orbits of the generator.

    Each cycle o of the estimate becomes a template t_o and its p predicted centres A**j·t_o. Every
    point (of its class, or of the whole set unlabelled) joins its nearest predicted centre; the
    centres are the means of their points; A is refitted (Procrustes, rounded to order p) on
    centre → next centre; t_o is the mean of A**−j μ_(o,j). k-means alone splits a class by
    handwriting style as readily as by the hidden map (a digit 1 or 8 looks the same turned by
    180°); the orbit constraint makes each cluster one power of the map. Stops early when the
    assignment no longer changes.
    """
    p = estimate.order
    orbits = _orbits(estimate)  # list of p centre indices, in the generator's order
    a = estimate.generator
    index = np.array(orbits)  # (orbits, p): centre ids
    centres = estimate.centres.copy()
    pool_of_orbit = np.zeros(len(orbits), dtype=int)
    for i, pool in enumerate(estimate.clusters):
        pool_of_orbit[np.isin(index[:, 0], pool)] = i
    classes = np.unique(labels) if labels is not None else None
    members = [np.flatnonzero(labels == classes[i]) if labels is not None else np.arange(len(x))
               for i in range(len(estimate.clusters))]
    previous = None
    for _ in range(iterations):
        powers = [np.eye(len(a))]
        for _ in range(p - 1):
            powers.append(a @ powers[-1])
        templates = np.mean([centres[index[:, j]] @ powers[j] for j in range(p)], axis=0)  # A^-j = (A^j)ᵀ
        assign = np.full(len(x), -1)
        for i, idx in enumerate(members):
            own = np.flatnonzero(pool_of_orbit == i)
            predicted = np.concatenate([templates[own] @ powers[j].T for j in range(p)])  # (p·own, n), power-major
            ids = np.concatenate([index[own, j] for j in range(p)])
            d = (x[idx] ** 2).sum(1)[:, None] - 2 * x[idx] @ predicted.T + (predicted ** 2).sum(1)[None, :]
            assign[idx] = ids[np.argmin(d, axis=1)]
        if previous is not None and np.array_equal(assign, previous):
            break
        previous = assign
        for c in range(len(centres)):
            if np.any(assign == c):
                centres[c] = x[assign == c].mean(axis=0)
        a = nearest_finite_order(fit_orthogonal(centres, centres[estimate.cycles]), p)
    gram = centres @ centres.T
    pi = estimate.cycles
    gram_residual = float(np.linalg.norm(gram[np.ix_(pi, pi)] - gram) / (np.linalg.norm(gram) or 1.0))
    return GroupEstimate(a, centres, estimate.clusters, pi, gram_residual, _residual(a, centres, pi), p)


def null_residuals(estimate: GroupEstimate, *, draws: int = 19, width: int = 64, seed: int = 0) -> np.ndarray:
    """Fit residuals ``(draws,)`` of the same search on centres that keep the data's statistics but no map.

    Each draw replaces every cycle's p centres μ_(o,·) by μ̄_o + W·(μ_(o,·) − μ̄_o) with W a random p×p
    orthogonal matrix: the same mean, the same spread (scatter matrix) and the same directions, but
    mixed so that no map cycles them (unless W is a cyclic permutation, which has probability 0).
    The cycle search, the Procrustes fit and the rounding then run as on the data. The estimate's own
    residual, against this distribution, says whether its cycle is more than the best a search finds
    among p arbitrary centres of that spread.
    """
    from scipy.stats import ortho_group

    rng = np.random.default_rng(seed)
    p = estimate.order
    orbits = np.array(_orbits(estimate))  # (orbits, p)
    out = np.empty(draws)
    for d in range(draws):
        centres = estimate.centres.copy()
        for orbit in orbits:
            mean = centres[orbit].mean(axis=0)
            w = ortho_group.rvs(p, random_state=rng)
            centres[orbit] = mean + w @ (centres[orbit] - mean)
        gram = centres @ centres.T
        pi, _ = find_cycles(gram, estimate.clusters, p, width=width)
        a = nearest_finite_order(fit_orthogonal(centres, centres[pi]), p)
        out[d] = _residual(a, centres, pi)
    return out


def estimate_group(x, labels, order: int, *, n_clusters: int | None = None, width: int = 64,
                   seed: int = 0, refine_iterations: int = 10) -> GroupEstimate:
    """Estimate the cyclic group of ``order`` that the data ``x`` ``(N, n)`` are symmetric under.

    ``labels`` ``(N,)`` or None (then ``n_clusters`` is required). See the module
    docstring for the method; ``refine_iterations`` of :func:`refine` follow (0: none).
    """
    if not isinstance(order, (int, np.integer)) or order < 2:
        raise ValueError(f"the group size must be an integer >= 2, got {order!r}")
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)  # (N, n)
    labels = None if labels is None else np.asarray(labels)
    centres, clusters = cluster_centres(x, labels, order, n_clusters=n_clusters, seed=seed)
    gram = centres @ centres.T  # (m, m)
    pi, _ = find_cycles(gram, clusters, order, width=width)
    a = nearest_finite_order(fit_orthogonal(centres, centres[pi]), order)
    scale = np.linalg.norm(gram) or 1.0
    gram_residual = float(np.linalg.norm(gram[np.ix_(pi, pi)] - gram) / scale)
    estimate = GroupEstimate(a, centres, clusters, pi, gram_residual, _residual(a, centres, pi), int(order))
    return refine(x, labels, estimate, iterations=refine_iterations) if refine_iterations else estimate
