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


def _pair(value, name: str, least: int) -> tuple[int, int]:
    """``value`` (an int, or two ints for height and width) as ``(h, w)``, each at least ``least``."""
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= least for v in pair)):
        kind = "positive" if least == 1 else "non-negative"
        raise ValueError(f"{name} must be a {kind} integer or a pair of them, got {value!r}")
    return tuple(pair)


class _GroupLayer(nn.Module):
    """What the group layers share: a filter bank of K·p filters (:func:`lgn.nn.banks.make_bank`), an optional
    bias starting at zero, orbit pooling, the recipe's two steps and ``export()``. A subclass gives ``weight``,
    the materialised bank in its own shape, :meth:`_plain`, the torch layer of that shape, and ``ORBIT_DIM``,
    the axis of its outputs that holds the K·p responses.

    ``orbit_pool='max'`` or ``'mean'`` pools each orbit's p responses into one (:func:`lgn.nn.pool.orbit_pool`):
    K outputs instead of K·p, and the bias is one per group ``(K,)`` instead of one per filter ``(K·p,)``.
    """

    ORBIT_DIM: int  # the axis of the outputs holding the K·p responses

    def __init__(self, bank: nn.Module, n_groups: int, group_size: int, bias: bool, orbit_pool: str | None):
        check_orbit_pool(orbit_pool)
        super().__init__()
        self.n_groups, self.group_size, self.orbit_pool = n_groups, group_size, orbit_pool
        self.bank = bank
        self.bias = nn.Parameter(torch.zeros(n_groups if orbit_pool else bank.n_filters)) if bias else None

    def _plain(self, weight: torch.Tensor) -> nn.Module:
        """An untrained ``nn.Conv2d`` or ``nn.Linear`` of this layer's shape, dtype and device."""
        raise NotImplementedError

    def _filter_bias(self) -> torch.Tensor | None:
        """The bias of each of the K·p filters ``(K·p,)``, or None: a pooled layer's bias of group g repeated over
        its orbit (power-major, filter i·K + g gets b_g); max and mean commute with adding one number per orbit."""
        if self.bias is None or self.orbit_pool is None:
            return self.bias
        return self.bias.repeat(self.group_size)

    def _pool(self, y: torch.Tensor) -> torch.Tensor:
        """The K·p responses along ``ORBIT_DIM``, pooled to K when the layer pools its orbits."""
        if self.orbit_pool is None:
            return y
        return orbit_pool(y, self.n_groups, self.group_size, self.orbit_pool, dim=self.ORBIT_DIM)

    def reset_parameters(self) -> None:
        """Draw the bank afresh (its generator, then its base filters) and zero the bias, as construction does."""
        self.bank.reset_parameters()
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def generators(self) -> torch.Tensor | None:
        """The generators ``(n_groups, n_blocks, dim, dim)`` (n_blocks = in_channels for the per-channel action,
        1 for the joint one), or None for ``generator='independent'``."""
        return self.bank.generators()

    def project_(self) -> None:
        """Re-project the bank (unit-norm base filters, the generator's constraint); call after each step."""
        self.bank.project_()

    def regularization(self) -> torch.Tensor:
        """The generator's invertibility term (zero for a fixed group or independent filters)."""
        return self.bank.regularization()

    @torch.no_grad()
    def export(self) -> nn.Module:
        """The plain torch layer holding the current weight (and bias), followed by an :class:`OrbitPool` when the
        layer pools its orbits: same outputs, no generator."""
        w = self.weight
        plain = self._plain(w)
        plain.weight.copy_(w)
        if self.bias is not None:
            plain.bias.copy_(self._filter_bias())
        if self.orbit_pool is None:
            return plain
        return nn.Sequential(plain, OrbitPool(self.n_groups, self.group_size, self.orbit_pool, dim=self.ORBIT_DIM))

    def extra_repr(self) -> str:
        return f"bias={self.bias is not None}" + (f", orbit_pool={self.orbit_pool!r}" if self.orbit_pool else "")


