"""Symmetry losses: how far a generator A is from mapping the data's distribution onto itself.

If T is a symmetry of each class's distribution, {x} and {T^i·x} are samples of the same
distribution, for every power i. The losses below compare the two samples at three
levels; docs/discovery.md ("Why second moments are not enough") has the argument and
the numbers.

- **Second moments** (:func:`symmetry_loss`): the commutator ‖A·S_c − S_c·A‖² with the class
  second moments S_c. Blind, by Schur's lemma, to the phase A takes on each of T's
  isotypic blocks: a wrong A scores 0 as T does (tests/discovery/test_losses.py).
- **Third moments** (:func:`third_moment_loss`): centred within-class third moments along
  random directions. They separate those candidates, but as a training loss from random
  starts they stall in false minima.
- **Whole distributions**: the kernel two-sample statistic MMD² with a Gaussian kernel
  (:func:`mmd2`) and the debiased entropic optimal-transport cost (:func:`sinkhorn`),
  between {x} and {A^i·x}, i = 1 … p − 1. These drive ``--method learn``.
- **Nearest neighbours** (:func:`matching_loss`): the distance from A·x to the nearest
  training image of its class; the verdict's residual.

The distribution losses take coordinates in the basis Q of an exact cyclic generator
A = Q·R·Qᵀ (:class:`lgn.groups.cayley.CayleyCyclic`): with u = Qᵀx, A^i·x has coordinates
R^i·u, and distances are the same in either basis.
"""

from __future__ import annotations

import math

import torch

__all__ = ["class_moments", "symmetry_loss", "third_moment_loss", "median_distance", "mmd2", "mmd2_resplit_p",
           "sinkhorn", "self_terms", "nearest", "matching_loss"]


