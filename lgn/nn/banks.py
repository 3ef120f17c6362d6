"""Filter banks: the weights of a layer, generated from base filters and a group or free."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from lgn.groups import (FixedGenerator, Generator, GeneratorShape, generator_names, is_generator, make_generator,
                        unit_frobenius_)
from lgn.groups.loading import check_order
from lgn.nn.functional import orbit_filters
from lgn.settings import check_positive_int

__all__ = ["OrbitBank", "FilterBank", "ACTIONS", "INDEPENDENT", "generator_choices", "check_generator", "make_bank"]

ACTIONS = ("channel", "joint")
# generator="independent" names no generator but the other kind of bank: a FilterBank of K·p free filters
# (the baseline without a group); make_bank is where the name becomes that bank
INDEPENDENT = "independent"


def generator_choices() -> list[str]:
    """What ``generator`` may name in a layer or a model config: a registered generator, or ``'independent'``."""
    return [*generator_names(), INDEPENDENT]


def check_generator(name) -> None:
    """Raise ``ValueError`` listing :func:`generator_choices` unless ``name`` is one of them."""
    if not (name == INDEPENDENT or isinstance(name, str) and is_generator(name)):
        raise ValueError(f"generator must be one of {', '.join(generator_choices())}, got {name!r}")


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
        generator: a registered name (``'free'``, ``'cyclic'``, ``'fixed:NAME'``, ``'file:PATH'``, …,
            see :func:`lgn.groups.generator_names`), a :class:`Generator` of shape
            ``(n_groups, n_blocks, dim, dim)``, or one ``(dim, dim)`` matrix (tensor or array)
            of order ``group_size``, used as a fixed group.
        action: ``'channel'`` (one d×d matrix per channel, d = ∏ filter_shape) or
            ``'joint'`` (one (C·d)×(C·d) matrix on the whole filter).
        generator_options: keyword options of a named generator's factory, e.g.
            ``{"regularizer": "none"}`` for ``'free'``.
    """

    def __init__(
        self,
        in_channels: int,
        n_groups: int,
        group_size: int,
        filter_shape: tuple[int, ...],
        generator: str | Generator | torch.Tensor | np.ndarray = "free",
        action: str = "channel",
        generator_options: dict | None = None,
    ):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("n_groups", n_groups), ("group_size", group_size)):
            check_positive_int(value, name)
        for value in filter_shape:
            check_positive_int(value, "filter size")
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
            if generator_options:
                raise ValueError(f"generator_options are for a generator given by name, got a "
                                 f"{type(generator).__name__} and {generator_options}")
            if (generator.n_groups, generator.n_blocks, generator.dim) != (n_groups, n_blocks, dim):
                raise ValueError(
                    f"generator must have shape ({n_groups}, {n_blocks}, {dim}, {dim}), "
                    f"got ({generator.n_groups}, {generator.n_blocks}, {generator.dim}, {generator.dim})"
                )
            self.generator = generator
        else:
            square = len(self.filter_shape) == 2 and self.filter_shape[0] == self.filter_shape[1]
            shape = GeneratorShape(n_groups, n_blocks, dim, group_size,
                                   kernel_size=self.filter_shape[0] if square else None,
                                   channels_per_block=1 if action == "channel" else in_channels)
            self.generator = make_generator(generator, shape, **(generator_options or {}))
        self.base = nn.Parameter(torch.empty(n_groups, in_channels, *self.filter_shape))
        self._reset_base()

    def reset_parameters(self) -> None:
        """Draw the generator's parameters and the base filters afresh, in the order construction does."""
        self.generator.reset_parameters()
        self._reset_base()

    @torch.no_grad()
    def _reset_base(self) -> None:
        """Gaussian base filters at unit Frobenius norm per channel."""
        self.base.copy_(unit_frobenius_(torch.randn_like(self.base), len(self.filter_shape)))

    @property
    def n_filters(self) -> int:
        return self.n_groups * self.group_size

    @property
    def dtype(self) -> torch.dtype:
        return self.base.dtype

    def forward(self) -> torch.Tensor:
        return orbit_filters(self.generator.matrix(), self.base, self.group_size)

    def generators(self) -> torch.Tensor:
        """The generators ``(n_groups, n_blocks, dim, dim)``."""
        return self.generator.matrix()

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
        check_positive_int(n_filters, "n_filters")
        check_positive_int(in_channels, "in_channels")
        self.filter_shape = tuple(filter_shape)
        shape = (n_filters, in_channels, *self.filter_shape)
        if weight is None:
            self.weight = nn.Parameter(torch.empty(shape))
            self.reset_parameters()
        elif tuple(weight.shape) != shape:
            raise ValueError(f"weight must have shape {shape}, got {tuple(weight.shape)}")
        else:
            self.weight = nn.Parameter(weight.detach().clone())

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Gaussian filters at unit Frobenius norm per channel."""
        self.weight.copy_(unit_frobenius_(torch.randn_like(self.weight), len(self.filter_shape)))

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

    def generators(self) -> None:
        """None: independent filters have no generator."""
        return None

    def project_(self) -> None:
        unit_frobenius_(self.weight.data, len(self.filter_shape))

    def regularization(self) -> torch.Tensor:
        return self.weight.new_zeros(())

    def extra_repr(self) -> str:
        return f"n_filters={self.n_filters}, in_channels={self.in_channels}, filter_shape={self.filter_shape}"


def make_bank(in_channels: int, n_groups: int, group_size: int, filter_shape: tuple[int, ...],
              generator: str | Generator | torch.Tensor | np.ndarray = "free", action: str = "channel",
              generator_options: dict | None = None) -> OrbitBank | FilterBank:
    """An :class:`OrbitBank`, or for ``generator='independent'`` a :class:`FilterBank` of as many filters (no group)."""
    if isinstance(generator, str) and generator == INDEPENDENT:
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {action!r}")
        if generator_options:
            raise ValueError(f"independent filters take no generator options, got {generator_options}")
        check_positive_int(n_groups, "n_groups")
        check_positive_int(group_size, "group_size")
        return FilterBank(n_groups * group_size, in_channels, filter_shape)
    return OrbitBank(in_channels, n_groups, group_size, filter_shape, generator, action, generator_options)
