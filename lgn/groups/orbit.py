"""Orbits of base filters under the powers of their generators."""

from __future__ import annotations

import torch

__all__ = ["orbit", "matrix_powers"]


def orbit(generator: torch.Tensor, base: torch.Tensor, order: int) -> torch.Tensor:
    """The orbit ``base, A·base, …, A**(order−1)·base``, power-major.

    Args:
        generator: ``(..., d, d)``.
        base: ``(..., d)``, broadcastable with the generator's batch shape.
        order: number of elements p ≥ 1.

    Returns:
        ``(order, ..., d)``: entry ``i`` is ``A**i @ base``.
    """
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    if generator.shape[-1] != base.shape[-1]:
        raise ValueError(
            f"generator acts on vectors of size {generator.shape[-1]}, base has size {base.shape[-1]}"
        )
    batch = generator.shape[:-2]
    if all(size == 1 or stride == 0 for size, stride in zip(batch, generator.stride()[:-2])):
        # one matrix broadcast over the batch (a fixed generator): one product for every base filter
        a_t = generator[(0,) * len(batch)].mT  # (d, d)
        base = base.expand(*torch.broadcast_shapes(batch, base.shape[:-1]), base.shape[-1])
        out = [base]
        for _ in range(order - 1):
            out.append(out[-1] @ a_t)  # (..., d) @ (d, d): row-vector form of A·v
        return torch.stack(out)
    out = [base]
    v = base.unsqueeze(-1)  # (..., d, 1)
    for _ in range(order - 1):
        v = generator @ v
        out.append(v.squeeze(-1))
    return torch.stack(out)


def matrix_powers(generator: torch.Tensor, order: int) -> torch.Tensor:
    """``(order, ..., d, d)``: the powers A**0 … A**(order−1) of ``generator`` ``(..., d, d)``."""
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    power = torch.eye(generator.shape[-1], dtype=generator.dtype, device=generator.device)
    out = [power.expand_as(generator)]
    for _ in range(order - 1):
        power = generator @ power
        out.append(power)
    return torch.stack(out)
