"""Planted datasets: shapes, labels, and that the images really are T**j · t_c + noise."""

import numpy as np
import pytest
import torch

from lgn.data.planted import PLANTED_NAMES, load_planted, planted_dataset, planted_generator


@pytest.mark.parametrize("name,order", [("shift-x", 6), ("rot90", 4), ("flip", 2), ("perm4", 4)])
def test_generator_has_the_stated_order(name, order):
    t, p = planted_generator(name, 6)
    assert p == order
    assert np.allclose(np.linalg.matrix_power(t, p), np.eye(36))
    for q in range(1, p):
        assert not np.allclose(np.linalg.matrix_power(t, q), np.eye(36))


def test_shapes_dtypes_and_determinism():
    out = planted_dataset("rot90", n_classes=3, n_train=50, n_test=20, seed=1)
    x_train, y_train, x_test, y_test, t, p = out
    assert x_train.shape == (50, 1, 6, 6) and x_train.dtype == torch.float32
    assert y_train.dtype == torch.int64 and int(y_train.max()) < 3
    assert x_test.shape == (20, 1, 6, 6) and p == 4 and t.shape == (36, 36)
    again = planted_dataset("rot90", n_classes=3, n_train=50, n_test=20, seed=1)
    assert torch.equal(again[0], x_train)
    other = planted_dataset("rot90", n_classes=3, n_train=50, n_test=20, seed=2)
    assert not torch.equal(other[0], x_train)


@pytest.mark.parametrize("name", PLANTED_NAMES)
def test_noiseless_images_lie_on_planted_orbits(name):
    """With σ = 0 every image of a class is T**j of that class's first image, for some j."""
    x, y, _, _, t, p = planted_dataset(name, n_classes=2, sigma=0.0, n_train=40, n_test=1, seed=0)
    flat = x.reshape(len(x), -1).double().numpy()
    for c in (0, 1):
        imgs = flat[y.numpy() == c]
        orbit = np.stack([np.linalg.matrix_power(t, j) @ imgs[0] for j in range(p)])  # (p, n)
        dist = np.abs(imgs[:, None, :] - orbit[None]).max(-1).min(-1)
        assert dist.max() < 1e-5


def test_get_dataset_prefix_and_bad_input():
    from lgn.data import get_dataset

    d = get_dataset("planted:flip", seed=0, n_train=30, n_test=10, n_classes=4, sigma=0.2)
    assert d.x_train.shape == (30, 1, 6, 6) and d.num_classes == 4 and d.name == "planted:flip"
    assert load_planted("perm4", n_train=5, n_test=5).x_test.shape == (5, 1, 6, 6)
    with pytest.raises(ValueError, match="unknown planted"):
        planted_dataset("rot45")
    with pytest.raises(ValueError, match="sigma"):
        planted_dataset("flip", sigma=-1.0)
    with pytest.raises(ValueError, match="n_train"):
        planted_dataset("flip", n_train=0)
