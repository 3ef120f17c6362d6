"""The plain CNN baseline: as many filters as the LGN (K·p per layer, k×k), learned independently.

``ModelConfig(architecture='cnn')`` builds it through :func:`lgn.models.build_model`,
so the training loop, ``save_model``/``load_model`` and evaluation treat it like an
LGN. It reads the config's task, in_channels, image_size, num_classes, n_layers,
n_groups·group_size (the width), kernel_size and pool_size; the group settings
(generator, action, regulariser, η, stride) do not apply.

- classify: ``n_layers`` × (k×k convolution with "same" zero padding, BatchNorm,
  ReLU), a 2×2 max pooling after each of the first blocks while the pooled image is at
  least pool_size wide (28 → 14 → 7), adaptive average pooling to pool_size², a
  linear head. At the paper's sizes (L=4, K·p=20, k=6) 47,290 parameters, against
  55,970 trainable ones for the free LGN (30,050 without its auxiliary inverses).
- reconstruct: a convolutional autoencoder: an encoder of ⌈L/2⌉ convolutions whose
  last one has stride 2, a decoder of ⌊L/2⌋ whose first is a stride-2 transposed
  convolution back to the input size, ReLU between layers. 30,301 parameters at the
  paper's sizes.

Unlike the LGN, whose unfolded layers all convolve the C-channel image, every layer
here maps K·p channels to K·p: with a similar parameter count it does several times
the LGN's arithmetic per image, which the pooling and striding keep in bounds.
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
        self.config = c = config
        width, k = c.n_filters, c.kernel_size
        if c.task == "classify":
            layers: list[nn.Module] = []
            size, self.min_size = c.image_size, 1
            for i in range(c.n_layers):
                layers += [_conv(c.in_channels if i == 0 else width, width, k, bias=False),
                           nn.BatchNorm2d(width), nn.ReLU()]
                if i < c.n_layers - 1 and size // 2 >= c.pool_size:
                    layers.append(nn.MaxPool2d(2))
                    size, self.min_size = size // 2, 2 * self.min_size
            self.features = nn.Sequential(*layers)
            self.up = None
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(c.pool_size), nn.Flatten(),
                                      nn.Linear(width * c.pool_size ** 2, c.num_classes))
        else:
            if c.n_layers < 2:
                raise ValueError(f"the CNN autoencoder needs n_layers ≥ 2 (an encoder and a decoder), "
                                 f"got {c.n_layers}")
            n_encoder, pad = (c.n_layers + 1) // 2, (k - 1) // 2
            n_decoder = c.n_layers - n_encoder
            self.min_size = max(1, k - 2 * pad)
            encoder: list[nn.Module] = []
            for i in range(n_encoder):
                c_in = c.in_channels if i == 0 else width
                encoder.append(nn.Conv2d(c_in, width, k, stride=2, padding=pad) if i == n_encoder - 1
                               else _conv(c_in, width, k, bias=True))
                encoder.append(nn.ReLU())
            self.features = nn.Sequential(*encoder)
            self.up = nn.ConvTranspose2d(width, c.in_channels if n_decoder == 1 else width, k, stride=2,
                                         padding=pad)
            decoder: list[nn.Module] = []
            for j in range(1, n_decoder):
                decoder += [nn.ReLU(), _conv(width, c.in_channels if j == n_decoder - 1 else width, k, bias=True)]
            self.head = nn.Sequential(*decoder)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``TypeError``/``ValueError`` unless ``x`` is a valid input batch."""
        dtype = next(self.parameters()).dtype
        check_images(x, channels=self.config.in_channels, min_size=self.min_size, dtype=dtype)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map ``(batch, K·p, h, w)`` before the head (pooled or strided)."""
        self.check_input(x)
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encode(x)
        if self.up is not None:  # back to the input size, whatever its parity
            z = self.up(z, output_size=list(x.shape[-2:]))
        return self.head(z)

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
