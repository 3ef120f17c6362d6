"""The plain CNN baseline: as many filters as the LGN (K·p per layer, k×k), learned independently.

``ModelConfig(architecture='cnn')`` builds it through :func:`lgn.models.build_model`,
so the training loop, ``save_model``/``load_model`` and evaluation treat it like an
LGN. It reads the config's task, in_channels, num_classes, n_layers, n_groups·group_size
(the width), kernel_size and pool_size; the group settings (generator, action,
regulariser, η) do not apply. Convolutions use stride 1 and "same" zero padding, so any
image of at least one pixel keeps its size through the stack.

- classify: ``n_layers`` × (conv k×k, BatchNorm, ReLU), adaptive average pooling to
  pool_size², a linear head. With the paper's sizes (L=4, K·p=20, k=6) about 47k
  parameters, against 56k trainable ones for the free LGN (30k without its
  auxiliary inverses).
- reconstruct: an encoder of ⌈L/2⌉ convolutions and a decoder of ⌊L/2⌋, ReLU
  between them, the last one back to C channels: about 30k parameters at the
  paper's sizes.
"""

from __future__ import annotations

import torch
from torch import nn

from lgn.models.config import ModelConfig
from lgn.nn.checks import check_images

__all__ = ["CNN"]


def _conv(c_in: int, c_out: int, k: int, bias: bool) -> nn.Sequential:
    """Zero padding of k − 1 pixels (the extra one of an even k right and below), then a k×k convolution."""
    before = (k - 1) // 2
    return nn.Sequential(nn.ZeroPad2d((before, k - 1 - before, before, k - 1 - before)),
                         nn.Conv2d(c_in, c_out, k, bias=bias))


class CNN(nn.Module):
    """``model(x)``: ``(batch, C, H, W)`` → logits ``(batch, classes)`` or a reconstruction ``(batch, C, H, W)``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.architecture != "cnn":
            raise ValueError(f"CNN needs architecture='cnn', got {config.architecture!r}")
        if config.stride != 1:
            raise ValueError(f"the CNN baseline uses stride 1, got stride={config.stride}")
        self.config = c = config
        width, k = c.n_filters, c.kernel_size
        if c.task == "classify":
            layers: list[nn.Module] = []
            for i in range(c.n_layers):
                layers += [_conv(c.in_channels if i == 0 else width, width, k, bias=False),
                           nn.BatchNorm2d(width), nn.ReLU()]
            self.features = nn.Sequential(*layers)
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(c.pool_size), nn.Flatten(),
                                      nn.Linear(width * c.pool_size ** 2, c.num_classes))
        else:
            n_encoder = max(1, (c.n_layers + 1) // 2)
            n_decoder = max(1, c.n_layers - n_encoder)
            encoder = []
            for i in range(n_encoder):
                encoder += [_conv(c.in_channels if i == 0 else width, width, k, bias=True), nn.ReLU()]
            decoder: list[nn.Module] = []
            for i in range(n_decoder):
                last = i == n_decoder - 1
                decoder.append(_conv(width, c.in_channels if last else width, k, bias=True))
                if not last:
                    decoder.append(nn.ReLU())
            self.features = nn.Sequential(*encoder)
            self.head = nn.Sequential(*decoder)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``TypeError``/``ValueError`` unless ``x`` is a valid input batch."""
        dtype = next(self.parameters()).dtype
        check_images(x, channels=self.config.in_channels, min_size=1, dtype=dtype)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map ``(batch, K·p, H, W)`` before the head."""
        self.check_input(x)
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(x))

    def project_(self) -> None:
        """Nothing to re-project: the training loop calls this after every step of every model."""

    def regularization(self) -> torch.Tensor:
        """Zero: the CNN has no generators to keep invertible."""
        return next(self.parameters()).new_zeros(())

    def generators(self) -> None:
        """None: a CNN has no group to analyse."""
        return None

    def export(self) -> "CNN":
        """The model itself: its layers are plain PyTorch already."""
        return self
