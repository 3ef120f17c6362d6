"""Equivariance checks users can run on their own layers (in the spirit of e3nn's ``assert_equivariant``).

An orbit layer built on an exact group does not need to be trusted: transform
the input by the group and the outputs must move in a known way.

- :func:`assert_linear_equivariant`: for a :class:`~lgn.nn.GroupLinear` whose
  generators satisfy A**p = I, transforming the input by A_g**(−T) shifts the
  outputs of orbit g by one power: output i becomes output i−1 (mod p).
- :func:`assert_conv_equivariant`: for a :class:`~lgn.nn.GroupConv2d` whose
  generator is a pixel permutation of the kernel that is also a symmetry of the
  image grid (a 90° rotation, a flip, a transpose), applying that operation to
  the input applies it to every output map and shifts each orbit's channels by
  one power.

- :func:`assert_invariant`: for any model (an orbit-pooled layer, a model built
  with ``orbit_pool``), transforming the input by T leaves the output unchanged.

Each returns the largest deviation found and raises ``AssertionError`` if it
exceeds ``atol``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from lgn.nn import GroupConv2d, GroupLinear

__all__ = ["assert_linear_equivariant", "assert_conv_equivariant", "assert_invariant", "IMAGE_OPS", "roll_orbits"]

# Operations on images (..., H, W) matching the kernel operators of the same name
# in lgn.groups.operators.
IMAGE_OPS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "rot90": lambda t: torch.rot90(t, 1, dims=(-2, -1)),
    "rot180": lambda t: torch.rot90(t, 2, dims=(-2, -1)),
    "rot270": lambda t: torch.rot90(t, 3, dims=(-2, -1)),
    "flip-x": lambda t: torch.flip(t, dims=(-1,)),
    "flip-y": lambda t: torch.flip(t, dims=(-2,)),
    "transpose": lambda t: t.transpose(-2, -1),
}


def roll_orbits(y: torch.Tensor, n_groups: int, group_size: int, shift: int = 1) -> torch.Tensor:
    """Move channel ``i·K + g`` of ``y`` ``(batch, K·p, ...)`` to ``((i + shift) mod p)·K + g``."""
    B = y.shape[0]
    orbits = y.reshape(B, group_size, n_groups, *y.shape[2:])  # (batch, p, K, ...)
    return orbits.roll(shift, dims=1).reshape(y.shape)


def _check(deviation: float, atol: float, what: str) -> float:
    if not deviation <= atol:
        raise AssertionError(f"{what}: max deviation {deviation:.3g} exceeds atol {atol:.3g}")
    return deviation


def _block_matrix(a: torch.Tensor) -> torch.Tensor:
    """(C', d, d) per-block generators of one group → the (C'·d)×(C'·d) block-diagonal matrix."""
    return torch.block_diag(*a.unbind(0))


@torch.no_grad()
def assert_linear_equivariant(layer: GroupLinear, x: torch.Tensor | None = None, atol: float = 1e-4) -> float:
    """Check ⟨A**i b, A**(−T) x⟩ = ⟨A**(i−1) b, x⟩ for every orbit of ``layer``.

    ``x``: ``(batch, in_features)``; random if omitted. The generators must form
    exact groups of order p (A**p = I), else the wrap-around at i = 0 fails.
    """
    if not isinstance(layer, GroupLinear):
        raise TypeError(f"expected a GroupLinear, got {type(layer).__name__}")
    K, p = layer.n_groups, layer.group_size
    w = layer.weight
    if x is None:
        x = torch.randn(8, layer.in_features, dtype=w.dtype, device=w.device)
    y = layer(x)  # (batch, K·p)
    expected = roll_orbits(y, K, p).reshape(-1, p, K)  # output i of x' is output i−1 of x
    a = layer.generators()  # (K, C', d, d)
    if a is None:
        raise ValueError("the check needs a group, got a layer of independent filters")
    worst = 0.0
    for g in range(K):
        m = _block_matrix(a[g])  # acts on the flattened (C·d) filter
        x_g = torch.linalg.solve(m.T, x.T).T  # M^(−T) x for each row x
        y_g = layer(x_g).reshape(-1, p, K)[:, :, g]
        worst = max(worst, (y_g - expected[:, :, g]).abs().max().item())
    return _check(worst, atol, "GroupLinear orbit equivariance")


@torch.no_grad()
def assert_conv_equivariant(layer: GroupConv2d, op: str, x: torch.Tensor | None = None,
                            atol: float = 1e-4) -> float:
    """Check ``layer(op(x)) = op(roll_orbits(layer(x)))`` for a grid operation ``op``.

    ``op`` names an entry of :data:`IMAGE_OPS`; the layer's generator must be the
    same operation acting on its kernels (e.g. ``generator='fixed:rot90'``), the
    stride 1 and the input square. ``x``: ``(batch, C, H, H)``; random if omitted.
    """
    if not isinstance(layer, GroupConv2d):
        raise TypeError(f"expected a GroupConv2d, got {type(layer).__name__}")
    if op not in IMAGE_OPS:
        raise ValueError(f"op must be one of {', '.join(IMAGE_OPS)}, got {op!r}")
    if layer.stride != (1, 1):
        raise ValueError(f"the check needs stride 1, got {layer.stride}")
    transform = IMAGE_OPS[op]
    w = layer.weight
    if x is None:
        x = torch.randn(4, layer.bank.in_channels, 12, 12, dtype=w.dtype, device=w.device)
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"the check needs square inputs, got {tuple(x.shape[-2:])}")
    y = layer(x)
    expected = transform(roll_orbits(y, layer.n_groups, layer.group_size))
    deviation = (layer(transform(x)) - expected).abs().max().item()
    return _check(deviation, atol, f"GroupConv2d {op} equivariance")


