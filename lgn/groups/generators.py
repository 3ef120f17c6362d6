"""Generator parametrisations: how a layer's learned matrices A are produced.

A generator module holds the matrices for ``n_groups`` groups and ``n_blocks``
action blocks per group (one block per input channel for the per-channel action,
one block for the joint action), each ``dim × dim``. ``matrix()`` returns them
as a tensor of shape ``(n_groups, n_blocks, dim, dim)``.

Five parametrisations:

- :class:`FreeGenerator` — the paper's: unconstrained, re-projected to unit
  Frobenius norm after each optimiser step, with an optional invertibility
  regulariser.
- :class:`CyclicGenerator` — an exact finite cyclic group: ``A**order == I`` for
  every parameter value.
- :class:`FixedGenerator` — a given matrix: a known operator, a group read from a file
  (a found one), baselines, tests.
- :class:`SelectionGenerator` — a learned choice among the library's exact pixel
  permutations of order p (``'select'``) or of an order dividing p
  (``'select-divisor'``): flips, transposes, quarter turns, cyclic shifts.
- :class:`PermutationGenerator` — a learned pixel permutation P conjugating a fixed
  permutation R made of p-cycles: A = P·R·Pᵀ.

Each is built by name (``generator="free"``, ``"fixed:rot90"``, …) through
:mod:`lgn.groups.registry`, where users register their own.

The last two are *annealed*: their value is always an exact permutation of order
p or dividing p (a straight-through estimator carries the gradient of a soft relaxation),
the choice follows the parameters at every ``project_()`` call (after each optimiser
step) for the first ``steps`` calls, and is then frozen.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from lgn.groups import operators
from lgn.settings import check_positive_int

__all__ = [
    "Generator",
    "FreeGenerator",
    "CyclicGenerator",
    "FixedGenerator",
    "SelectionGenerator",
    "PermutationGenerator",
    "ANNEAL_STEPS",
    "REGULARIZERS",
    "unit_frobenius_",
]

REGULARIZERS = ("aux-inverse", "singular-values", "none")


def unit_frobenius_(t: torch.Tensor, dims: int) -> torch.Tensor:
    """Scale each trailing ``dims``-dimensional slice of ``t`` to unit Frobenius norm, in place."""
    with torch.no_grad():
        flat = t.flatten(start_dim=t.dim() - dims)
        norm = flat.norm(dim=-1).clamp_min(1e-12)
        t.div_(norm.reshape(norm.shape + (1,) * dims))
    return t


class Generator(nn.Module):
    """Base class: ``n_groups × n_blocks`` matrices of size ``dim × dim``."""

    def __init__(self, n_groups: int, n_blocks: int, dim: int):
        super().__init__()
        for name, value in (("n_groups", n_groups), ("n_blocks", n_blocks), ("dim", dim)):
            check_positive_int(value, name)
        self.n_groups, self.n_blocks, self.dim = n_groups, n_blocks, dim

    def matrix(self) -> torch.Tensor:
        """The generators, shape ``(n_groups, n_blocks, dim, dim)``."""
        raise NotImplementedError

    def reset_parameters(self) -> None:
        """Draw the parameters afresh, as construction does (override in a generator with parameters)."""
        if any(True for _ in self.parameters(recurse=False)):
            raise NotImplementedError(f"{type(self).__name__} does not define reset_parameters()")

    def project_(self) -> None:
        """Re-project parameters after an optimiser step (no-op unless overridden)."""

    def regularization(self) -> torch.Tensor:
        """Unweighted regularisation term (zero unless overridden)."""
        return self.matrix().new_zeros(())

    def extra_repr(self) -> str:
        return f"n_groups={self.n_groups}, n_blocks={self.n_blocks}, dim={self.dim}"


class FreeGenerator(Generator):
    """The paper's generator: a free matrix kept at unit Frobenius norm.

    ``regularizer`` pushes A toward invertibility, the only pull toward a group:

    - ``'aux-inverse'``: a learned matrix Ã per A; term Σ ‖A·Ã − I‖_F.
    - ``'singular-values'``: term −Σ σ_i(A).
    - ``'none'``.
    """

    def __init__(self, n_groups: int, n_blocks: int, dim: int, regularizer: str = "aux-inverse"):
        super().__init__(n_groups, n_blocks, dim)
        if regularizer not in REGULARIZERS:
            raise ValueError(f"regularizer must be one of {REGULARIZERS}, got {regularizer!r}")
        self.regularizer = regularizer
        shape = (n_groups, n_blocks, dim, dim)
        self.weight = nn.Parameter(torch.empty(shape))
        if regularizer == "aux-inverse":
            self.inverse = nn.Parameter(torch.empty(shape))
        else:
            self.register_parameter("inverse", None)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Gaussian matrices scaled to unit Frobenius norm (A, then Ã)."""
        for p in (self.weight, self.inverse):
            if p is not None:
                p.copy_(unit_frobenius_(torch.randn_like(p), 2))

    def matrix(self) -> torch.Tensor:
        return self.weight

    def project_(self) -> None:
        unit_frobenius_(self.weight.data, 2)

    def regularization(self) -> torch.Tensor:
        a = self.weight  # (K, C', d, d)
        if self.regularizer == "aux-inverse":
            eye = torch.eye(self.dim, dtype=a.dtype, device=a.device)
            return (a @ self.inverse - eye).flatten(start_dim=-2).norm(dim=-1).sum()
        if self.regularizer == "singular-values":
            return -torch.linalg.svdvals(a).sum()
        return a.new_zeros(())

    def extra_repr(self) -> str:
        return super().extra_repr() + f", regularizer={self.regularizer!r}"


