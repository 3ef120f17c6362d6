"""What the generator searches of :mod:`lgn.discovery.learn` and :mod:`lgn.discovery.episodic` share.

- :func:`generator_step`: one Adam step of an exact cyclic generator
  (:class:`lgn.groups.cayley.CayleyCyclic`), with re-anchoring and progress lines;
- :func:`symmetry_distance`: the distribution distance between a sample and the moved sample, for
  every start at once (MMD² or debiased entropic OT);
- :func:`as_estimate`: a learned start as a :class:`lgn.discovery.estimate.GroupEstimate`, with the
  verdict's evidence measured on held-out images (:func:`held_out_loss` against random generators of
  the same order, and a two-sample re-split test).
"""

from __future__ import annotations

import numpy as np
import torch

from lgn.discovery.estimate import GroupEstimate
from lgn.discovery.losses import median_distance, mmd2, mmd2_resplit_p, nearest, self_terms, sinkhorn
from lgn.groups.cayley import CayleyCyclic
from lgn.groups.generators import cyclic_rotation_block

__all__ = ["NULL_DRAWS", "PERMUTATIONS", "VERDICT_HALF", "VERDICT_SCALE", "REFERENCE_DIM", "SINKHORN_ITERATIONS",
           "generator_step", "symmetry_distance", "within_terms", "as_estimate", "held_out_loss"]

NULL_DRAWS = 19  # random generators the verdict compares the learned one with (p-values down to 0.05)
PERMUTATIONS = 99  # re-splits of the verdict's two-sample test (p-values down to 0.01)
VERDICT_HALF = 256  # at most this many held-out images per class and side in the verdict
VERDICT_SCALE = 0.5  # the verdict's kernel width, in multiples of each class's median distance
REFERENCE_DIM = 36  # the image size (6×6) at which ``lr`` is the Adam learning rate
SINKHORN_ITERATIONS = 10  # ε is at least the squared median distance, where Sinkhorn converges in a few


def generator_step(gen: CayleyCyclic, opt: torch.optim.Optimizer, loss: torch.Tensor, step: int, config,
                   progress) -> None:
    """One Adam step of the generator on ``loss`` (0-based ``step`` of ``config.steps``): re-anchor the Cayley
    map every ``config.reanchor`` steps, and say ``progress(text)`` every 50."""
    opt.zero_grad()
    loss.backward()
    opt.step()
    if config.reanchor and (step + 1) % config.reanchor == 0:
        gen.reanchor_()
    if progress is not None and (step + 1) % 50 == 0:
        progress(f"step {step + 1}/{config.steps}")


def symmetry_distance(gen: CayleyCyclic, x1: torch.Tensor, x2: torch.Tensor, scales: torch.Tensor, loss: str,
                      within: torch.Tensor) -> torch.Tensor:
    """``(starts,)``: mean over pools (classes) and over powers i = 1 … p − 1 of the distance between the
    samples {x1} and {A^i·x2}, ``(pools, m, n)`` each: MMD² at bandwidth ``scales`` ``(pools,)``, or the
    debiased OT cost at ε = ``scales``². ``within`` ``(pools,)``: each pool's within-sample terms
    (:func:`lgn.discovery.losses.self_terms`; they do not depend on A)."""
    q = gen.basis()  # (S, D, D)
    u1 = (x1[:, None] @ q).unsqueeze(2)  # (pools, S, 1, m, D): coordinates Qᵀx1
    u2 = x2[:, None] @ q  # (pools, S, m, D)
    moved = torch.stack([gen.rotate(u2, i) for i in range(1, gen.order)], dim=2)  # (pools, S, p−1, m, D)
    h = scales[:, None, None]
    if loss == "mmd":
        d = mmd2(u1, moved, h, within[:, None, None])
    else:
        d = sinkhorn(u1, moved, h * h, within[:, None, None], SINKHORN_ITERATIONS)
    return d.mean(dim=(0, 2))


def within_terms(x1: torch.Tensor, x2: torch.Tensor, scales: torch.Tensor, loss: str) -> torch.Tensor:
    """``(pools,)``: :func:`lgn.discovery.losses.self_terms` of each pool's two samples ``(pools, m, n)``."""
    return torch.stack([self_terms(a, b, float(h), loss, SINKHORN_ITERATIONS) for a, b, h in zip(x1, x2, scales)])