def _input_like(model: torch.nn.Module) -> torch.Tensor:
    """A random batch for ``model``: ``(4, in_features)`` for a GroupLinear, ``(4, C, H, W)`` for a config'd model."""
    p = next(model.parameters())
    if isinstance(model, GroupLinear):
        return torch.randn(4, model.in_features, dtype=p.dtype, device=p.device)
    config = getattr(model, "config", None)
    if config is None:
        raise ValueError(f"give x: no input shape is known for a {type(model).__name__}")
    size = config.image_size
    return torch.randn(4, config.in_channels, size, size, dtype=p.dtype, device=p.device)


@torch.no_grad()
def assert_invariant(model: torch.nn.Module, transform, x: torch.Tensor | None = None,
                     atol: float = 1e-4) -> float:
    """Check ``model(T·x) = model(x)``: the model's output does not move when its input does.

    ``transform`` is an ``(n, n)`` matrix T acting on each flattened input (a pixel
    permutation, a group ``lgn discover`` found: ``x → (T @ x.flatten()).reshape(x.shape)``),
    the name of an :data:`IMAGE_OPS` grid operation (``'rot90'``, ``'flip-x'``, …) or a
    function of the batch. ``x``: ``(batch, ...)``; random if omitted (for a GroupLinear or a
    model with a ``config``). The model is checked in eval mode and put back. Returns the
    largest deviation; raises ``AssertionError`` above ``atol``.
    """
    if x is None:
        x = _input_like(model)
    if isinstance(transform, str):
        if transform not in IMAGE_OPS:
            raise ValueError(f"transform must be an (n, n) matrix, a function or one of {', '.join(IMAGE_OPS)}, "
                             f"got {transform!r}")
        moved = IMAGE_OPS[transform](x)
    elif callable(transform):
        moved = transform(x)
    else:
        t = torch.as_tensor(transform, dtype=x.dtype, device=x.device)
        n = x[0].numel()
        if t.shape != (n, n):
            raise ValueError(f"transform must be a ({n}, {n}) matrix for inputs of shape {tuple(x.shape)}, "
                             f"got {tuple(t.shape)}")
        moved = (x.flatten(1) @ t.T).reshape(x.shape)  # T·x for every input
    was_training = model.training
    model.eval()
    try:
        deviation = (model(moved) - model(x)).abs().max().item()
    finally:
        model.train(was_training)
    return _check(deviation, atol, f"{type(model).__name__} invariance")
