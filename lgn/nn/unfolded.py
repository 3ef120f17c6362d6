"""The unfolded convolutional FISTA encoder of docs/method.md §4 and its two heads."""

from __future__ import annotations

import math

import torch
from torch import nn

from lgn.groups import unit_frobenius_
from lgn.nn.banks import FilterBank, OrbitBank, make_bank
from lgn.nn.batchnorm import BatchNorm2d
from lgn.nn.functional import activation_layout, adaptive_avg_pool, fista_step, output_size, synthesis

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
        batch_norm: batch normalisation of the momentum term after layers 0..L−2
            (:class:`lgn.nn.batchnorm.BatchNorm2d`; the classification model).
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
            [BatchNorm2d(n_filters) for _ in banks[:-1]] if batch_norm else []
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
        y = activation_layout(y)  # channels-last on CPU, and so is every activation: see lgn.nn.kernels
        u_prev = u_mom = None
        for l, (weight, beta) in enumerate(zip(self.filters(), momentum_weights(self.n_layers))):
            # relu(u_mom + η·conv(y − convT(u_mom)) − η·λ); u_mom = None is u_mom = 0
            lam = self.thresholds[l].reshape(-1).repeat(self.orbit_size)  # (F,): filter i·K + g gets λ_g
            u_new = fista_step(y, u_mom, weight, eta, lam * -eta, s, pad)
            if l == self.n_layers - 1:  # the last momentum term is never read
                return u_new
            # the momentum u_new + β·(u_new − u_prev) is lerp(u_new, u_prev, −β)
            if l < len(self.norms):
                u_mom = self.norms[l](u_new, u_prev, -beta)
            else:
                u_mom = u_new if u_prev is None else torch.lerp(u_new, u_prev, -beta)
            u_prev = u_new

    def reset_parameters(self) -> None:
        """Draw every bank afresh (layer by layer, as built), thresholds back to 1, batch norms to their start."""
        for bank in self.banks:
            bank.reset_parameters()
        with torch.no_grad():
            for threshold in self.thresholds:
                threshold.fill_(1.0)
        for norm in self.norms:
            norm.reset_parameters()

    def extra_repr(self) -> str:
        return (f"n_layers={self.n_layers}, n_filters={self.n_filters}, in_channels={self.in_channels}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, eta={self.eta}"
                + (f", orbit_size={self.orbit_size}" if self.orbit_size > 1 else ""))

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

    def reset_parameters(self) -> None:
        self.fc.reset_parameters()

    def extra_repr(self) -> str:
        return f"pool={self.pool}"


class Decoder(nn.Module):
    """A learned dictionary D ``(F, C, k, k)`` decoding the code by synthesis: → ``(N, C, H, W)``."""

    def __init__(self, n_filters: int, in_channels: int, kernel_size: int, stride: int, padding: int):
        super().__init__()
        self.stride, self.padding = stride, padding
        self.dictionary = nn.Parameter(torch.empty(n_filters, in_channels, kernel_size, kernel_size))
        self.reset_parameters()

    def forward(self, code: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return synthesis(code, self.dictionary, self.stride, self.padding, size)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Gaussian atoms at unit Frobenius norm per channel."""
        self.dictionary.copy_(unit_frobenius_(torch.randn_like(self.dictionary), 2))

    def extra_repr(self) -> str:
        F_, C, k, _ = self.dictionary.shape  # filters, channels, kernel
        return f"n_filters={F_}, in_channels={C}, kernel_size={k}, stride={self.stride}, padding={self.padding}"

    def project_(self) -> None:
        unit_frobenius_(self.dictionary.data, 2)


def build_banks(n_layers: int, *, in_channels: int, n_groups: int, group_size: int, kernel_size: int,
                generator: str, action: str, generator_options: dict) -> list[nn.Module]:
    """One bank per layer (:func:`lgn.nn.banks.make_bank`): orbit banks, or independent filters."""
    return [make_bank(in_channels, n_groups, group_size, (kernel_size, kernel_size), generator, action,
                      generator_options) for _ in range(n_layers)]
