"""A readable verdict on a discovered group: was one found, its order, the nearest known operation.

Every judgement here looks at what the generator does to the data's cluster
centres, the only place the data pin it down: a generator estimated from data
is arbitrary on directions the data never visit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from lgn.discovery.estimate import GroupEstimate, null_residuals
from lgn.groups import operators

__all__ = ["NULL_RATIO", "SAME_LEVEL", "STILL", "NULL_DRAWS", "MATCH_THRESHOLD", "Verdict", "action_similarity", "library_similarities", "orbit_order",
           "nearest_permutation", "judge"]

NULL_RATIO = 0.5        # a group is found when its residual is under this fraction of the null's median
SAME_LEVEL = 0.05       # a held-out distribution loss (measure "distribution") must pass the two-sample test here
STILL = 0.9             # mean cos(A·μ, μ) over the data at or above which the map counts as not moving them
NULL_DRAWS = 19         # null draws: below all of them is a one-sided p-value of 1/20 = 0.05
MATCH_THRESHOLD = 0.95  # action similarity at which a known operation (or a permutation) is named


def action_similarity(a: np.ndarray, op: np.ndarray, points: np.ndarray) -> float:
    """Mean over ``points`` ``(m, n)`` of cos(a·μ, op·μ): 1 when ``op`` acts like ``a`` on them."""
    u, v = points @ a.T, points @ op.T  # (m, n)
    den = np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1)
    return float(np.mean(np.where(den > 0, (u * v).sum(1) / np.where(den > 0, den, 1.0), 0.0)))


def library_similarities(a: np.ndarray, ops, points: np.ndarray, chunk: int = 256) -> np.ndarray:
    """:func:`action_similarity` of ``a`` ``(n, n)`` with every row of ``ops``, a scipy sparse ``(E, n²)`` array
    of operations flattened row-major (:func:`lgn.groups.operators.library_matrix`) → ``(E,)``.

    Applied as sparse products, ``chunk`` operations at a time, so that no ``(E, n, n)`` array exists.
    """
    n = a.shape[0]
    u = points @ a.T  # (m, n)
    nu = np.linalg.norm(u, axis=1)  # (m,)
    out = np.empty(ops.shape[0])
    for lo in range(0, ops.shape[0], chunk):
        part = ops[lo:lo + chunk]
        e = part.shape[0]
        v = np.asarray(part.reshape((e * n, n)) @ points.T).reshape(e, n, -1)  # (e, n, m): op·μ
        den = nu[None, :] * np.linalg.norm(v, axis=1)  # (e, m)
        dots = np.einsum("rm,erm->em", u.T, v)
        out[lo:lo + e] = np.mean(np.where(den > 0, dots / np.where(den > 0, den, 1.0), 0.0), axis=1)
    return out


def orbit_order(a: np.ndarray, points: np.ndarray, order: int, threshold: float = 0.99) -> int:
    """Smallest q ≥ 1 dividing ``order`` with cos(a**q·μ, μ) ≥ ``threshold`` on average over ``points``."""
    for q in range(1, order + 1):
        if order % q == 0 and action_similarity(np.linalg.matrix_power(a, q), np.eye(len(a)), points) >= threshold:
            return q
    return order


def nearest_permutation(a: np.ndarray, points: np.ndarray | None = None) -> np.ndarray:
    """The permutation ``perm`` (matrix ``P[i, perm[i]] = 1``) acting most like ``a`` on ``points`` ``(m, n)``.

    Maximises Σ_μ ⟨a·μ, P·μ⟩ = Σ_ij P_ij (a·S)_ij with S = Σ_μ μ·μᵀ, a linear
    assignment; without points S = I (the plain overlap with ``a``).
    """
    from scipy.optimize import linear_sum_assignment

    score = a if points is None else a @ (points.T @ points)  # (n, n)
    rows, cols = linear_sum_assignment(-score)
    perm = np.empty(len(a), dtype=int)
    perm[rows] = cols
    return perm


def _cycle_type(perm: np.ndarray) -> dict[int, int]:
    seen, lengths = np.zeros(len(perm), bool), {}
    for start in range(len(perm)):
        length, v = 0, start
        while not seen[v]:
            seen[v], v, length = True, perm[v], length + 1
        if length:
            lengths[length] = lengths.get(length, 0) + 1
    return dict(sorted(lengths.items()))


@dataclass
class Verdict:
    found: bool                     # the generator cycles the data's clusters far better than the null does
    group_size: int                 # p asked for
    order: int                      # the order the generator shows on the data (divides p)
    fit_residual: float             # ‖Aμ − μ_π‖/‖μ‖
    null_quantiles: dict            # '0', '0.05', '0.5', '0.95' → quantiles of the null residuals
    p_value: float                  # (1 + null draws with residual ≤ fit_residual) / (1 + draws)
    null_draws: int                 # the finite null draws (those counted)
    gram_residual: float            # ‖G[π,π] − G‖/‖G‖
    nearest_operation: str | None   # simplest library operation acting like a generator of the group on the data
    operation_similarity: float
    operation_order: int | None     # that operation's order on the data (it is named only when it equals ``order``)
    stillness: float                # mean cos(A·μ, μ) over the data: at or above STILL the map does not move them
    permutation_similarity: float   # action similarity with the nearest pixel permutation
    permutation_cycles: dict        # cycle length → count, of that permutation
    measure: str = "clusters"       # what the residual is: "clusters" or "distribution" (GroupEstimate.measure)
    two_sample_p: float = float("nan")  # distribution: p of the held-out test that A·x has the data's distribution

    def to_dict(self) -> dict:
        d = asdict(self)
        d["permutation_cycles"] = {str(k): v for k, v in self.permutation_cycles.items()}
        d["null_ratio"] = self.null_ratio
        return d

    @property
    def null_ratio(self) -> float:
        """The residual over the null's median: 1 for a map no better than chance, 0 for an exact one."""
        median = self.null_quantiles["0.5"]
        return self.fit_residual / median if median > 0 else float("inf")

    def calibration(self) -> str:
        q = self.null_quantiles
        if self.measure == "distribution":
            return (f"null (random generators of order {self.group_size} on the same held-out images, "
                    f"{self.null_draws} draws): median {q['0.5']:.4f}, 5% {q['0.05']:.4f}; "
                    f"loss/median {self.null_ratio:.3f}, p = {self.p_value:.2f}; two-sample test that A·x has "
                    f"the data's distribution: p = {self.two_sample_p:.2f}")
        return (f"null (same centres, mixed within each cycle, {self.null_draws} draws): median {q['0.5']:.3f}, "
                f"5% {q['0.05']:.3f}; residual/median {self.null_ratio:.2f}, p = {self.p_value:.2f}")

    def named(self) -> bool:
        """Whether the nearest known operation is close enough, and of the order found, to be named."""
        return (self.nearest_operation is not None and self.operation_similarity >= MATCH_THRESHOLD
                and self.operation_order == self.order)

    def text(self) -> str:
        distribution = self.measure == "distribution"
        if not self.found:
            if self.stillness >= STILL:
                why = f"the map barely moves the data (mean cos(A·x, x) {self.stillness:.2f} ≥ {STILL})"
            elif distribution and self.p_value > 0.05 + 1e-12:
                why = (f"the learned map's held-out distribution loss {self.fit_residual:.4f} is not below every "
                       f"random generator's of the same order (p = {self.p_value:.2f}; a group needs p ≤ 0.05)")
            elif distribution:
                why = (f"the learned map moves the data off their distribution: held-out loss "
                       f"{self.fit_residual:.4f}, two-sample test p = {self.two_sample_p:.2f} ≤ {SAME_LEVEL}")
            else:
                why = (f"the best map cycling the data's clusters leaves a relative residual {self.fit_residual:.2f} "
                       f"(a group gives < {NULL_RATIO} × the null's median and p ≤ 0.05)")
            return f"no group of size {self.group_size} found: {why}\n{self.calibration()}"
        head = f"group found: cyclic of order {self.order} (asked {self.group_size})"
        if self.named():
            head += f", generated by {self.nearest_operation}"
        evidence = (f"it maps the data's distribution onto itself with held-out loss {self.fit_residual:.4f}"
                    if distribution else f"it maps the data onto the data with residual {self.fit_residual:.3f}")
        lines = [head + "; " + evidence, self.calibration()]
        if self.named():
            lines.append(f"nearest known operation: generated by {self.nearest_operation} "
                         f"(similarity {self.operation_similarity:.3f} on the data)")
        else:
            order = "" if self.operation_order is None else f", order {self.operation_order} on the data"
            lines.append(f"no known operation of order {self.order} matches (nearest: {self.nearest_operation}"
                         f"{order}, similarity {self.operation_similarity:.3f})")
        if self.permutation_similarity >= MATCH_THRESHOLD:
            cycles = ", ".join(f"{n}×{length}-cycle" for length, n in self.permutation_cycles.items() if length > 1)
            lines.append(f"it acts as a pixel permutation (similarity {self.permutation_similarity:.3f}): "
                         f"{cycles or 'identity'}")
        return "\n".join(lines)


