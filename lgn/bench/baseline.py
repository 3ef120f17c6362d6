"""The straightforward implementation of docs/method.md §3–§4, kept as the speed baseline.

Written the way the method reads on paper, and in the authors' checkpoint layout
(``B.{l}``, ``A.{l}``, ``A_inv.{l}``, ``lmbd.{l}``, ``bn.{l}``, ``fc``, ``D``):
the filter bank is built by concatenating explicit matrix powers, the synthesis
step is ``conv_transpose2d`` with output padding, and every step is a Python
loop. No model of the library uses it: ``lgn bench`` times the library against it,
and the tests use it as an independent computation of the forward pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class BaselineLGN(nn.Module):
    """Unfolded FISTA with orbit filter banks; ``task`` is 'classify' or 'reconstruct'."""

    def __init__(self, in_channels=1, num_classes=10, n_layers=4, n_groups=5, group_size=4,
                 kernel_size=6, stride=1, eta=0.01, task="classify"):
        super().__init__()
        K, C, k, p = n_groups, in_channels, kernel_size, group_size
        self.L, self.K, self.C, self.k, self.p = n_layers, K, C, k, p
        self.stride, self.eta, self.task = stride, eta, task
        self.B = nn.ParameterList([nn.Parameter(self._unit(torch.randn(K, C, k, k))) for _ in range(n_layers)])
        self.A = nn.ParameterList([nn.Parameter(self._unit(torch.randn(K, C, k * k, k * k)))
                                   for _ in range(n_layers)])
        self.A_inv = nn.ParameterList([nn.Parameter(self._unit(torch.randn(K, C, k * k, k * k)))
                                       for _ in range(n_layers)])
        self.lmbd = nn.ParameterList([nn.Parameter(torch.ones(1, K * p, 1, 1)) for _ in range(n_layers)])
        if task == "classify":
            self.bn = nn.ModuleList([nn.BatchNorm2d(K * p) for _ in range(n_layers - 1)])
            self.fc = nn.Linear(K * p * 16, num_classes)
        else:
            self.D = nn.Parameter(self._unit(torch.randn(K * p, C, k, k)))

    @staticmethod
    def _unit(t):
        return t / t.flatten(-2).norm(dim=-1)[..., None, None]

    def filter_bank(self, l):
        """Concatenate A**i · B over powers i, one power at a time."""
        K, C, k = self.K, self.C, self.k
        filters = []
        for i in range(self.p):
            power = torch.linalg.matrix_power(self.A[l], i)  # (K, C, k², k²)
            w = torch.matmul(power, self.B[l].reshape(K, C, k * k, 1))
            filters.append(w.reshape(K, C, k, k))
        return torch.cat(filters, dim=0)

    def forward(self, y):
        N, C, H, W = y.shape
        s = self.stride
        h_out = (H + 2 * s - self.k) // s + 1
        w_out = (W + 2 * s - self.k) // s + 1
        op_h = H - ((h_out - 1) * s - 2 * s + self.k)
        op_w = W - ((w_out - 1) * s - 2 * s + self.k)
        u_prev = torch.zeros(N, self.K * self.p, h_out, w_out, dtype=y.dtype, device=y.device)
        u_mom = u_prev
        t = 1.0
        for l in range(self.L):
            w = self.filter_bank(l)
            r = y - F.conv_transpose2d(u_mom, w, stride=s, padding=s, output_padding=(op_h, op_w))
            u_new = F.relu(u_mom + self.eta * F.conv2d(r, w, stride=s, padding=s) - self.eta * self.lmbd[l])
            t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
            u_mom = u_new + ((t - 1) / t_new) * (u_new - u_prev)
            if self.task == "classify" and l < self.L - 1:
                u_mom = self.bn[l](u_mom)
            u_prev, t = u_new, t_new
        if self.task == "classify":
            z = F.adaptive_avg_pool2d(u_prev, 4)
            return self.fc(z.flatten(1))
        return F.conv_transpose2d(u_prev, self.D, stride=s, padding=s, output_padding=(op_h, op_w))

    def project_(self):
        """Unit Frobenius norm for every kernel of B and D and every matrix of A, after each step."""
        with torch.no_grad():
            for b, a in zip(self.B, self.A):
                b.copy_(self._unit(b))
                a.copy_(self._unit(a))
            if self.task != "classify":
                self.D.copy_(self._unit(self.D))

    def regularization(self):
        eye = torch.eye(self.k * self.k, dtype=self.A[0].dtype, device=self.A[0].device)
        return sum((a @ b - eye).flatten(-2).norm(dim=-1).sum() for a, b in zip(self.A, self.A_inv))