def cyclic_rotation_block(dim: int, order: int) -> np.ndarray:
    """Block-diagonal R with R**order == I, holding each order-th root of unity equally often.

    The real regular representation of Z_order is: eigenvalue 1 (a 1×1 block), a
    2×2 rotation by 2πj/order for j = 1..⌊(order−1)/2⌋, and −1 when order is even.
    R holds ⌊dim/order⌋ copies of it and ``dim mod order`` further 1s: the spectrum
    of a pixel permutation made of order-cycles (shifts, 90° rotations, flips of an
    even-sized kernel, ...).
    """
    blocks: list[np.ndarray] = []
    for _ in range(dim // order):
        blocks.append(np.ones((1, 1)))
        for j in range(1, (order - 1) // 2 + 1):
            t = 2 * math.pi * j / order
            blocks.append(np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]]))
        if order % 2 == 0:
            blocks.append(-np.ones((1, 1)))
    blocks.extend(np.ones((1, 1)) for _ in range(dim % order))
    r = np.zeros((dim, dim))
    i = 0
    for b in blocks:
        s = b.shape[0]
        r[i:i + s, i:i + s] = b
        i += s
    return r


class CyclicGenerator(Generator):
    """An exact cyclic group of order ``order``: A = Q·R·Qᵀ with Q = exp(S − Sᵀ).

    Why this is exact: S − Sᵀ is skew-symmetric, so Q is orthogonal for every S,
    and R (see :func:`cyclic_rotation_block`) is orthogonal with R**order = I.
    Hence A**order = Q·R**order·Qᵀ = Q·Qᵀ = I, whatever S holds. Every real
    representation of Z_order is orthogonal in some basis, so conjugating a fixed
    R by a learned rotation reaches every order-``order`` orthogonal matrix with
    R's spectrum (all pixel permutations made of order-cycles among them). The
    matrix exponential and product are computed in float64 and cast back, which
    keeps A**order − I at the 1e-6 level in float32 even for large S; A stays
    orthogonal, so it is finite and norm-preserving under training.
    """

    def __init__(self, n_groups: int, n_blocks: int, dim: int, order: int, init_scale: float = 1.0):
        super().__init__(n_groups, n_blocks, dim)
        check_positive_int(order, "order")
        self.order, self.init_scale = order, init_scale
        self.skew = nn.Parameter(torch.empty(n_groups, n_blocks, dim, dim))
        self.register_buffer(
            "rotation", torch.from_numpy(cyclic_rotation_block(dim, order)), persistent=False
        )
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """S Gaussian with standard deviation init_scale / √dim."""
        self.skew.copy_(torch.randn_like(self.skew) * self.init_scale / math.sqrt(self.dim))

    def orthogonal(self) -> torch.Tensor:
        """Q = exp(S − Sᵀ) in float64, shape ``(n_groups, n_blocks, dim, dim)``."""
        s = self.skew.double()
        return torch.linalg.matrix_exp(s - s.transpose(-1, -2))

    def matrix(self) -> torch.Tensor:
        q = self.orthogonal()
        r = self.rotation.to(device=q.device, dtype=torch.float64)
        return (q @ r @ q.transpose(-1, -2)).to(self.skew.dtype)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", order={self.order}"


