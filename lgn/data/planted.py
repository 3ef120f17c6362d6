"""Planted-symmetry datasets: images x = T**j · t_c + σ·noise with a known generator T.

``planted:NAME`` for NAME in :data:`PLANTED_NAMES`:

- ``shift-x``: cyclic horizontal shift by one pixel, order k;
- ``rot90``: rotation by 90°, order 4;
- ``flip``: left-right mirror, order 2;
- ``perm4``: a fixed random pixel permutation made of 4-cycles (from ``perm_seed``), order 4.

Each image is a k×k single-channel array: a class template t_c (one of M smooth
random fields, zero mean and unit standard deviation), moved by T**j with j
uniform over 0..order−1, plus white noise of standard deviation σ; the label is c.

Real images with a hidden symmetry, ``planted:digits-NAME`` for NAME in
``rot90``, ``shift-y``, ``perm4``: the 5,000 real MNIST digits of ``mnist5k``
(same 4,000 / 1,000 split), averaged 2×2 to 14×14 and zero-padded to 16×16
(``image_size=28`` keeps them whole), each moved by T**j, j uniform over 0..3,
with T a rotation by 90°, a cyclic vertical shift by a quarter of the image
(4 pixels at 16×16) or a fixed random pixel permutation of 4-cycles; the label
stays the digit. No noise is added: the handwriting is the variation.

The discovery benchmark (:mod:`lgn.discovery`) asks whether a network recovers T.
"""

from __future__ import annotations

import numpy as np
import torch

from lgn.groups import operators
from lgn.limits import check_fits
from lgn.settings import check_positive_int

__all__ = ["PLANTED_NAMES", "TEMPLATE_NAMES", "DIGIT_NAMES", "planted_generator", "smooth_templates",
           "planted_dataset", "digit_images", "planted_digits", "planted_data", "load_planted"]

TEMPLATE_NAMES = ("shift-x", "rot90", "flip", "perm4")
DIGIT_NAMES = ("digits-rot90", "digits-shift-y", "digits-perm4")
PLANTED_NAMES = TEMPLATE_NAMES + DIGIT_NAMES
DIGIT_SIZES = (16, 28)  # 14×14 averages padded by one pixel, or the digits as they are