class GroupConv2d(_GroupLayer):
    """A convolution whose ``n_groups · group_size`` filters are orbits (docs/method.md §3).

    ``(batch, in_channels, H, W)`` → ``(batch, n_groups · group_size, h_out, w_out)``;
    output channel ``i·K + g`` is the response to A_g**i · B_g
    (:func:`lgn.nn.functional.group_conv2d`).

    ``kernel_size``, ``stride``, ``padding`` and ``dilation`` are :class:`torch.nn.Conv2d`'s: an int or an
    ``(h, w)`` pair, and ``padding`` also ``'same'`` (stride 1 only, as torch) or ``'valid'``; ``h_out`` and
    ``w_out`` are torch's. A kernel of ``(kh, kw)`` has generators of size ``kh·kw``; the known operations
    (``'fixed:rot90'``, ``'select'``, …) need a square one. ``bias`` is False by default, where
    ``nn.Conv2d``'s is True: the paper's layers have none (a batch norm follows them).

    ``generator`` is a registered name (``'free'``, ``'cyclic'``, ``'fixed:NAME'``,
    ``'file:PATH'``, …, :func:`lgn.groups.generator_names`) with its factory's
    ``generator_options``, a :class:`Generator`, one ``(k², k²)`` matrix of order
    ``group_size`` (a fixed group), or ``'independent'``: as many filters with no group
    (the baseline). After each optimiser step call :meth:`project_` (or
    :func:`lgn.nn.project_` on the whole model); add :meth:`regularization` to the
    loss. ``export()`` returns the equivalent plain :class:`torch.nn.Conv2d`.

    ``orbit_pool='max'`` or ``'mean'`` pools each orbit's p maps into one:
    output ``(batch, n_groups, h_out, w_out)``, the bias one per group; export is then
    ``nn.Sequential(Conv2d, OrbitPool)``. When that makes a network invariant: docs/invariance.md.
    """

    ORBIT_DIM = 1  # (batch, K·p, h_out, w_out)

    def __init__(
        self,
        in_channels: int,
        n_groups: int,
        group_size: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = False,
        generator: str | Generator | torch.Tensor = "free",
        action: str = "channel",
        generator_options: dict | None = None,
        orbit_pool: str | None = None,
    ):
        kernel_size, stride, dilation = (_pair(kernel_size, "kernel_size", 1), _pair(stride, "stride", 1),
                                         _pair(dilation, "dilation", 1))
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"padding must be an integer, a pair of them, 'same' or 'valid', got {padding!r}")
            if padding == "same" and stride != (1, 1):
                raise ValueError(f"padding='same' needs stride 1 (as in torch.nn.Conv2d), got stride={stride}")
        else:
            padding = _pair(padding, "padding", 0)
        bank = make_bank(in_channels, n_groups, group_size, kernel_size, generator, action, generator_options)
        super().__init__(bank, n_groups, group_size, bias, orbit_pool)
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation

    @property
    def weight(self) -> torch.Tensor:
        """The materialised filter bank ``(K·p, C, kh, kw)``."""
        return self.bank()

    def _min_size(self) -> tuple[int, int]:
        """The least input height and width: the dilated kernel's extent less the padding on both sides."""
        if self.padding == "same":
            return 1, 1
        pad = (0, 0) if self.padding == "valid" else self.padding
        return tuple(max(1, d * (k - 1) + 1 - 2 * p) for k, d, p in zip(self.kernel_size, self.dilation, pad))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, channels=self.bank.in_channels, min_size=self._min_size(), dtype=self.bank.dtype,
                     check_finite=False)
        y = F.conv2d(x, self.weight, self._filter_bias(), stride=self.stride, padding=self.padding,
                     dilation=self.dilation)  # (N, K·p, h_out, w_out)
        return self._pool(y)

    def _plain(self, weight: torch.Tensor) -> nn.Conv2d:
        return nn.Conv2d(weight.shape[1], weight.shape[0], self.kernel_size, stride=self.stride,
                         padding=self.padding, dilation=self.dilation, bias=self.bias is not None,
                         dtype=weight.dtype, device=weight.device)

    def extra_repr(self) -> str:
        return (f"{self.bank.in_channels}, n_groups={self.n_groups}, group_size={self.group_size}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding!r}, "
                f"dilation={self.dilation}, {super().extra_repr()}")


class GroupLinear(_GroupLayer):
    """A linear layer whose ``n_groups · group_size`` rows are orbits of dense filters.

    The input ``(batch, in_features)`` is read as ``in_channels`` blocks of
    ``in_features / in_channels`` features; the per-channel action applies one
    generator per block, the joint action one to the whole vector. Output
    ``(batch, n_groups · group_size)``, power-major
    (:func:`lgn.nn.functional.group_linear`), or with ``orbit_pool='max'``/``'mean'``
    ``(batch, n_groups)``: each orbit pooled, invariant to x → A**(−T) x (A x for an
    orthogonal A: a pixel permutation, a found group). ``generator``, :meth:`project_`
    and :meth:`regularization` as for :class:`GroupConv2d`.
    """

    ORBIT_DIM = -1  # (..., K·p)

    def __init__(
        self,
        in_features: int,
        n_groups: int,
        group_size: int,
        in_channels: int = 1,
        bias: bool = False,
        generator: str | Generator | torch.Tensor = "free",
        action: str = "channel",
        generator_options: dict | None = None,
        orbit_pool: str | None = None,
    ):
        if not isinstance(in_features, int) or in_features < 1 or in_features % in_channels:
            raise ValueError(
                f"in_features must be a positive multiple of in_channels={in_channels}, got {in_features!r}"
            )
        bank = make_bank(in_channels, n_groups, group_size, (in_features // in_channels,), generator, action,
                         generator_options)
        super().__init__(bank, n_groups, group_size, bias, orbit_pool)
        self.in_features = in_features

    @property
    def weight(self) -> torch.Tensor:
        """The materialised weight ``(K·p, in_features)``."""
        return self.bank().reshape(self.bank.n_filters, self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"expected shape (..., {self.in_features}), got {tuple(x.shape)}")
        return self._pool(F.linear(x, self.weight, self._filter_bias()))  # (..., K·p) or pooled (..., K)

    def _plain(self, weight: torch.Tensor) -> nn.Linear:
        return nn.Linear(weight.shape[1], weight.shape[0], bias=self.bias is not None, dtype=weight.dtype,
                         device=weight.device)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, n_groups={self.n_groups}, group_size={self.group_size}, "
                f"in_channels={self.bank.in_channels}, {super().extra_repr()}")
