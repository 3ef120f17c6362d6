"""Plain-tensor layers whose weights are orbits of a learned group."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lgn.groups import Generator
from lgn.nn.banks import make_bank
from lgn.nn.checks import check_images
from lgn.nn.pool import OrbitPool, check_orbit_pool, orbit_pool

__all__ = ["GroupConv2d", "GroupLinear"]


class GroupConv2d(nn.Module):
    """A convolution whose ``n_groups · group_size`` filters are orbits (docs/method.md §3).

    ``(batch, in_channels, H, W)`` → ``(batch, n_groups · group_size, h_out, w_out)``;
    output channel ``i·K + g`` is the response to A_g**i · B_g.

    ``generator`` is ``'free'``, ``'cyclic'``, ``'fixed:NAME'``, ``'file:PATH'``, a
    :class:`Generator`, one ``(k², k²)`` matrix of order ``group_size`` (a fixed group),
    or ``'independent'``: as many filters with no group (the baseline).
    After each optimiser step call :meth:`project_` (or :func:`lgn.nn.project_`
    on the whole model); add :meth:`regularization` to the loss.
    ``export()`` returns the equivalent plain :class:`torch.nn.Conv2d`.

    ``orbit_pool='max'`` or ``'mean'`` pools each orbit's p maps into one:
    output ``(batch, n_groups, h_out, w_out)``, the bias one per group; export is then
    ``nn.Sequential(Conv2d, OrbitPool)``. When that makes a network invariant: docs/invariance.md.
    """

    def __init__(
        self,
        in_channels: int,
        n_groups: int,
        group_size: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = False,
        generator: str | Generator | torch.Tensor = "free",
        action: str = "channel",
        regularizer: str = "aux-inverse",
        orbit_pool: str | None = None,
    ):
        super().__init__()
        check_orbit_pool(orbit_pool)
        if not isinstance(stride, int) or stride < 1:
            raise ValueError(f"stride must be a positive integer, got {stride!r}")
        if not isinstance(padding, int) or padding < 0:
            raise ValueError(f"padding must be a non-negative integer, got {padding!r}")
        self.bank = make_bank(in_channels, n_groups, group_size, (kernel_size, kernel_size),
                              generator, action, regularizer)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.n_groups, self.group_size, self.orbit_pool = n_groups, group_size, orbit_pool
        self.bias = nn.Parameter(torch.zeros(n_groups if orbit_pool else self.bank.n_filters)) if bias else None

    @property
    def weight(self) -> torch.Tensor:
        """The materialised filter bank ``(K·p, C, k, k)``."""
        return self.bank()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, channels=self.bank.in_channels, min_size=max(1, self.kernel_size - 2 * self.padding),
                     dtype=self.bank.dtype, check_finite=False)
        if self.orbit_pool is None:
            return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)
        y = F.conv2d(x, self.weight, stride=self.stride, padding=self.padding)  # (batch, K·p, h, w)
        y = orbit_pool(y, self.n_groups, self.group_size, self.orbit_pool)  # (batch, K, h, w)
        return y if self.bias is None else y + self.bias.reshape(-1, 1, 1)

    def project_(self) -> None:
        """Re-project the bank (unit-norm base filters, the generator's constraint); call after each step."""
        self.bank.project_()

    def regularization(self) -> torch.Tensor:
        """The generator's invertibility term (zero for a fixed group or independent filters)."""
        return self.bank.regularization()

    def full_bias(self) -> torch.Tensor | None:
        """The bias of each of the ``K·p`` filters ``(K·p,)``: a pooled layer's per-group bias repeated over its orbit."""
        if self.bias is None or self.orbit_pool is None:
            return self.bias
        return self.bias.repeat(self.group_size)  # power-major: filter i·K + g gets b_g

    @torch.no_grad()
    def export(self) -> nn.Conv2d | nn.Sequential:
        """A plain ``nn.Conv2d`` holding the current filters (then an :class:`OrbitPool` when pooled); same outputs."""
        w = self.weight
        conv = nn.Conv2d(w.shape[1], w.shape[0], self.kernel_size, stride=self.stride,
                         padding=self.padding, bias=self.bias is not None,
                         dtype=w.dtype, device=w.device)
        conv.weight.copy_(w)
        if self.bias is not None:
            conv.bias.copy_(self.full_bias())  # max and mean commute with adding one number per orbit
        if self.orbit_pool is None:
            return conv
        return nn.Sequential(conv, OrbitPool(self.n_groups, self.group_size, self.orbit_pool, dim=1))


class GroupLinear(nn.Module):
    """A linear layer whose ``n_groups · group_size`` rows are orbits of dense filters.

    The input ``(batch, in_features)`` is read as ``in_channels`` blocks of
    ``in_features / in_channels`` features; the per-channel action applies one
    generator per block, the joint action one to the whole vector. Output
    ``(batch, n_groups · group_size)``, power-major, or with ``orbit_pool='max'``/``'mean'``
    ``(batch, n_groups)``: each orbit pooled, invariant to x → A**(−T) x (A x for an
    orthogonal A: a pixel permutation, a found group). ``generator``, :meth:`project_`
    and :meth:`regularization` as for :class:`GroupConv2d`.
    """

    def __init__(
        self,
        in_features: int,
        n_groups: int,
        group_size: int,
        in_channels: int = 1,
        bias: bool = False,
        generator: str | Generator | torch.Tensor = "free",
        action: str = "channel",
        regularizer: str = "aux-inverse",
        orbit_pool: str | None = None,
    ):
        super().__init__()
        check_orbit_pool(orbit_pool)
        if not isinstance(in_features, int) or in_features < 1 or in_features % in_channels:
            raise ValueError(
                f"in_features must be a positive multiple of in_channels={in_channels}, got {in_features!r}"
            )
        self.in_features = in_features
        self.bank = make_bank(in_channels, n_groups, group_size, (in_features // in_channels,),
                              generator, action, regularizer)
        self.n_groups, self.group_size, self.orbit_pool = n_groups, group_size, orbit_pool
        self.bias = nn.Parameter(torch.zeros(n_groups if orbit_pool else self.bank.n_filters)) if bias else None

    @property
    def weight(self) -> torch.Tensor:
        """The materialised weight ``(K·p, in_features)``."""
        return self.bank().reshape(self.bank.n_filters, self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"expected shape (..., {self.in_features}), got {tuple(x.shape)}")
        if self.orbit_pool is None:
            return F.linear(x, self.weight, self.bias)
        y = orbit_pool(F.linear(x, self.weight), self.n_groups, self.group_size, self.orbit_pool, dim=-1)
        return y if self.bias is None else y + self.bias  # (..., K)

    def project_(self) -> None:
        """Re-project the bank (unit-norm base filters, the generator's constraint); call after each step."""
        self.bank.project_()

    def regularization(self) -> torch.Tensor:
        """The generator's invertibility term (zero for a fixed group or independent filters)."""
        return self.bank.regularization()

    full_bias = GroupConv2d.full_bias

    @torch.no_grad()
    def export(self) -> nn.Linear | nn.Sequential:
        """A plain ``nn.Linear`` holding the current weight (then an :class:`OrbitPool` when pooled); same outputs."""
        w = self.weight
        lin = nn.Linear(w.shape[1], w.shape[0], bias=self.bias is not None, dtype=w.dtype, device=w.device)
        lin.weight.copy_(w)
        if self.bias is not None:
            lin.bias.copy_(self.full_bias())
        if self.orbit_pool is None:
            return lin
        return nn.Sequential(lin, OrbitPool(self.n_groups, self.group_size, self.orbit_pool, dim=-1))
