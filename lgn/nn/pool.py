"""Orbit pooling: one response per group, the max or mean of its p responses (docs/invariance.md).

An orbit layer's outputs come power-major, channel ``i·K + g`` being the response
to A_g**i · B_g. Moving the input by the group (x → A**(−T) x, which is A x for an
orthogonal A) only rolls each orbit's p responses (:mod:`lgn.testing`); the max or
the mean over the orbit does not change, so the pooled responses are invariant.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ORBIT_POOLS", "orbit_pool", "check_orbit_pool", "OrbitPool"]

ORBIT_POOLS = ("max", "mean")


def check_orbit_pool(mode: str | None) -> None:
    """Raise ``ValueError`` unless ``mode`` is None or one of :data:`ORBIT_POOLS`."""
    if mode is not None and mode not in ORBIT_POOLS:
        raise ValueError(f"orbit_pool must be one of {', '.join(ORBIT_POOLS)} or None, got {mode!r}")


def orbit_pool(y: torch.Tensor, n_groups: int, group_size: int, mode: str, dim: int = 1) -> torch.Tensor:
    """Pool the ``K·p`` power-major responses along ``dim`` of ``y`` to ``K``: ``(..., K·p, ...)`` → ``(..., K, ...)``."""
    if mode not in ORBIT_POOLS:
        raise ValueError(f"orbit_pool must be one of {', '.join(ORBIT_POOLS)}, got {mode!r}")
    dim = dim % y.dim()
    if y.shape[dim] != n_groups * group_size:
        raise ValueError(f"expected {n_groups}·{group_size} = {n_groups * group_size} responses along dim {dim}, "
                         f"got shape {tuple(y.shape)}")
    orbits = y.unflatten(dim, (group_size, n_groups))  # (..., p, K, ...)
    return orbits.amax(dim) if mode == "max" else orbits.mean(dim)


class OrbitPool(nn.Module):
    """:func:`orbit_pool` as a module (what an exported pooled layer ends in); no parameters."""

    def __init__(self, n_groups: int, group_size: int, mode: str, dim: int = 1):
        super().__init__()
        check_orbit_pool(mode)
        self.n_groups, self.group_size, self.mode, self.dim = n_groups, group_size, mode, dim

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return orbit_pool(y, self.n_groups, self.group_size, self.mode, self.dim)

    def extra_repr(self) -> str:
        return f"n_groups={self.n_groups}, group_size={self.group_size}, mode={self.mode!r}, dim={self.dim}"