def as_estimate(gen: CayleyCyclic, start: int, x: torch.Tensor, labels: torch.Tensor | None,
                held: list[torch.Tensor], points: int, g: torch.Generator) -> GroupEstimate:
    """Start ``start`` of ``gen`` as a :class:`GroupEstimate` for the verdict, its evidence measured on the
    images of ``x`` ``(N, n)`` indexed by ``held`` (one index tensor per class; one pool without
    ``labels``), which the search did not see.

    A is rebuilt in float64 from its re-orthonormalised basis. ``fit_residual``: the held-out
    distribution loss (:func:`held_out_loss`) of A; ``null``: the same for :data:`NULL_DRAWS` random
    generators of the same order, on the same images; ``two_sample_p``: the permutation test
    (:func:`lgn.discovery.losses.mmd2_resplit_p`, :data:`PERMUTATIONS` re-splits) that {A^i·x} has the
    distribution of {x} there; ``centres``: up to ``points`` of the held-out images, ``clusters`` them by
    class, ``cycles`` each one's nearest same-class centre under A; no Gram residual (NaN).
    """
    n, order = gen.dim, gen.order
    q, r = torch.linalg.qr(gen.basis()[start].detach().double())
    q = q * torch.sign(torch.diagonal(r))  # re-orthonormalised in float64
    a = q @ torch.from_numpy(cyclic_rotation_block(n, order)) @ q.T  # (n, n)
    with torch.no_grad():
        x1, x2, medians = _held_out_halves(x, held, g)
        learned = gen.select(start)
        fit = held_out_loss(learned, x1, x2, medians)
        null = held_out_loss(CayleyCyclic(n, order, NULL_DRAWS, generator=g).to(x.dtype), x1, x2, medians)
        q_learned = learned.basis()[0]
        u1, u2 = x1 @ q_learned, x2 @ q_learned  # (pools, m, n)
        moved = torch.stack([learned.rotate(u2, i) for i in range(1, order)], dim=1)  # (pools, p − 1, m, n)
        same = mmd2_resplit_p(u1[:, None].expand_as(moved), moved, medians, PERMUTATIONS, g)
    every = torch.cat(held)
    pick = every[torch.randperm(len(every), generator=g)[:points]]
    px = x[pick].double()
    py = labels[pick] if labels is not None else torch.zeros(len(pick), dtype=torch.int64)
    cycles = nearest(a, px, py, px, py)[1]
    pools = [np.flatnonzero(py.numpy() == c) for c in np.unique(py.numpy())]
    return GroupEstimate(generator=a.numpy(), centres=px.numpy(), clusters=pools, cycles=cycles.numpy(),
                         gram_residual=float("nan"), fit_residual=float(fit[0]), order=order, null=null.numpy(),
                         measure="distribution", two_sample_p=same)


def _held_out_halves(x: torch.Tensor, pools: list[torch.Tensor], g: torch.Generator
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each pool (index tensor into ``x`` ``(N, n)``) split at random into two halves of m images (half the
    smallest pool, at most :data:`VERDICT_HALF`): ``(x1, x2)``, ``(pools, m, n)`` each, and the verdict's
    kernel width for each pool, :data:`VERDICT_SCALE` × its median distance, ``(pools,)``."""
    half = min(min(len(p) for p in pools) // 2, VERDICT_HALF)
    if half < 2:
        raise ValueError(f"the verdict needs at least 4 held-out images of each class, got {2 * half}")
    picks = torch.stack([p[torch.randperm(len(p), generator=g)[:2 * half]] for p in pools])
    both = x[picks]  # (pools, 2m, n)
    medians = torch.tensor([median_distance(b) for b in both], dtype=x.dtype)
    return both[:, :half], both[:, half:], VERDICT_SCALE * medians


def held_out_loss(gen: CayleyCyclic, x1: torch.Tensor, x2: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
    """The verdict's distribution loss of every start of ``gen``, ``(starts,)``: the MMD² of the search
    (:func:`symmetry_distance`, Gaussian kernel of width ``widths`` ``(pools,)``)
    between the held-out halves ``x1`` and ``x2`` ``(pools, m, n)``, the latter moved by A^i, mean over
    pools and i = 1 … p − 1. 0 in expectation for a symmetry of the data."""
    return symmetry_distance(gen, x1, x2, widths, "mmd", within_terms(x1, x2, widths, "mmd"))
