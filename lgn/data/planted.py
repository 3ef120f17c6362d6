"""Planted-symmetry datasets: images x = T**j · t_c + σ·noise with a known generator T.

``planted:NAME`` for NAME in :data:`PLANTED_NAMES`:

- ``shift-x``: cyclic horizontal shift by one pixel, order k;
- ``rot90``: rotation by 90°, order 4;
- ``flip``: left-right mirror, order 2;
- ``perm4``: a fixed random pixel permutation made of 4-cycles (from ``perm_seed``), order 4.

Each image is a k×k single-channel array: a class template t_c (one of M smooth
random fields, zero mean and unit standard deviation), moved by T**j with j
uniform over 0..order−1, plus white noise of standard deviation σ; the label is c.
The discovery benchmark (:mod:`lgn.discovery`) asks whether a network recovers T.
"""

from __future__ import annotations

import numpy as np
import torch

from lgn.groups import operators
from lgn.limits import check_fits

__all__ = ["PLANTED_NAMES", "planted_generator", "smooth_templates", "planted_dataset", "load_planted"]

PLANTED_NAMES = ("shift-x", "rot90", "flip", "perm4")


def planted_generator(name: str, kernel_size: int = 6, *, perm_seed: int = 0) -> tuple[np.ndarray, int]:
    """The planted generator T ``(k², k²)`` of dataset ``name`` and its order."""
    k = kernel_size
    if name == "shift-x":
        return operators.shift(k, 1, 0), k
    if name == "rot90":
        return operators.rotation(k, 90), 4
    if name == "flip":
        return operators.flip(k, "x"), 2
    if name == "perm4":
        if k * k < 4:
            raise ValueError(f"perm4 needs at least 4 pixels, got kernel_size={k}")
        return operators.cyclic_permutation(k * k, 4, seed=perm_seed), 4
    raise ValueError(f"unknown planted dataset {name!r}; expected one of {', '.join(PLANTED_NAMES)}")


def smooth_templates(n: int, kernel_size: int, rng: np.random.Generator, width: float = 1.0) -> np.ndarray:
    """``n`` smooth random k×k fields ``(n, k, k)``: white noise blurred by a Gaussian of ``width`` pixels
    (not wrapping around), then each set to zero mean and unit standard deviation."""
    k = kernel_size
    idx = np.arange(k)
    blur = np.exp(-((idx[:, None] - idx[None, :]) ** 2) / (2.0 * width ** 2))  # (k, k)
    blur /= blur.sum(axis=1, keepdims=True)
    z = rng.standard_normal((n, k, k))
    t = blur @ z @ blur.T  # (n, k, k): separable blur of rows and columns
    t -= t.mean(axis=(1, 2), keepdims=True)
    t /= t.std(axis=(1, 2), keepdims=True).clip(1e-12)
    return t


def _positive_int(name: str, value) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def planted_dataset(name: str, *, kernel_size: int = 6, n_classes: int = 8, sigma: float = 0.1,
                    n_train: int = 6000, n_test: int = 2000, seed: int = 0, perm_seed: int = 0):
    """Draw a planted dataset.

    Returns ``(x_train, y_train, x_test, y_test, T, order)``: images float32
    ``(N, 1, k, k)`` and int64 labels ``(N,)`` as torch tensors, the planted
    generator T as a float64 numpy ``(k², k²)`` acting on row-major flattened
    images, and its order. ``seed`` draws templates, powers and noise;
    ``perm_seed`` fixes the permutation of ``perm4``.
    """
    for key, value in (("kernel_size", kernel_size), ("n_classes", n_classes),
                       ("n_train", n_train), ("n_test", n_test)):
        _positive_int(key, value)
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or sigma < 0:
        raise ValueError(f"sigma must be a non-negative number, got {sigma!r}")
    T, order = planted_generator(name, kernel_size, perm_seed=perm_seed)
    rng = np.random.default_rng(seed)
    k, n = kernel_size, kernel_size * kernel_size
    # float64 templates and orbits, then each split's images drawn in float64 and kept in float32
    check_fits(8.0 * n_classes * (order + 1) * n + 12.0 * (n_train + n_test) * n,
               f"planted:{name} with n_classes={n_classes}, n_train={n_train}, n_test={n_test}")
    templates = smooth_templates(n_classes, k, rng).reshape(n_classes, n)  # (M, n)
    powers = np.stack([np.linalg.matrix_power(T, j) for j in range(order)])  # (p, n, n)
    orbits = np.einsum("jab,cb->cja", powers, templates)  # (M, p, n): T**j t_c

    def draw(count):
        c = rng.integers(0, n_classes, count)
        j = rng.integers(0, order, count)
        x = orbits[c, j] + sigma * rng.standard_normal((count, n))  # (count, n)
        return torch.from_numpy(x.reshape(count, 1, k, k).astype(np.float32)), torch.from_numpy(c.astype(np.int64))

    x_train, y_train = draw(n_train)
    x_test, y_test = draw(n_test)
    return x_train, y_train, x_test, y_test, T, order


def load_planted(name: str, *, seed: int = 0, kernel_size: int = 6, n_classes: int = 8, sigma: float = 0.1,
                 n_train: int = 6000, n_test: int = 2000, perm_seed: int = 0):
    """``get_dataset('planted:NAME')``: the planted set as a :class:`lgn.data.dataset.Dataset`."""
    from lgn.data.dataset import Dataset

    x_train, y_train, x_test, y_test, _, _ = planted_dataset(
        name, kernel_size=kernel_size, n_classes=n_classes, sigma=sigma, n_train=n_train, n_test=n_test,
        seed=seed, perm_seed=perm_seed)
    value_range = float(x_train.max() - x_train.min()) or 1.0
    return Dataset(f"planted:{name}", x_train, y_train, x_test, y_test, n_classes, value_range)