class FixedGenerator(Generator):
    """A given, untrained matrix broadcast to every group and block.

    A single ``(d, d)`` matrix is stored once, ``(1, 1, d, d)``, and ``matrix()`` is a
    broadcast view of it: a full-image generator (d = 256 or 784) would otherwise be
    copied K·C' times into every forward pass and every checkpoint, and the orbit of a
    shared matrix is one matrix product for all groups (:func:`lgn.groups.orbit`).
    """

    def __init__(self, matrix: torch.Tensor | np.ndarray, n_groups: int, n_blocks: int):
        m = torch.as_tensor(matrix, dtype=torch.get_default_dtype())
        if m.dim() == 2:
            m = m.reshape(1, 1, *m.shape)
        if m.dim() != 4 or m.shape[:2] not in ((1, 1), (n_groups, n_blocks)) or m.shape[-1] != m.shape[-2]:
            raise ValueError(
                f"fixed generator must have shape (d, d) or ({n_groups}, {n_blocks}, d, d), "
                f"got {tuple(torch.as_tensor(matrix).shape)}"
            )
        super().__init__(n_groups, n_blocks, m.shape[-1])
        self.register_buffer("weight", m.clone().contiguous())

    def reset_parameters(self) -> None:
        """Nothing to draw: the matrix is given."""

    def matrix(self) -> torch.Tensor:
        return self.weight.expand(self.n_groups, self.n_blocks, self.dim, self.dim)


ANNEAL_STEPS = 200  # optimiser steps (project_() calls) during which an annealed generator's choice may change
_TEMPERATURE = (1.0, 0.1)  # the soft relaxation's temperature at the first and the last annealing step


class _Annealed(Generator):
    """Shared by the annealed generators: a step counter and the temperature schedule.

    ``step`` counts ``project_()`` calls; while ``step < steps`` the choice follows the
    parameters and the straight-through gradient flows, afterwards the choice is
    frozen and ``matrix()`` is a constant. Both are saved with the state dict.
    """

    def __init__(self, n_groups: int, n_blocks: int, dim: int, steps: int):
        super().__init__(n_groups, n_blocks, dim)
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
        self.steps = steps
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))

    @property
    def frozen(self) -> bool:
        """Whether the annealing is over and the choice fixed."""
        return int(self.step) >= self.steps

    def temperature(self) -> float:
        """τ at the current step: geometric from 1 to 0.1 over the annealing steps."""
        first, last = _TEMPERATURE
        frac = min(int(self.step), self.steps) / max(self.steps, 1)
        return first * (last / first) ** frac

    def _choose(self) -> None:
        """Set the hard choice from the current parameters."""
        raise NotImplementedError

    def regularization(self) -> torch.Tensor:
        return self.logits.new_zeros(())

    def project_(self) -> None:
        with torch.no_grad():
            if not self.frozen:
                self._choose()
                self.step += 1

    def extra_repr(self) -> str:
        return super().extra_repr() + f", steps={self.steps}"


