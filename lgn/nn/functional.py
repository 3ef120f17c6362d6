"""The layers' operations as functions of plain tensors, as ``torch.nn.functional`` is to ``torch.nn``.

The orbit layers (docs/method.md §3): :func:`orbit_filters` builds the filters
B, A·B, …, A**(p−1)·B of base filters B under generators A;
:func:`group_conv2d` and :func:`group_linear` apply them, as
:class:`lgn.nn.GroupConv2d` and :class:`lgn.nn.GroupLinear` do.

The unfolded network (docs/method.md §4): :func:`analysis` (a convolution),
:func:`synthesis` (its adjoint), :func:`fista_step` (one proximal-gradient
layer) and :func:`adaptive_avg_pool`. Each is written here in plain PyTorch,
which is what runs on CUDA and under autocast. On the CPU in full precision the
switch :func:`lgn.nn.kernels.fused` hands each of these four to its kernel in
:mod:`lgn.nn.kernels` instead: the same values, several times faster there,
for the reasons that module gives.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lgn.groups import orbit
from lgn.nn import kernels

__all__ = ["orbit_filters", "group_conv2d", "group_linear", "output_size", "activation_layout", "analysis",
           "synthesis", "fista_step", "adaptive_avg_pool"]


def orbit_filters(A: torch.Tensor, B: torch.Tensor, p: int) -> torch.Tensor:
    """The orbit filter bank: ``(K, C', d, d)`` generators, ``(K, C, *filter_shape)`` bases → ``(p·K, C, *filter_shape)``.

    Filter ``i·K + g`` is A_g**i applied to B_g, power-major. Each group's base
    is read as C' blocks of d values (C·∏filter_shape = C'·d): C' = C, one
    d×d matrix per input channel (the per-channel action), or C' = 1, one
    (C·d)×(C·d) matrix on the whole filter (the joint action).
    """
    K, C, *filter_shape = B.shape  # groups, input channels, filter
    n = math.prod(B.shape[1:])  # values of one base filter
    if A.dim() != 4 or A.shape[0] != K or A.shape[-1] != A.shape[-2] or A.shape[1] * A.shape[-1] != n:
        raise ValueError(f"generators must be (K={K}, C', d, d) with C'·d = {n} (the values of a base filter "
                         f"{tuple(B.shape[1:])}), got {tuple(A.shape)}")
    base = B.reshape(K, A.shape[1], A.shape[-1])  # (K, C', d)
    bank = orbit(A, base, p)  # (p, K, C', d)
    return bank.reshape(p * K, C, *filter_shape)


def group_conv2d(x: torch.Tensor, A: torch.Tensor, B: torch.Tensor, p: int, stride: int = 1, padding: int = 0,
                 bias: torch.Tensor | None = None) -> torch.Tensor:
    """The group convolution: ``(N, C, H, W)`` → ``(N, p·K, h_out, w_out)`` with the filters of :func:`orbit_filters`.

    ``A`` ``(K, C', k², k²)`` or ``(K, 1, C·k², C·k²)``, ``B`` ``(K, C, k, k)``,
    ``bias`` ``(p·K,)``; output channel ``i·K + g`` is the response to A_g**i·B_g.
    """
    return F.conv2d(x, orbit_filters(A, B, p), bias, stride=stride, padding=padding)


def group_linear(x: torch.Tensor, A: torch.Tensor, B: torch.Tensor, p: int,
                 bias: torch.Tensor | None = None) -> torch.Tensor:
    """The group linear map: ``(..., C·n)`` → ``(..., p·K)`` with the rows of :func:`orbit_filters`.

    ``A`` ``(K, C', d, d)``, ``B`` ``(K, C, n)`` (C blocks of n features),
    ``bias`` ``(p·K,)``; output ``i·K + g`` is ⟨A_g**i·B_g, x⟩.
    """
    w = orbit_filters(A, B, p)  # (p·K, C, n)
    return F.linear(x, w.reshape(w.shape[0], -1), bias)


def output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """Spatial size of ``conv2d`` output: ⌊(size + 2·padding − kernel) / stride⌋ + 1."""
    return (size + 2 * padding - kernel_size) // stride + 1


def activation_layout(x: torch.Tensor) -> torch.Tensor:
    """``x`` in the memory layout these functions read activations in: channels-last for the CPU kernels
    (:func:`lgn.nn.kernels.fused`), as it is elsewhere."""
    return kernels.channels_last(x) if kernels.fused(x) else x


def analysis(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int,
             bias: torch.Tensor | None = None) -> torch.Tensor:
    """``conv2d``: ``(N, C, H, W)`` with weight ``(F, C, k, k)`` → ``(N, F, h_out, w_out)``.

    ``bias`` ``(F,)`` is added to every output position.
    """
    if kernels.fused(x):  # channels-last, and its backward by the phase convolution
        return kernels.analysis(x, weight, stride, padding, bias)
    return F.conv2d(x, weight, bias, stride=stride, padding=padding)


def synthesis(
    u: torch.Tensor, weight: torch.Tensor, stride: int, padding: int, size: tuple[int, int]
) -> torch.Tensor:
    """The adjoint of :func:`analysis` for inputs of spatial ``size`` = (H, W).

    ``(N, F, h_out, w_out)`` → ``(N, C, H, W)``. Equals ``conv_transpose2d`` with
    output padding H − ((h_out − 1)·stride − 2·padding + k), and also covers output
    paddings of ``stride`` or more, which ``conv_transpose2d`` refuses: the full
    transposed convolution is cropped to the input window and rows and columns
    the convolution never reads are zero.
    """
    k = weight.shape[-1]
    extra = [n - ((m - 1) * stride - 2 * padding + k) for n, m in zip(size, u.shape[-2:])]
    if not all(0 <= e < stride for e in extra):  # a size analysis does not map to u's: rare, plain ops
        full = F.conv_transpose2d(u, weight, stride=stride)  # uncropped: row Y of the output is row Y + padding
        H, W = size
        full = F.pad(full, (0, max(0, W + padding - full.shape[-1]), 0, max(0, H + padding - full.shape[-2])))
        return full[..., padding:padding + H, padding:padding + W]
    if kernels.fused(u):  # conv_transpose2d is 3-6x slower on CPU than the phase convolution
        return kernels.synthesis(u, weight, stride, padding, size)
    return F.conv_transpose2d(u, weight, stride=stride, padding=padding, output_padding=extra)


def fista_step(y: torch.Tensor, u: torch.Tensor | None, weight: torch.Tensor, eta: float, bias: torch.Tensor,
               stride: int, padding: int) -> torch.Tensor:
    """One unfolded proximal-gradient step: relu(u + η·analysis(y − synthesis(u)) + bias).

    ``y`` ``(N, C, H, W)``, ``u`` ``(N, F, h, w)`` or None for u = 0, ``weight``
    ``(F, C, k, k)``, ``bias`` ``(F,)`` → ``(N, F, h, w)``. The composition of
    :func:`synthesis` and :func:`analysis`, twice differentiable. The CPU kernel
    is one autograd function instead (channels-last output, not twice
    differentiable): the addition and the ReLU run inside the convolution, the
    backward pass adds the two gradients of ``u`` inside a convolution too, and
    it saves only the residual, ``u`` and the output.
    """
    if kernels.fused(y):
        return kernels.fista_step(y, u, weight, eta, bias, stride, padding)
    r = y if u is None else y - synthesis(u, weight, stride, padding, (y.shape[-2], y.shape[-1]))
    z = F.conv2d(r, weight * eta, bias, stride=stride, padding=padding)
    return (z if u is None else z.add_(u)).relu_()


def adaptive_avg_pool(x: torch.Tensor, size: int) -> torch.Tensor:
    """``F.adaptive_avg_pool2d(x, size)``: ``(N, C, H, W)`` → ``(N, C, size, size)``.

    The CPU kernel pools by one matrix product per image, reading channels-last activations in place.
    """
    if kernels.fused(x):
        return kernels.adaptive_avg_pool(x, size)
    return F.adaptive_avg_pool2d(x, size)
