"""The two convolutions of the unfolded network: analysis (conv) and synthesis (its adjoint)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["output_size", "analysis", "synthesis"]


def output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """Spatial size of ``conv2d`` output: ⌊(size + 2·padding − kernel) / stride⌋ + 1."""
    return (size + 2 * padding - kernel_size) // stride + 1


def analysis(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int) -> torch.Tensor:
    """``conv2d``: ``(N, C, H, W)`` with weight ``(F, C, k, k)`` → ``(N, F, h_out, w_out)``."""
    return F.conv2d(x, weight, stride=stride, padding=padding)


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
    full = F.conv_transpose2d(u, weight, stride=stride)  # rows −padding … of the input
    H, W = size
    out = full[..., padding:padding + H, padding:padding + W]
    pad_h, pad_w = H - out.shape[-2], W - out.shape[-1]
    if pad_h or pad_w:
        out = F.pad(out, (0, pad_w, 0, pad_h))
    return out