class SelectionGenerator(_Annealed):
    """A learned choice, per group and block, among given exact operations (the candidates).

    ``logits`` ``(n_groups, n_blocks, E)`` score the E candidates; the value of
    ``matrix()`` is the candidate of highest logit, exactly. In training the gradient
    reaches the logits through the soft mixture Σ_e softmax(logits/τ)_e · M_e
    (straight-through: value hard, gradient soft), a first-order estimate of which
    candidate would lower the loss. ``names`` are the candidates' names
    (:func:`lgn.groups.operators.permutation_operations`), ``chosen()`` the picks.
    """

    def __init__(self, candidates: torch.Tensor | np.ndarray, names: list[str], n_groups: int, n_blocks: int,
                 steps: int = ANNEAL_STEPS):
        m = torch.as_tensor(candidates, dtype=torch.get_default_dtype())
        if m.dim() != 3 or m.shape[-1] != m.shape[-2] or m.shape[0] < 1:
            raise ValueError(f"candidates must have shape (E, d, d) with E >= 1, got {tuple(m.shape)}")
        if len(names) != m.shape[0]:
            raise ValueError(f"need one name per candidate ({m.shape[0]}), got {len(names)}")
        super().__init__(n_groups, n_blocks, m.shape[-1], steps)
        self.names = list(names)
        self.register_buffer("candidates", m.clone().contiguous(), persistent=False)  # rebuilt from the config
        self.logits = nn.Parameter(torch.empty(n_groups, n_blocks, m.shape[0]))
        self.register_buffer("choice", torch.zeros(n_groups, n_blocks, dtype=torch.int64))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Near-uniform logits (Gaussian, standard deviation 0.01), their choice, and the annealing from its start."""
        self.step.zero_()
        self.logits.copy_(torch.randn_like(self.logits) * 0.01)
        self._choose()

    def _choose(self) -> None:
        self.choice.copy_(self.logits.argmax(-1))

    def chosen(self) -> list[list[str]]:
        """The name of the current choice, per group and block."""
        return [[self.names[int(i)] for i in row] for row in self.choice]

    def matrix(self) -> torch.Tensor:
        cand = self.candidates.to(self.logits.dtype)
        hard = cand[self.choice]  # (K, C', d, d)
        if self.frozen or not torch.is_grad_enabled():
            return hard
        w = torch.softmax(self.logits / self.temperature(), dim=-1)  # (K, C', E)
        soft = torch.einsum("kce,eij->kcij", w, cand)
        return hard + (soft - soft.detach())  # the value is exactly `hard`: x − x is 0 in floating point

    def extra_repr(self) -> str:
        return super().extra_repr() + f", candidates={len(self.names)}"


def _sinkhorn(log_alpha: torch.Tensor, iters: int = 20) -> torch.Tensor:
    """A doubly stochastic matrix from scores ``(..., n, n)`` by alternating log-space normalisation."""
    for _ in range(iters):
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=-1, keepdim=True)
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=-2, keepdim=True)
    return log_alpha.exp()


def cycles_permutation(dim: int, order: int) -> np.ndarray:
    """The permutation matrix of ⌊dim/order⌋ cycles of consecutive indices (0→1→…→order−1→0, …), rest fixed."""
    perm = np.arange(dim)
    for start in range(0, dim - dim % order, order):
        perm[start:start + order] = np.roll(np.arange(start, start + order), 1)
    return operators.permutation_matrix(perm)


class PermutationGenerator(_Annealed):
    """A = P·R·Pᵀ: R a fixed permutation of ⌊dim/order⌋ ``order``-cycles, P a learned pixel permutation.

    Every such A is a permutation with R's cycle type, so A**order = I exactly; which
    pixels the cycles visit is learned, and nothing ties it to a named operation
    (rot90 on a 6×6 kernel is one of them). P is the assignment (Hungarian, scipy)
    maximising the scores ``logits`` ``(n_groups, n_blocks, dim, dim)``; the gradient
    flows through the soft P = Sinkhorn(logits/τ) (straight-through, as
    :class:`SelectionGenerator`).
    """

    def __init__(self, n_groups: int, n_blocks: int, dim: int, order: int, steps: int = ANNEAL_STEPS):
        super().__init__(n_groups, n_blocks, dim, steps)
        check_positive_int(order, "order")
        self.order = order
        self.register_buffer("cycles", torch.from_numpy(cycles_permutation(dim, order)).to(torch.get_default_dtype()),
                             persistent=False)
        self.logits = nn.Parameter(torch.empty(n_groups, n_blocks, dim, dim))
        self.register_buffer("perm", torch.zeros(n_groups, n_blocks, dim, dtype=torch.int64))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Gaussian scores, their permutation, and the annealing from its start."""
        self.step.zero_()
        self.logits.copy_(torch.randn_like(self.logits))
        self._choose()

    def _choose(self) -> None:
        if self.logits.is_meta:
            return
        from scipy.optimize import linear_sum_assignment

        scores = self.logits.detach().cpu().double().numpy()
        out = np.empty(scores.shape[:-1], dtype=np.int64)
        for idx in np.ndindex(*scores.shape[:-2]):
            rows, cols = linear_sum_assignment(scores[idx], maximize=True)
            out[idx][rows] = cols
        self.perm.copy_(torch.from_numpy(out))

    def permutation(self) -> torch.Tensor:
        """The hard P ``(n_groups, n_blocks, dim, dim)``: P[i, perm[i]] = 1."""
        eye = torch.eye(self.dim, dtype=self.logits.dtype, device=self.logits.device)
        return eye[self.perm]

    def matrix(self) -> torch.Tensor:
        r = self.cycles.to(self.logits.dtype)
        p = self.permutation()
        hard = p @ r @ p.transpose(-1, -2)
        if self.frozen or not torch.is_grad_enabled():
            return hard
        s = _sinkhorn(self.logits / self.temperature())
        soft = s @ r @ s.transpose(-1, -2)
        return hard + (soft - soft.detach())

    def extra_repr(self) -> str:
        return super().extra_repr() + f", order={self.order}"
