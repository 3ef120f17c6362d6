"""Input validation shared by the layers: clear errors instead of shape crashes deep inside."""

from __future__ import annotations

import torch

__all__ = ["check_images"]


def check_images(x, *, channels: int, min_size: int | tuple[int, int], dtype: torch.dtype,
                 check_finite: bool = True) -> None:
    """Raise TypeError/ValueError unless ``x`` is a finite ``(batch, channels, H, W)`` tensor.

    ``H`` and ``W`` must be at least ``min_size`` (one size for both, or ``(h, w)``) and the dtype must be
    ``dtype`` (the parameters' dtype).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point tensor of dtype {dtype}, got {x.dtype}")
    if x.dtype != dtype:
        raise TypeError(f"expected dtype {dtype} (the model's), got {x.dtype}; convert with x.to({dtype})")
    if x.dim() != 4:
        raise ValueError(f"expected shape (batch, {channels}, height, width), got {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(
            f"expected (batch, {channels}, height, width), got {tuple(x.shape)}: "
            f"{x.shape[1]} channels instead of {channels}"
        )
    least = (min_size, min_size) if isinstance(min_size, int) else tuple(min_size)
    if x.shape[-2] < least[0] or x.shape[-1] < least[1]:
        raise ValueError(f"images must be at least {least[0]}×{least[1]} for this kernel, got {tuple(x.shape[-2:])}")
    if check_finite and not x.is_meta and not _finite(x):  # a meta tensor (a size estimate) holds no values
        raise ValueError("input contains NaN or Inf")


def _finite(x: torch.Tensor) -> bool:
    """Whether every element of ``x`` is finite: a NaN or ±Inf anywhere makes the sum non-finite, so one
    sum (a thirtieth of ``isfinite`` on CPU) settles it unless the sum overflows."""
    return bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all())
