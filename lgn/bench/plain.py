"""A plain conv net with the filters of a trained LGN classifier: the reference for exported inference.

What a user would write by hand to deploy the trained filters without our
library: ``nn.Conv2d`` for analysis and ``nn.ConvTranspose2d`` (sharing the
weight) for synthesis, in the loop of docs/method.md §4, batch norm in eval mode. ``lgn bench``
times ``LGN.export()`` against it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class PlainConvNet(nn.Module):
    """The inference forward pass of ``model`` (an :class:`lgn.LGN` classifier) in plain PyTorch layers."""

    def __init__(self, model, image_size: int):
        super().__init__()
        encoder, c = model.encoder, model.config
        if c.task != "classify":
            raise ValueError(f"PlainConvNet mirrors classifiers, got task {c.task!r}")
        k, s, pad, F_, C = c.kernel_size, c.stride, c.padding, c.n_filters, c.in_channels
        code = (image_size + 2 * pad - k) // s + 1
        extra = image_size - ((code - 1) * s - 2 * pad + k)  # output padding of the transposed conv
        self.eta, self.n_layers = c.eta, c.n_layers
        self.analysis = nn.ModuleList()
        self.synthesis = nn.ModuleList()
        with torch.no_grad():
            for weight in encoder.filters():
                conv = nn.Conv2d(C, F_, k, stride=s, padding=pad, bias=False)
                conv.weight.copy_(weight)
                tconv = nn.ConvTranspose2d(F_, C, k, stride=s, padding=pad, output_padding=extra, bias=False)
                tconv.weight = conv.weight
                self.analysis.append(conv)
                self.synthesis.append(tconv)
        self.thresholds = nn.ParameterList([nn.Parameter(t.detach().clone()) for t in encoder.thresholds])
        self.norms = nn.ModuleList()
        for bn in encoder.norms:
            plain = nn.BatchNorm2d(F_)
            plain.load_state_dict(bn.state_dict())
            self.norms.append(plain)
        self.pool = nn.AdaptiveAvgPool2d(c.pool_size)
        self.fc = nn.Linear(model.head.fc.in_features, model.head.fc.out_features)
        self.fc.load_state_dict(model.head.fc.state_dict())
        self.to(encoder.thresholds[0]).eval()  # its device and dtype

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        u_prev = u_mom = None
        t = 1.0
        for l in range(self.n_layers):
            r = y if u_mom is None else y - self.synthesis[l](u_mom)
            u_new = self.analysis[l](r) * self.eta - self.eta * self.thresholds[l]
            u_new = F.relu(u_new if u_mom is None else u_mom + u_new)
            t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
            u_mom = u_new if u_prev is None else u_new + ((t - 1) / t_new) * (u_new - u_prev)
            if l < len(self.norms):
                u_mom = self.norms[l](u_mom)
            u_prev, t = u_new, t_new
        return self.fc(self.pool(u_prev).flatten(1))
