"""An exact cyclic group A = Q·R·Qᵀ whose basis Q comes from a Cayley map: cheap at 256×256.

:class:`lgn.groups.CyclicGenerator` builds Q = exp(S − Sᵀ) with a matrix exponential.
At D = 256 that costs 19× (float64) to 33× (float32) the linear solve below, forward
and backward for 8 starts (docs/discovery.md), and every power A^i is a dense
product. Here

    Q = Q₀ · (I − K/2)⁻¹(I + K/2),  K = S − Sᵀ,

with Q₀ a fixed orthogonal *anchor* (a buffer) and S the parameter. The Cayley map
sends every skew K to an orthogonal matrix that agrees with exp(K) to second order
(so a step in S turns Q as far as it would under the matrix exponential), so A^p = Q R^p Qᵀ = I for every S, as
for the matrix exponential; the group is the same (the matrix exponential of the
Cayley image's logarithm gives the same A, tests/discovery/test_cayley.py).

A^i is never needed as a matrix: in Q's basis, u = Qᵀx, it is R^i, and R is block
diagonal (2×2 rotations by multiples of 2π/p and ±1), so R^i·u costs O(D)
(:meth:`CayleyCyclic.rotate`). :meth:`CayleyCyclic.reanchor_` folds the current
Cayley factor into Q₀ and sets S to 0, so the parameter stays near 0, where the
map is best conditioned (a retraction step on the orthogonal group).

Many starts train at once: the leading dimension of S and Q₀ indexes them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from lgn.groups.generators import cyclic_rotation_block
from lgn.settings import check_positive_int

__all__ = ["cayley", "haar_orthogonal", "CayleyCyclic"]


def cayley(k: torch.Tensor) -> torch.Tensor:
    """(I − K)⁻¹(I + K) for skew-symmetric ``k`` ``(..., D, D)``: an orthogonal matrix without eigenvalue −1."""
    eye = torch.eye(k.shape[-1], dtype=k.dtype, device=k.device)
    return torch.linalg.solve(eye - k, eye + k)


def haar_orthogonal(count: int, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(count, dim, dim)`` Haar-random rotations (determinant +1), float64: QR of Gaussians with the signs
    fixed, then column 0 negated where the determinant is −1. Column 0 meets R's first block, a 1×1
    block of eigenvalue 1, so the negation changes Q·R·Qᵀ not at all: the generators are Haar-random
    among those of R's spectrum, and Q lies where the matrix exponential reaches too."""
    z = torch.randn(count, dim, dim, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(z)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    q[..., :, 0] *= torch.sign(torch.linalg.det(q)).unsqueeze(-1)
    return q


def _block_action(dim: int, order: int) -> tuple[torch.Tensor, torch.Tensor]:
    """R of :func:`cyclic_rotation_block` as ``(partner (D,), angle (D,))``: coordinate d of R·u is
    cos θ_d · u_d − sin θ_d · u_partner(d) with θ the signed block angle (0 or π for 1×1 blocks)."""
    r = cyclic_rotation_block(dim, order)
    partner = np.arange(dim)
    angle = np.zeros(dim)
    d = 0
    while d < dim:
        if d + 1 < dim and abs(r[d + 1, d]) > 1e-12:
            t = math.atan2(r[d + 1, d], r[d, d])
            partner[d], partner[d + 1] = d + 1, d
            angle[d], angle[d + 1] = t, -t  # row d: cos·u_d − sin·u_{d+1}; row d+1: sin·u_d + cos·u_{d+1}
            d += 2
        else:
            angle[d] = 0.0 if r[d, d] > 0 else math.pi
            d += 1
    return torch.from_numpy(partner), torch.from_numpy(angle)


class CayleyCyclic(nn.Module):
    """``starts`` exact cyclic generators of ``order`` on ``dim``-vectors: A_s = Q_s·R·Q_sᵀ,
    Q_s = Q₀_s·cayley((S_s − S_sᵀ)/2).

    ``anchor`` ``(starts, D, D)`` orthogonal, float64 (default: Haar-random from ``generator``,
    i.e. a random group of R's spectrum); S starts at 0. Float64 unless converted (``.float()``).
    """

    def __init__(self, dim: int, order: int, starts: int = 1, *, anchor: torch.Tensor | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        for name, value in (("dim", dim), ("order", order), ("starts", starts)):
            check_positive_int(value, name)
        if anchor is None:
            anchor = haar_orthogonal(starts, dim, generator)
        if tuple(anchor.shape) != (starts, dim, dim):
            raise ValueError(f"anchor must have shape {(starts, dim, dim)}, got {tuple(anchor.shape)}")
        self.dim, self.order = dim, order
        self.skew = nn.Parameter(torch.zeros(starts, dim, dim, dtype=torch.float64))
        self.register_buffer("anchor", anchor.to(torch.float64).clone())  # .float() converts it with S
        partner, angle = _block_action(dim, order)
        self.register_buffer("partner", partner, persistent=False)
        self.register_buffer("angle", angle, persistent=False)

    @property
    def starts(self) -> int:
        return self.skew.shape[0]

    def basis(self) -> torch.Tensor:
        """Q ``(starts, D, D)``."""
        return self.anchor @ cayley(0.5 * (self.skew - self.skew.transpose(-1, -2)))

    def rotate(self, u: torch.Tensor, power: int) -> torch.Tensor:
        """R^power applied to coordinates ``u`` ``(..., D)`` in Q's basis, O(D) per vector."""
        theta = self.angle.to(u.dtype) * power  # (D,)
        return torch.cos(theta) * u - torch.sin(theta) * u[..., self.partner]

    def matrix(self) -> torch.Tensor:
        """A ``(starts, D, D)``, float64."""
        q = self.basis()
        return self.rotate(q, -1) @ q.transpose(-1, -2)  # rotate acts on rows: rotate(Q, −1) = Q·R

    def select(self, index: int) -> "CayleyCyclic":
        """A one-start copy holding start ``index``'s current basis as its anchor."""
        with torch.no_grad():
            q = self.basis()[index:index + 1]
        return CayleyCyclic(self.dim, self.order, 1, anchor=q).to(q.dtype)

    @torch.no_grad()
    def reanchor_(self) -> None:
        """Q₀ ← Q and S ← 0: the same generators, the parameter back at the map's best-conditioned point.

        Q is re-orthonormalised (QR, signs kept) so that rounding does not pile up over many re-anchorings.
        """
        q, r = torch.linalg.qr(self.basis())
        self.anchor.copy_(q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2))
        self.skew.zero_()