def planted_generator(name: str, kernel_size: int = 6, *, perm_seed: int = 0) -> tuple[np.ndarray, int]:
    """The planted generator T ``(k², k²)`` of dataset ``name`` and its order.

    ``kernel_size`` is the image side k: the template size, or for ``digits-*``
    the image size (16 or 28).
    """
    k = kernel_size
    if name in DIGIT_NAMES:
        if k not in DIGIT_SIZES:
            raise ValueError(f"{name} images are {' or '.join(map(str, DIGIT_SIZES))} pixels wide, got {k!r}")
        if name == "digits-shift-y":
            return operators.shift(k, 0, k // 4), 4
        name = name.removeprefix("digits-")
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


def digit_images(image_size: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The mnist5k split as ``(x_train (4000, s, s), y_train, x_test (1000, s, s), y_test)`` in [0, 1], float64.

    ``image_size`` 16: each digit averaged over 2×2 blocks to 14×14, then zero-padded by one pixel on
    every side; 28: the digits unchanged.
    """
    from lgn.data.builtin import _mnist5k_arrays, stratified_split

    if image_size not in DIGIT_SIZES:
        raise ValueError(f"image_size must be one of {', '.join(map(str, DIGIT_SIZES))}, got {image_size!r}")
    x, y = _mnist5k_arrays()
    x = x[:, 0].astype(np.float64)  # (5000, 28, 28)
    if image_size == 16:
        x = x.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4))  # (5000, 14, 14): 2×2 averages
        x = np.pad(x, ((0, 0), (1, 1), (1, 1)))  # (5000, 16, 16)
    train, test = stratified_split(y, 100)
    return x[train], y[train].astype(np.int64), x[test], y[test].astype(np.int64)


def _move(images: np.ndarray, powers: np.ndarray, t: np.ndarray, order: int) -> np.ndarray:
    """``T**powers[i]`` applied to each image ``(N, k, k)`` → ``(N, 1, k, k)`` float32 tensor data."""
    n_img, k = len(images), images.shape[-1]
    flat = images.reshape(n_img, k * k)
    out = np.empty_like(flat)
    moved = flat
    for j in range(order):  # out[i] = T**j x_i for the images drawn with power j
        out[powers == j] = moved[powers == j]
        moved = moved @ t.T
    return out.reshape(n_img, 1, k, k).astype(np.float32)


def planted_digits(name: str, *, seed: int = 0, perm_seed: int = 0, image_size: int = 16):
    """Real digits moved by a hidden order-4 map: ``(x_train, y_train, x_test, y_test, T, order)``.

    Images float32 ``(N, 1, s, s)`` with s = ``image_size``, int64 labels (the digit), T float64
    ``(s², s²)``. ``seed`` draws the power of T each image is moved by.
    """
    if name not in DIGIT_NAMES:
        raise ValueError(f"unknown planted digits set {name!r}; expected one of {', '.join(DIGIT_NAMES)}")
    x_train, y_train, x_test, y_test = digit_images(image_size)
    t, order = planted_generator(name, image_size, perm_seed=perm_seed)
    rng = np.random.default_rng(seed)
    j_train, j_test = rng.integers(0, order, len(x_train)), rng.integers(0, order, len(x_test))
    return (torch.from_numpy(_move(x_train, j_train, t, order)), torch.from_numpy(y_train),
            torch.from_numpy(_move(x_test, j_test, t, order)), torch.from_numpy(y_test), t, order)


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


def planted_dataset(name: str, *, kernel_size: int = 6, n_classes: int = 8, sigma: float = 0.1,
                    n_train: int = 6000, n_test: int = 2000, seed: int = 0, perm_seed: int = 0):
    """Draw a planted template dataset (``digits-*``: :func:`planted_digits`).

    Returns ``(x_train, y_train, x_test, y_test, T, order)``: images float32
    ``(N, 1, k, k)`` and int64 labels ``(N,)`` as torch tensors, the planted
    generator T as a float64 numpy ``(k², k²)`` acting on row-major flattened
    images, and its order. ``seed`` draws templates, powers and noise;
    ``perm_seed`` fixes the permutation of ``perm4``.
    """
    for key, value in (("kernel_size", kernel_size), ("n_classes", n_classes),
                       ("n_train", n_train), ("n_test", n_test)):
        check_positive_int(value, key)
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


_TEMPLATE_OPTIONS = ("kernel_size", "n_classes", "sigma", "n_train", "n_test")


def planted_data(name: str, *, seed: int = 0, perm_seed: int = 0, **options):
    """Any planted set by name: ``(x_train, y_train, x_test, y_test, T, order)``.

    Options: for template sets ``kernel_size``, ``n_classes``, ``sigma``,
    ``n_train``, ``n_test`` (:func:`planted_dataset`); for ``digits-*`` sets
    ``image_size`` (16 or 28, :func:`planted_digits`). An option the set does not
    take is an error.
    """
    if name not in PLANTED_NAMES:
        raise ValueError(f"unknown planted dataset {name!r}; expected one of {', '.join(PLANTED_NAMES)}")
    allowed = ("image_size",) if name in DIGIT_NAMES else _TEMPLATE_OPTIONS
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"dataset planted:{name} has no option(s) {', '.join(unknown)}; "
                         f"its options: {', '.join(sorted((*allowed, 'perm_seed')))}")
    make = planted_digits if name in DIGIT_NAMES else planted_dataset
    return make(name, seed=seed, perm_seed=perm_seed, **options)


def load_planted(name: str, *, seed: int = 0, perm_seed: int = 0, **options):
    """``get_dataset('planted:NAME')``: the planted set as a :class:`lgn.data.dataset.Dataset` (options as
    :func:`planted_data`)."""
    from lgn.data.dataset import Dataset

    x_train, y_train, x_test, y_test, _, _ = planted_data(name, seed=seed, perm_seed=perm_seed, **options)
    if name in DIGIT_NAMES:
        return Dataset(f"planted:{name}", x_train, y_train, x_test, y_test, 10, 1.0)
    value_range = float(x_train.max() - x_train.min()) or 1.0
    return Dataset(f"planted:{name}", x_train, y_train, x_test, y_test, options.get("n_classes", 8), value_range)
