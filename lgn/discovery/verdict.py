"""A readable verdict on a discovered group: was one found, its order, the nearest known operation.

Every judgement here looks at what the generator does to the data's cluster
centres, the only place the data pin it down: a generator estimated from data
is arbitrary on directions the data never visit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from lgn.discovery.estimate import GroupEstimate
from lgn.groups import operators

__all__ = ["FIT_THRESHOLD", "MATCH_THRESHOLD", "Verdict", "action_similarity", "orbit_order",
           "nearest_permutation", "judge"]

FIT_THRESHOLD = 0.2     # relative residual ‖Aμ − μ_π‖/‖μ‖ under which a group counts as found
MATCH_THRESHOLD = 0.95  # action similarity at which a known operation (or a permutation) is named


def action_similarity(a: np.ndarray, op: np.ndarray, points: np.ndarray) -> float:
    """Mean over ``points`` ``(m, n)`` of cos(a·μ, op·μ): 1 when ``op`` acts like ``a`` on them."""
    u, v = points @ a.T, points @ op.T  # (m, n)
    den = np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1)
    return float(np.mean(np.where(den > 0, (u * v).sum(1) / np.where(den > 0, den, 1.0), 0.0)))


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
    found: bool                     # the generator cycles the data's clusters (fit residual small)
    group_size: int                 # p asked for
    order: int                      # the order the generator shows on the data (divides p)
    fit_residual: float             # ‖Aμ − μ_π‖/‖μ‖
    gram_residual: float            # ‖G[π,π] − G‖/‖G‖
    nearest_operation: str | None   # best library operation, by action on the data
    operation_similarity: float
    permutation_similarity: float   # action similarity with the nearest pixel permutation
    permutation_cycles: dict        # cycle length → count, of that permutation

    def to_dict(self) -> dict:
        d = asdict(self)
        d["permutation_cycles"] = {str(k): v for k, v in self.permutation_cycles.items()}
        return d

    def text(self) -> str:
        if not self.found:
            return (f"no group of size {self.group_size} found: the best map cycling the data's clusters "
                    f"leaves a relative residual {self.fit_residual:.2f} (a group gives < {FIT_THRESHOLD})")
        lines = [f"group found: cyclic of order {self.order} (asked {self.group_size}); "
                 f"it maps the data's cluster centres onto each other with residual {self.fit_residual:.3f}"]
        if self.nearest_operation is not None and self.operation_similarity >= MATCH_THRESHOLD:
            lines.append(f"nearest known operation: {self.nearest_operation} "
                         f"(similarity {self.operation_similarity:.3f} on the data)")
        else:
            lines.append(f"no known operation matches (nearest: {self.nearest_operation}, "
                         f"similarity {self.operation_similarity:.3f})")
        if self.permutation_similarity >= MATCH_THRESHOLD:
            cycles = ", ".join(f"{n}×{length}-cycle" for length, n in self.permutation_cycles.items() if length > 1)
            lines.append(f"it acts as a pixel permutation (similarity {self.permutation_similarity:.3f}): "
                         f"{cycles or 'identity'}")
        return "\n".join(lines)


def judge(estimate: GroupEstimate, kernel_size: int | None = None, channels: int = 1) -> Verdict:
    """The verdict on ``estimate``; known operations are looked up for single-channel k×k images."""
    a, points, p = estimate.generator, estimate.centres, estimate.order
    name, similarity = None, float("nan")
    if kernel_size is not None and channels == 1 and kernel_size ** 2 == len(a):
        scores = {op_name: action_similarity(a, op, points)
                  for op_name, op in operators.library(kernel_size).items() if op_name != "identity"}
        name = max(scores, key=scores.get)
        similarity = scores[name]
    perm = nearest_permutation(a, points)
    perm_similarity = action_similarity(a, operators.permutation_matrix(perm), points)
    return Verdict(
        found=estimate.fit_residual < FIT_THRESHOLD,
        group_size=p,
        order=orbit_order(a, points, p),
        fit_residual=estimate.fit_residual,
        gram_residual=estimate.gram_residual,
        nearest_operation=name,
        operation_similarity=similarity,
        permutation_similarity=perm_similarity,
        permutation_cycles=_cycle_type(perm),
    )