def judge(estimate: GroupEstimate, kernel_size: int | None = None, channels: int = 1, *,
          null_draws: int = NULL_DRAWS, seed: int = 0) -> Verdict:
    """The verdict on ``estimate``; known operations are looked up for single-channel k×k images.

    Found: the fit residual is under :data:`NULL_RATIO` times the median of ``null_draws`` residuals
    of the same search on centres with the map destroyed (:func:`lgn.discovery.estimate.null_residuals`),
    and under all of them at the 5% level (p ≤ 0.05). For ``estimate.measure == "distribution"``
    (``--method learn``, ``episodic``) the residual is the held-out distribution loss and the null that of
    random generators of the same order; instead of the ratio, the held-out two-sample test must not
    tell A·x from the data (p above :data:`SAME_LEVEL`). Either way the map must move the data
    (stillness under :data:`STILL`).
    """
    a, points, p = estimate.generator, estimate.centres, estimate.order
    name, similarity, op_order = None, float("nan"), None
    if kernel_size is not None and channels == 1 and kernel_size ** 2 == len(a):
        # every power a**s with s coprime to p generates the same group: name the simplest
        # operation (earliest in the library) that any of them matches best
        best = (-np.inf, 0, None, None)
        names, ops = operators.library_matrix(kernel_size)
        keep = [e for e, op_name in enumerate(names) if op_name != "identity"]
        ops = ops[keep]
        for s in (s for s in range(1, p) if math.gcd(s, p) == 1):
            scores = np.round(library_similarities(np.linalg.matrix_power(a, s), ops, points), 3)
            rank = int(np.argmax(scores))  # the first (simplest) of the best
            if (scores[rank], -rank) > best[:2]:
                best = (float(scores[rank]), -rank, names[keep[rank]], rank)
        similarity, name = best[0], best[2]
        op = np.asarray(ops[best[3]].todense()).reshape(len(a), len(a))
        op_order = orbit_order(op, points, p)  # the order a named operation must share with the map
    null = estimate.null if estimate.null is not None else null_residuals(estimate, draws=null_draws, seed=seed)
    null = null[np.isfinite(null)]  # a non-finite draw (a diverged residual) is left out
    quantiles = {str(q): float(np.quantile(null, q)) if len(null) else float("nan") for q in (0, 0.05, 0.5, 0.95)}
    p_value = float((1 + np.sum(null <= estimate.fit_residual)) / (1 + len(null)))
    stillness = action_similarity(a, np.eye(len(a)), points)
    if estimate.measure == "distribution":
        close = estimate.two_sample_p > SAME_LEVEL
    else:
        close = estimate.fit_residual < NULL_RATIO * quantiles["0.5"]
    found = len(null) > 0 and p_value <= 0.05 + 1e-12 and close and stillness < STILL
    perm = nearest_permutation(a, points)
    perm_similarity = action_similarity(a, operators.permutation_matrix(perm), points)
    return Verdict(
        found=bool(found),
        group_size=p,
        order=orbit_order(a, points, p),
        fit_residual=estimate.fit_residual,
        null_quantiles=quantiles,
        p_value=p_value,
        null_draws=int(len(null)),
        gram_residual=estimate.gram_residual,
        nearest_operation=name,
        operation_similarity=similarity,
        operation_order=op_order,
        stillness=stillness,
        permutation_similarity=perm_similarity,
        permutation_cycles=_cycle_type(perm),
        measure=estimate.measure,
        two_sample_p=estimate.two_sample_p,
    )
