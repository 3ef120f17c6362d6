"""The unfolded convolutional FISTA encoder of docs/method.md §4 and its two heads."""

from __future__ import annotations

import math

import torch
from torch import nn

from lgn.groups import unit_frobenius_
from lgn.nn.banks import FilterBank, OrbitBank, make_bank
from lgn.nn.functional import activation_layout, adaptive_avg_pool, batch_norm, fista_step, output_size, synthesis

__all__ = ["UnfoldedEncoder", "ClassifierHead", "Decoder", "momentum_weights"]


def momentum_weights(n_layers: int) -> list[float]:
    """FISTA's momentum factor (t_l − 1)/t_{l+1} for each layer, with t_0 = 1."""
    t, out = 1.0, []
    for _ in range(n_layers):
        t_new = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
        out.append((t - 1.0) / t_new)
        t = t_new
    return out


class UnfoldedEncoder(nn.Module):
    """L untied layers of convolutional FISTA with a learned one-sided threshold.

    Input ``(batch, C, H, W)``; output the code ``(batch, F, h_out, w_out)`` with
    F = filters per layer. Each layer l has a filter bank (an :class:`OrbitBank`
    or a plain :class:`FilterBank`) and a threshold λ_l ``(1, F, 1, 1)``, and
    batch normalisation of the momentum term between layers when ``batch_norm``.

    Args:
        banks: one filter bank per layer, all ``(F, C, k, k)``.
        stride: s; the padding is ``padding`` (docs/method.md §4: s).
        eta: the step size η.
        batch_norm: BatchNorm2d after layers 0..L−2 (classification model).
        orbit_size: p > 1 shares each threshold among the p filters of an orbit (power-major
            layout), so that with an exact group and no batch norm the code moves with the
            group (docs/invariance.md); 1: one threshold per filter.
    """

    def __init__(self, banks: list[nn.Module], *, stride: int, padding: int, eta: float, batch_norm: bool,
                 orbit_size: int = 1):
        super().__init__()
        if not banks:
            raise ValueError("need at least one layer")
        shapes = {(b.n_filters, b.in_channels, b.filter_shape) for b in banks}
        if len(shapes) != 1:
            raise ValueError(f"all layers must have the same bank shape, got {sorted(shapes)}")
        (n_filters, in_channels, filter_shape), = shapes
        if len(filter_shape) != 2 or filter_shape[0] != filter_shape[1]:
            raise ValueError(f"banks must hold square k×k filters, got {filter_shape}")
        self.n_filters, self.in_channels, self.kernel_size = n_filters, in_channels, filter_shape[0]
        self.stride, self.padding, self.eta = stride, padding, float(eta)
        if not isinstance(orbit_size, int) or orbit_size < 1 or n_filters % orbit_size:
            raise ValueError(f"orbit_size must be a positive divisor of the {n_filters} filters, got {orbit_size!r}")
        self.orbit_size = orbit_size
        self.banks = nn.ModuleList(banks)
        self.thresholds = nn.ParameterList(
            [nn.Parameter(torch.ones(1, n_filters // orbit_size, 1, 1)) for _ in banks]
        )
        self.norms = nn.ModuleList(
            [nn.BatchNorm2d(n_filters) for _ in banks[:-1]] if batch_norm else []
        )

    @property
    def n_layers(self) -> int:
        return len(self.banks)

    def code_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """Spatial size of the code for an input of spatial ``size``."""
        k, s, pad = self.kernel_size, self.stride, self.padding
        return output_size(size[0], k, s, pad), output_size(size[1], k, s, pad)

    def filters(self) -> list[torch.Tensor]:
        """The materialised bank of every layer, each ``(F, C, k, k)``."""
        return [bank() for bank in self.banks]

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        s, pad, eta = self.stride, self.padding, self.eta
        y = activation_layout(y)  # channels-last on CPU, and so is every activation: see lgn.nn.functional
        u_prev = u_mom = None
        for l, (weight, beta) in enumerate(zip(self.filters(), momentum_weights(self.n_layers))):
            # relu(u_mom + η·conv(y − convT(u_mom)) − η·λ); u_mom = None is u_mom = 0
            lam = self.thresholds[l].reshape(-1).repeat(self.orbit_size)  # (F,): filter i·K + g gets λ_g
            u_new = fista_step(y, u_mom, weight, eta, lam * -eta, s, pad)
            if l == self.n_layers - 1:  # the last momentum term is never read
                return u_new
            # the momentum u_new + β·(u_new − u_prev) is lerp(u_new, u_prev, −β)
            if l < len(self.norms):
                u_mom = batch_norm(u_new, self.norms[l], u_prev, -beta)
            else:
                u_mom = u_new if u_prev is None else torch.lerp(u_new, u_prev, -beta)
            u_prev = u_new

    def project_(self) -> None:
        for bank in self.banks:
            bank.project_()

    def regularization(self) -> torch.Tensor:
        return sum(bank.regularization() for bank in self.banks)

    def export(self) -> "UnfoldedEncoder":
        """The same encoder with every bank materialised as a plain :class:`FilterBank`."""
        banks = [FilterBank(w.shape[0], w.shape[1], tuple(w.shape[2:]), weight=w.detach())
                 for w in self.filters()]
        out = UnfoldedEncoder(banks, stride=self.stride, padding=self.padding, eta=self.eta,
                              batch_norm=len(self.norms) > 0, orbit_size=self.orbit_size)
        out.thresholds.load_state_dict(self.thresholds.state_dict())
        out.norms.load_state_dict(self.norms.state_dict())
        return out.to(self.thresholds[0].device).train(self.training)


class ClassifierHead(nn.Module):
    """Adaptive average pooling to ``pool × pool``, flatten, linear: ``(N, F, h, w)`` → ``(N, classes)``."""

    def __init__(self, n_filters: int, num_classes: int, pool: int = 4):
        super().__init__()
        self.pool = pool
        self.fc = nn.Linear(n_filters * pool * pool, num_classes)

    def forward(self, code: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        z = adaptive_avg_pool(code, self.pool)  # (N, F, pool, pool)
        return self.fc(z.flatten(1))


class Decoder(nn.Module):
    """A learned dictionary D ``(F, C, k, k)`` decoding the code by synthesis: → ``(N, C, H, W)``."""

    def __init__(self, n_filters: int, in_channels: int, kernel_size: int, stride: int, padding: int):
        super().__init__()
        self.stride, self.padding = stride, padding
        shape = (n_filters, in_channels, kernel_size, kernel_size)
        self.dictionary = nn.Parameter(unit_frobenius_(torch.randn(shape), 2))

    def forward(self, code: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return synthesis(code, self.dictionary, self.stride, self.padding, size)

    def project_(self) -> None:
        unit_frobenius_(self.dictionary.data, 2)


def build_banks(n_layers: int, *, in_channels: int, n_groups: int, group_size: int, kernel_size: int,
                generator: str, action: str, regularizer: str) -> list[nn.Module]:
    """One bank per layer: orbit banks, or independent filters when ``generator == 'independent'``."""
    return [make_bank(in_channels, n_groups, group_size, (kernel_size, kernel_size), generator, action, regularizer)
            for _ in range(n_layers)]
