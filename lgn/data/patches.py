"""Natural image patches: random k×k crops of scikit-learn's two sample photographs.

``sklearn.datasets.load_sample_images()`` ships two 427×640 colour photographs
(a temple, a flower) inside the scikit-learn package, so these patches need no
download. They are the natural-image statistics of the paper's "in the wild"
probe (docs/method.md §7).
"""

from __future__ import annotations

import functools

import numpy as np

from lgn.settings import check_positive_int

__all__ = ["natural_patches", "sample_images"]

# ITU-R BT.601 luma weights for the grey-scale (channels=1) patches
_LUMA = np.array([0.299, 0.587, 0.114])


@functools.lru_cache(maxsize=1)
def _images() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_sample_images

    images = tuple(np.asarray(im, dtype=np.float32) / 255.0 for im in load_sample_images().images)
    for im in images:
        im.setflags(write=False)
    return images


def sample_images(channels: int = 3) -> list[np.ndarray]:
    """The photographs as float32 ``(channels, height, width)`` arrays in [0, 1]."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    out = []
    for im in _images():  # (H, W, 3)
        chw = np.transpose(im, (2, 0, 1))  # (3, H, W)
        if channels == 1:
            chw = np.tensordot(_LUMA, chw, axes=1)[None].astype(np.float32)  # (1, H, W)
        out.append(np.ascontiguousarray(chw))
    return out


def natural_patches(kernel_size: int, n: int, *, seed: int = 0, channels: int = 3) -> np.ndarray:
    """``n`` random ``kernel_size``×``kernel_size`` patches of the sample photographs.

    Each patch picks one of the two photographs with equal probability and a
    uniformly random position inside it. Deterministic for a given ``seed``.

    Returns:
        float32 array ``(n, channels, kernel_size, kernel_size)``, values in [0, 1]
        (RGB for ``channels=3``, BT.601 luma for ``channels=1``).
    """
    for name, value in (("kernel_size", kernel_size), ("n", n)):
        check_positive_int(value, name)
    images = sample_images(channels)
    smallest = min(min(im.shape[1:]) for im in images)
    if kernel_size > smallest:
        raise ValueError(f"kernel_size must be at most {smallest} (the photographs' height), got {kernel_size}")
    rng = np.random.default_rng(seed)
    which = rng.integers(len(images), size=n)
    out = np.empty((n, channels, kernel_size, kernel_size), dtype=np.float32)
    for i, im in enumerate(images):
        idx = np.flatnonzero(which == i)
        H, W = im.shape[1:]  # height, width
        rows = rng.integers(H - kernel_size + 1, size=idx.size)
        cols = rng.integers(W - kernel_size + 1, size=idx.size)
        windows = np.lib.stride_tricks.sliding_window_view(im, (kernel_size, kernel_size), axis=(1, 2))
        # windows: (C, H−k+1, W−k+1, k, k) → pick (C, idx, k, k) → (idx, C, k, k)
        out[idx] = np.transpose(windows[:, rows, cols], (1, 0, 2, 3))
    return out
