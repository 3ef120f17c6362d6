"""Planted datasets: shapes, labels, and that the images really are T**j · t_c + noise."""

import numpy as np
import pytest
import torch

from lgn.data.planted import (DIGIT_NAMES, TEMPLATE_NAMES, digit_images, load_planted, planted_data,
                              planted_dataset, planted_generator)


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


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
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


@pytest.mark.parametrize("size", [16, 28])
@pytest.mark.parametrize("name", DIGIT_NAMES)
def test_digit_maps_have_order_four_and_are_the_named_operation(name, size):
    t, p = planted_generator(name, size)
    eye = np.eye(size * size)
    assert p == 4 and np.allclose(np.linalg.matrix_power(t, 4), eye)
    assert not np.allclose(np.linalg.matrix_power(t, 2), eye)
    img = np.arange(size * size, dtype=float).reshape(size, size)
    moved = (t @ img.reshape(-1)).reshape(size, size)
    if name == "digits-rot90":
        assert np.array_equal(moved, np.rot90(img))
    elif name == "digits-shift-y":
        assert np.array_equal(moved, np.roll(img, size // 4, axis=0))
    else:  # a pixel permutation made of 4-cycles, fixed by perm_seed
        assert sorted(moved.reshape(-1)) == sorted(img.reshape(-1)) and not np.any(moved == img)
        assert np.array_equal(t, planted_generator(name, size, perm_seed=0)[0])
        assert not np.array_equal(t, planted_generator(name, size, perm_seed=1)[0])


def test_digit_images_are_averaged_and_padded_mnist5k():
    from lgn.data import get_dataset

    x16, y16, xt16, yt16 = digit_images(16)
    raw = get_dataset("mnist5k")
    assert x16.shape == (4000, 16, 16) and xt16.shape == (1000, 16, 16)
    assert np.array_equal(y16, raw.y_train.numpy()) and np.array_equal(yt16, raw.y_test.numpy())
    expected = raw.x_train[:5, 0].double().numpy().reshape(5, 14, 2, 14, 2).mean(axis=(2, 4))
    assert np.allclose(x16[:5, 1:15, 1:15], expected)
    border = np.ones((16, 16), bool)
    border[1:15, 1:15] = False
    assert np.all(x16[:, border] == 0)


@pytest.mark.parametrize("name", DIGIT_NAMES)
def test_every_planted_digit_is_a_power_of_the_map_applied_to_its_digit(name):
    x_train, y_train, x_test, y_test, t, p = planted_data(name, seed=3)
    plain, labels, plain_test, labels_test = digit_images(16)
    assert np.array_equal(y_train.numpy(), labels) and np.array_equal(y_test.numpy(), labels_test)
    for moved, base in ((x_train[:300], plain[:300]), (x_test[:100], plain_test[:100])):
        flat, base = moved.reshape(len(moved), -1).double().numpy(), base.reshape(len(base), -1)
        powers = np.stack([base @ np.linalg.matrix_power(t, j).T for j in range(p)], axis=1)  # (N, p, n)
        err = np.abs(powers - flat[:, None]).max(-1)  # (N, p)
        assert err.min(1).max() < 1e-6  # each image is T**j of its digit, for some j
        used = err.argmin(1)
        assert set(used.tolist()) == set(range(p))  # every power occurs


def test_digit_sets_are_seeded_and_reject_template_options():
    from lgn.data import get_dataset

    a = get_dataset("planted:digits-shift-y", seed=0)
    b = get_dataset("planted:digits-shift-y", seed=1)
    assert a.x_train.shape == (4000, 1, 16, 16) and a.num_classes == 10 and a.name == "planted:digits-shift-y"
    assert not torch.equal(a.x_train, b.x_train)
    assert torch.equal(a.x_train, get_dataset("planted:digits-shift-y", seed=0).x_train)
    assert get_dataset("planted:digits-rot90", image_size=28).x_test.shape == (1000, 1, 28, 28)
    with pytest.raises(ValueError, match="no option.*sigma"):
        get_dataset("planted:digits-rot90", sigma=0.1)
    with pytest.raises(ValueError, match="image_size"):
        get_dataset("planted:digits-perm4", image_size=20)
    with pytest.raises(ValueError, match="no option.*image_size"):
        get_dataset("planted:perm4", image_size=16)
