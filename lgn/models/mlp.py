"""A full-image group MLP: the model that turns a group acting on whole images into invariance.

``ModelConfig(architecture='mlp')`` builds it through :func:`lgn.models.build_model`:

    flatten → GroupLinear(C·H·W → K·p, generator, orbit_pool) → ReLU → Linear(→ K·p) → ReLU → Linear(→ classes)

The first layer's K·p rows are orbits of the config's generator acting on the whole
image (``'file:PATH'`` for a group ``lgn discover`` found, ``'independent'`` for a
plain MLP of the same width). With ``orbit_pool`` each orbit's p responses are pooled
into one, and for an orthogonal generator A (every pixel permutation, every group
discovery returns) the logits are then exactly invariant to x → A x
(docs/invariance.md). The first layer's rows are kept at unit norm by the training
recipe, like every lgn filter bank; classification only.
"""

from __future__ import annotations

import torch
from torch import nn

from lgn.models.config import ModelConfig
from lgn.nn.checks import check_images
from lgn.nn.layers import GroupLinear

__all__ = ["GroupMLP"]


class GroupMLP(nn.Module):
    """``model(x)``: ``(batch, C, H, W)`` → logits ``(batch, classes)``; ``encode(x)``: the first layer's features."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.architecture != "mlp" or config.task != "classify":
            raise ValueError(f"GroupMLP needs architecture='mlp' and task='classify', "
                             f"got {config.architecture!r} and {config.task!r}")
        self.config = c = config
        n = c.in_channels * c.image_size * c.image_size
        self.group = GroupLinear(n, c.n_groups, c.group_size, in_channels=c.in_channels, bias=True,
                                 generator=c.generator, action=c.action,
                                 generator_options=c.generator_options(), orbit_pool=c.orbit_pool)
        width = c.n_groups if c.orbit_pool else c.n_filters
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(width, c.n_filters), nn.ReLU(),
                                  nn.Linear(c.n_filters, c.num_classes))

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``TypeError``/``ValueError`` unless ``x`` is a valid input batch."""
        c = self.config
        check_images(x, channels=c.in_channels, min_size=1, dtype=self.group.bank.dtype)
        if x.shape[-2:] != (c.image_size, c.image_size):
            raise ValueError(f"expected (batch, {c.in_channels}, {c.image_size}, {c.image_size}), "
                             f"got {tuple(x.shape)}")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The first layer's responses ``(batch, K)`` when pooled, else ``(batch, K·p)``."""
        self.check_input(x)
        return self.group(x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(x))

    def project_(self) -> None:
        """Unit-norm rows of the first layer (and its generator's constraint); call after each optimiser step."""
        self.group.project_()

    def regularization(self) -> torch.Tensor:
        """μ times the generator's invertibility term (zero for a fixed group or independent rows)."""
        return self.config.reg_weight * self.group.regularization()

    def generators(self) -> torch.Tensor | None:
        """The generator ``(1, K, C', n, n)``, or None for independent rows."""
        a = self.group.generators()
        return None if a is None else a.unsqueeze(0)

    def export(self) -> "GroupMLP":
        """A copy whose first layer holds plain weights (``generator='independent'``): same outputs.

        A pooled layer keeps its pooling: the copy's first layer is an independent bank of the same
        K·p rows followed by the same orbit pooling.
        """
        import dataclasses

        out = GroupMLP(dataclasses.replace(self.config, generator="independent"))
        with torch.no_grad():
            out.group.bank.weight.copy_(self.group.bank().reshape(out.group.bank.weight.shape))
            out.group.bias.copy_(self.group.bias)
        out.head.load_state_dict(self.head.state_dict())
        return out.to(self.group.bias).train(self.training)