def class_moments(x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Second moments S_c = E[x xᵀ | c] of images ``x`` ``(N, n)``, each scaled to unit Frobenius norm:
    ``(classes, n, n)``. Classes with no image are left out."""
    moments = []
    for c in torch.unique(labels):
        xc = x[labels == c]  # (N_c, n)
        s = xc.T @ xc / len(xc)  # (n, n)
        moments.append(s / s.norm().clamp_min(1e-300))
    return torch.stack(moments)


def symmetry_loss(a: torch.Tensor, moments: torch.Tensor) -> torch.Tensor:
    """Mean over classes of ‖A S_c − S_c A‖²: 0 when A ``(n, n)`` commutes with every class's second moment."""
    return ((a @ moments - moments @ a) ** 2).sum(dim=(1, 2)).mean()


def third_moment_loss(a: torch.Tensor, x: torch.Tensor, labels: torch.Tensor, directions: torch.Tensor
                      ) -> torch.Tensor:
    """Centred within-class third moments along ``directions`` ``(m, n)``, of {x} against {A·x}.

    For each class c with mean μ_c: m_c = E[(W·(x − μ_c))³] and m̃_c = E[(W·A·(x − μ_c))³], each ``(m,)``
    (cubes elementwise); the loss is the mean over classes of ‖m̃_c − m_c‖² / ‖m_c‖². ``a`` ``(n, n)``,
    ``x`` ``(N, n)``, ``labels`` ``(N,)``. Zero when A is a symmetry of every class's distribution.
    """
    out = []
    for c in torch.unique(labels):
        xc = x[labels == c]
        xc = xc - xc.mean(0)  # (N_c, n)
        m = ((xc @ directions.T) ** 3).mean(0)  # (m,)
        moved = ((xc @ a.T @ directions.T) ** 3).mean(0)
        out.append(((moved - m) ** 2).sum() / (m ** 2).sum().clamp_min(1e-300))
    return torch.stack(out).mean()


def median_distance(x: torch.Tensor) -> float:
    """The median Euclidean distance between distinct rows of ``x`` ``(N, n)``."""
    d = torch.cdist(x, x)
    return float(d[~torch.eye(len(x), dtype=torch.bool)].median())


def _sq_dist(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``(..., n1, n2)`` squared distances between rows of ``u`` ``(..., n1, D)`` and ``v`` ``(..., n2, D)``."""
    d = (u ** 2).sum(-1)[..., :, None] + (v ** 2).sum(-1)[..., None, :] - 2.0 * u @ v.transpose(-1, -2)
    return d.clamp_min(0.0)


def _within(u: torch.Tensor, sigma: float) -> torch.Tensor:
    """Mean of k(u_a, u_b) over a ≠ b, rows of ``u`` ``(..., n, D)``, Gaussian kernel of width ``sigma``: ``(...)``."""
    k = torch.exp(-_sq_dist(u, u) / (2.0 * sigma ** 2))
    n = u.shape[-2]
    return (k.sum(dim=(-1, -2)) - k.diagonal(dim1=-2, dim2=-1).sum(-1)) / (n * (n - 1))


def mmd2(u1: torch.Tensor, moved: torch.Tensor, sigma: float, within: torch.Tensor | None = None
         ) -> torch.Tensor:
    """Unbiased MMD² between samples ``u1`` ``(..., n1, D)`` and ``moved`` ``(..., n2, D)``, Gaussian kernel of
    width σ: ``(...)``, 0 in expectation when the two share a distribution.

    ``within``: the two within-sample terms, when known (under an orthogonal map they are those of the
    unmoved samples, so a caller moving one sample many times computes them once).
    """
    s = sigma[..., None, None] if torch.is_tensor(sigma) else sigma  # σ a float or broadcastable to (...)
    cross = torch.exp(-_sq_dist(u1, moved) / (2.0 * s ** 2)).mean(dim=(-1, -2))
    if within is None:
        within = _within(u1, sigma) + _within(moved, sigma)
    return within - 2.0 * cross


def mmd2_resplit_p(u: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor, draws: int, g: torch.Generator) -> float:
    """The p-value of a permutation test that the samples ``u`` and ``v``, ``(P, I, m, D)`` each, share a
    distribution (P pools, I comparisons per pool, m images a side).

    The statistic is the unbiased MMD² (Gaussian kernel of width ``sigma`` ``(P,)``, one per pool) between
    u and v, mean over P and I. Its null: ``draws`` random re-splits of each pool's 2m images into two
    halves of m, the same re-split for all I of a pool. Returns (1 + re-splits at or above the observed
    statistic) / (1 + ``draws``): small when the samples differ.
    """
    p_, i_, m, _ = u.shape
    z = torch.cat([u, v], dim=-2)  # (P, I, 2m, D)
    k = torch.exp(-_sq_dist(z, z) / (2.0 * sigma[:, None, None, None] ** 2))  # (P, I, 2m, 2m)
    k = k - torch.diag_embed(k.diagonal(dim1=-2, dim2=-1))  # the unbiased statistic leaves out k(z, z)
    first = torch.zeros(draws + 1, p_, 2 * m, dtype=k.dtype)  # row 0: the observed split
    first[0, :, :m] = 1.0
    for d in range(1, draws + 1):
        for p in range(p_):
            first[d, p, torch.randperm(2 * m, generator=g)[:m]] = 1.0
    second = 1.0 - first

    def block(e: torch.Tensor, f: torch.Tensor) -> torch.Tensor:  # (draws + 1, P, I): Σ_ab e_a k_ab f_b
        return torch.einsum("dpa,piab,dpb->dpi", e, k, f)

    stat = ((block(first, first) + block(second, second)) / (m * (m - 1))
            - 2.0 * block(first, second) / (m * m)).mean(dim=(1, 2))  # (draws + 1,)
    return (1 + int(torch.sum(stat[1:] >= stat[0]))) / (1 + draws)


def _ot(cost: torch.Tensor, eps, iterations: int) -> torch.Tensor:
    """Entropic OT value Σ P·C between uniform weights, cost ``(..., n1, n2)``; the plan by log-domain
    Sinkhorn without gradient, the value differentiated through the cost only (the envelope theorem:
    the gradient of the entropic optimum with respect to C is the optimal plan)."""
    n1, n2 = cost.shape[-2:]
    with torch.no_grad():
        c = cost / (eps[..., None, None] if torch.is_tensor(eps) else eps)  # ε a float or (...)
        g = torch.zeros(cost.shape[:-2] + (n2,), dtype=cost.dtype, device=cost.device)  # (..., n2)
        for _ in range(iterations):
            f = -torch.logsumexp(g[..., None, :] - c, dim=-1) - math.log(n2)  # (..., n1)
            g = -torch.logsumexp(f[..., :, None] - c, dim=-2) - math.log(n1)
        plan = torch.exp(f[..., :, None] + g[..., None, :] - c)  # (..., n1, n2), rows sum to 1/n1
    return (plan * cost).sum(dim=(-1, -2))


def sinkhorn(u1: torch.Tensor, moved: torch.Tensor, eps: float, within: torch.Tensor | None = None,
             iterations: int = 50) -> torch.Tensor:
    """Debiased entropic OT cost OT(u1, moved) − ½·OT(u1, u1) − ½·OT(moved, moved), squared Euclidean cost.

    Shapes and ``within`` (here the sum of the two self terms) as :func:`mmd2`; ``eps`` the entropic
    regularisation, in squared-distance units. ``(...)``: 0 for equal samples.
    """
    cross = _ot(_sq_dist(u1, moved), eps, iterations)
    if within is None:
        within = 0.5 * (_ot(_sq_dist(u1, u1), eps, iterations) + _ot(_sq_dist(moved, moved), eps, iterations))
    return cross - within


def self_terms(x1: torch.Tensor, x2: torch.Tensor, scale: float, loss: str, iterations: int = 50) -> torch.Tensor:
    """The ``within`` argument of :func:`mmd2` (``loss="mmd"``, σ = ``scale``) or :func:`sinkhorn`
    (ε = ``scale``², ``iterations`` Sinkhorn iterations) for samples ``x1`` ``(n1, D)`` and ``x2`` ``(n2, D)``,
    the latter before an orthogonal map."""
    if loss == "mmd":
        return _within(x1, scale) + _within(x2, scale)
    eps = scale * scale
    return 0.5 * (_ot(_sq_dist(x1, x1), eps, iterations) + _ot(_sq_dist(x2, x2), eps, iterations))


def nearest(a: torch.Tensor, x: torch.Tensor, y: torch.Tensor, ref: torch.Tensor, y_ref: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """For each A·x_i ``(m, n)``: the squared distance to its nearest reference image of the same class,
    over ‖x_i‖², and that image's index."""
    moved = x @ a.T  # (m, n)
    d = torch.cdist(moved, ref) ** 2  # (m, R)
    d = d.masked_fill(y[:, None] != y_ref[None, :], float("inf"))
    best, idx = d.min(dim=1)
    return best / (x ** 2).sum(1).clamp_min(1e-300), idx


def matching_loss(a: torch.Tensor, x: torch.Tensor, y: torch.Tensor, ref: torch.Tensor,
                  y_ref: torch.Tensor) -> torch.Tensor:
    """Mean over ``x`` ``(m, n)`` of min over same-class ``ref`` ``(R, n)`` of ‖A x − x'‖² / ‖x‖²."""
    return nearest(a, x, y, ref, y_ref)[0].mean()
