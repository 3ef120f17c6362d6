"""Filter banks: the weights of a layer, generated from base filters and a group or free."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from lgn.groups import FixedGenerator, Generator, make_generator, orbit, unit_frobenius_
from lgn.groups.loading import check_order

__all__ = ["OrbitBank", "FilterBank", "ACTIONS", "make_bank"]

ACTIONS = ("channel", "joint")


def _positive(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


class OrbitBank(nn.Module):
    """The orbit filter bank of docs/method.md §3.

    Holds base filters B of shape ``(n_groups, in_channels, *filter_shape)`` and a
    generator. Calling the module returns the bank of ``n_groups · group_size``
    filters, shape ``(n_groups · group_size, in_channels, *filter_shape)``, in
    power-major order: filter ``i·K + g`` is A_g**i applied to B_g.

    Args:
        in_channels: C.
        n_groups: K, one base filter and one generator each.
        group_size: p, powers 0..p−1.
        filter_shape: e.g. ``(k, k)`` for a convolution, ``(d,)`` for dense filters.
        generator: ``'free'``, ``'cyclic'``, ``'fixed:NAME'``, ``'file:PATH'``, a :class:`Generator`, or
            one ``(dim, dim)`` matrix (tensor or array) of order ``group_size``, used as a fixed group.
        action: ``'channel'`` (one d×d matrix per channel, d = ∏ filter_shape) or
            ``'joint'`` (one (C·d)×(C·d) matrix on the whole filter).
        regularizer: invertibility regulariser of a free generator.
    """

    def __init__(
        self,
        in_channels: int,
        n_groups: int,
        group_size: int,
        filter_shape: tuple[int, ...],
        generator: str | Generator | torch.Tensor | np.ndarray = "free",
        action: str = "channel",
        regularizer: str = "aux-inverse",
    ):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("n_groups", n_groups), ("group_size", group_size)):
            _positive(name, value)
        for value in filter_shape:
            _positive("filter size", value)
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {action!r}")
        self.in_channels, self.n_groups, self.group_size = in_channels, n_groups, group_size
        self.filter_shape = tuple(filter_shape)
        self.action = action
        d = math.prod(self.filter_shape)
        n_blocks, dim = (in_channels, d) if action == "channel" else (1, in_channels * d)
        if isinstance(generator, (torch.Tensor, np.ndarray)):
            generator = FixedGenerator(check_order(generator, group_size), n_groups, n_blocks)
        if isinstance(generator, Generator):
            if (generator.n_groups, generator.n_blocks, generator.dim) != (n_groups, n_blocks, dim):
                raise ValueError(
                    f"generator must have shape ({n_groups}, {n_blocks}, {dim}, {dim}), "
                    f"got ({generator.n_groups}, {generator.n_blocks}, {generator.dim}, {generator.dim})"
                )
            self.generator = generator
        else:
            self.generator = make_generator(
                generator, n_groups=n_groups, n_blocks=n_blocks, dim=dim, order=group_size,
                regularizer=regularizer,
                kernel_size=self.filter_shape[0] if len(self.filter_shape) == 2 and
                self.filter_shape[0] == self.filter_shape[1] else None,
                channels_per_block=1 if action == "channel" else in_channels,
            )
        base = torch.randn(n_groups, in_channels, *self.filter_shape)
        self.base = nn.Parameter(unit_frobenius_(base, len(self.filter_shape)))

    @property
    def n_filters(self) -> int:
        return self.n_groups * self.group_size

    @property
    def dtype(self) -> torch.dtype:
        return self.base.dtype

    def forward(self) -> torch.Tensor:
        K, C = self.n_groups, self.in_channels
        a = self.generator.matrix()  # (K, C', dim, dim)
        base = self.base.reshape(K, a.shape[1], a.shape[-1])  # (K, C', dim)
        bank = orbit(a, base, self.group_size)  # (p, K, C', dim)
        return bank.reshape(self.n_filters, C, *self.filter_shape)

    def project_(self) -> None:
        """Unit Frobenius norm for every base kernel and the generator's re-projection."""
        unit_frobenius_(self.base.data, len(self.filter_shape))
        self.generator.project_()

    def regularization(self) -> torch.Tensor:
        return self.generator.regularization()

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, n_groups={self.n_groups}, group_size={self.group_size}, "
                f"filter_shape={self.filter_shape}, action={self.action!r}")


class FilterBank(nn.Module):
    """A bank of independent filters, shape ``(n_filters, in_channels, *filter_shape)``.

    The unconstrained baseline, and the form every bank takes after ``export``.
    Kept at unit Frobenius norm per kernel by :meth:`project_`, like the orbit bank.
    """

    def __init__(self, n_filters: int, in_channels: int, filter_shape: tuple[int, ...],
                 weight: torch.Tensor | None = None):
        super().__init__()
        _positive("n_filters", n_filters)
        _positive("in_channels", in_channels)
        self.filter_shape = tuple(filter_shape)
        shape = (n_filters, in_channels, *self.filter_shape)
        if weight is None:
            weight = unit_frobenius_(torch.randn(shape), len(self.filter_shape))
        elif tuple(weight.shape) != shape:
            raise ValueError(f"weight must have shape {shape}, got {tuple(weight.shape)}")
        self.weight = nn.Parameter(weight.detach().clone())

    @property
    def n_filters(self) -> int:
        return self.weight.shape[0]

    @property
    def dtype(self) -> torch.dtype:
        return self.weight.dtype

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1]

    def forward(self) -> torch.Tensor:
        return self.weight

    def project_(self) -> None:
        unit_frobenius_(self.weight.data, len(self.filter_shape))

    def regularization(self) -> torch.Tensor:
        return self.weight.new_zeros(())


def make_bank(in_channels: int, n_groups: int, group_size: int, filter_shape: tuple[int, ...],
              generator: str | Generator | torch.Tensor | np.ndarray = "free", action: str = "channel",
              regularizer: str = "aux-inverse") -> OrbitBank | FilterBank:
    """An :class:`OrbitBank`, or for ``generator='independent'`` a :class:`FilterBank` of as many filters (no group)."""
    if isinstance(generator, str) and generator == "independent":
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {action!r}")
        _positive("n_groups", n_groups)
        _positive("group_size", group_size)
        return FilterBank(n_groups * group_size, in_channels, filter_shape)
    return OrbitBank(in_channels, n_groups, group_size, filter_shape, generator, action, regularizer)
