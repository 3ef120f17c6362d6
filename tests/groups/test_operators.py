"""Exact operators against independent numpy constructions (np.rot90, np.roll, np.flip, np.fft)."""

import itertools

import numpy as np
import pytest

from lgn.groups import operators as ops


def apply(m, x):
    k = x.shape[0]
    return (m @ x.reshape(-1)).reshape(k, k)


@pytest.fixture
def image():
    return np.random.default_rng(1).standard_normal((5, 5))


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_rotation_quarter_turns_are_rot90(image, turns):
    np.testing.assert_array_equal(apply(ops.rotation(5, 90 * turns), image), np.rot90(image, turns))


def test_bilinear_rotation_of_a_centred_disc_is_almost_the_disc():
    k = 9
    yy, xx = np.mgrid[:k, :k] - (k - 1) / 2
    disc = (yy ** 2 + xx ** 2 <= 6).astype(float)
    for deg in (30, 45, 60):
        out = apply(ops.rotation(k, deg), disc)
        assert np.abs(out - disc)[disc > 0].max() < 0.5
        assert out.sum() == pytest.approx(disc.sum(), rel=0.1)


@pytest.mark.parametrize("deg", [30, 45, 60, 120])
def test_bilinear_rotation_turns_a_blob_counter_clockwise(deg):
    k = 11
    c = (k - 1) / 2
    rows, cols = np.mgrid[:k, :k]
    x, y = cols - c, c - rows  # x right, y up
    blob = np.exp(-((x - 3) ** 2 + y ** 2) / 1.5)  # right of the centre
    out = apply(ops.rotation(k, deg), blob)
    angle = np.degrees(np.arctan2((out * y).sum(), (out * x).sum()))
    assert angle == pytest.approx(deg, abs=2.0)
    assert np.hypot((out * x).sum(), (out * y).sum()) / out.sum() == pytest.approx(3.0, abs=0.2)


@pytest.mark.parametrize("dx,dy", [(1, 0), (0, 1), (2, -1), (-3, 4)])
def test_cyclic_shift_is_np_roll(image, dx, dy):
    np.testing.assert_array_equal(apply(ops.shift(5, dx, dy), image), np.roll(image, (dy, dx), axis=(0, 1)))


@pytest.mark.parametrize("dx,dy", [(1, 0), (0, -2), (2, 1)])
def test_zero_padded_shift(image, dx, dy):
    expected = np.zeros_like(image)
    k = image.shape[0]
    for r, c in itertools.product(range(k), range(k)):
        if 0 <= r - dy < k and 0 <= c - dx < k:
            expected[r, c] = image[r - dy, c - dx]
    np.testing.assert_array_equal(apply(ops.shift(5, dx, dy, cyclic=False), image), expected)


def test_flips_and_transposes(image):
    np.testing.assert_array_equal(apply(ops.flip(5, "x"), image), image[:, ::-1])
    np.testing.assert_array_equal(apply(ops.flip(5, "y"), image), image[::-1])
    np.testing.assert_array_equal(apply(ops.transpose(5), image), image.T)
    np.testing.assert_array_equal(apply(ops.transpose(5, anti=True), image), np.rot90(image, 2).T)


def test_average_pool_by_hand():
    k, r = 4, 1
    img = np.arange(16.0).reshape(4, 4)
    out = apply(ops.average_pool(k, r), img)
    assert out[0, 0] == pytest.approx(img[:2, :2].mean())
    assert out[1, 2] == pytest.approx(img[0:3, 1:4].mean())
    np.testing.assert_allclose(ops.average_pool(6, 2).sum(axis=1), 1.0)


def test_pool_rotation_is_pool_then_rotate(image):
    np.testing.assert_allclose(apply(ops.pool_rotation(5, 1, 90), image),
                               np.rot90(apply(ops.average_pool(5, 1), image)))


def test_dft_is_numpy_fft2(image):
    f = ops.dft(5)
    np.testing.assert_allclose(f @ image.reshape(-1), np.fft.fft2(image, norm="ortho").reshape(-1), atol=1e-12)
    np.testing.assert_allclose(f @ f.conj().T, np.eye(25), atol=1e-12)


def test_named_operators_unchanged():
    assert ops.OPERATOR_NAMES == ("identity", "rot90", "rot180", "rot270", "flip-x", "flip-y", "transpose",
                                  "anti-transpose", "shift-x", "shift-y")
    np.testing.assert_array_equal(ops.named_operator("shift-x", 4), ops.shift(4, 1, 0))
    with pytest.raises(ValueError, match="unknown operator"):
        ops.named_operator("nope", 4)


@pytest.mark.parametrize("k", [3, 6])
def test_library_entries_are_distinct_and_named_by_family(k):
    lib = ops.library(k)
    names = list(lib)
    stack = np.stack([lib[n].reshape(-1) for n in names])
    unit = stack / np.linalg.norm(stack, axis=1, keepdims=True)
    cos = np.abs(unit @ unit.T) - np.eye(len(names))
    assert cos.max() <= 0.95 + 1e-12
    families = {ops.family(n) for n in names}
    assert families == set(ops.FAMILIES) if k == 6 else families <= set(ops.FAMILIES)
    for n in names:
        assert any(word in n for word in ("identity", "shift", "rot", "flip", "transpose", "pool"))
    assert lib[names[0]].flags.writeable is False


def test_library_holds_the_issue_operations():
    lib = ops.library(6)
    for name in ["identity", "rot90", "rot180", "rot270", "rot30", "rot45", "rot60", "flip-x", "flip-y",
                 "transpose", "anti-transpose", "cyclic-shift(1,0)", "shift(1,0)", "shift(-1,2)",
                 "pool1", "pool2", "pool3", "pool4", "pool5", "pool1+rot60", "rot30^2"]:
        assert name in lib, name
    np.testing.assert_array_equal(lib["shift(-1,2)"], ops.shift(6, -1, 2, cyclic=False))
    np.testing.assert_array_equal(lib["cyclic-shift(1,0)"], ops.shift(6, 1, 0))
    np.testing.assert_allclose(lib["rot30^2"], ops.rotation(6, 30) @ ops.rotation(6, 30))


def test_family():
    assert ops.family("-(pool2+rot60)^2") == "pool+rot"
    assert ops.family("cyclic-shift(1,0)") == "shift"
    assert ops.family("anti-transpose") == "transpose"
    with pytest.raises(ValueError):
        ops.family("banana")


@pytest.mark.parametrize("k,order", [(6, 4), (6, 2), (5, 4), (6, 3), (4, 4)])
def test_permutation_operations_are_library_permutations_of_order_dividing_p(k, order):
    found = ops.permutation_operations(k, order)
    lib = ops.library(k)
    eye = np.eye(k * k)
    assert found
    for name, m in found.items():
        assert not np.array_equal(m, eye)
        assert set(np.unique(m)) == {0.0, 1.0} and (m.sum(0) == 1).all() and (m.sum(1) == 1).all()
        np.testing.assert_array_equal(np.linalg.matrix_power(m, order), eye)
        np.testing.assert_array_equal(lib[name], m)  # the library's own entry under that name
    mats = list(found.values())
    assert not any(np.array_equal(a, b) for a, b in itertools.combinations(mats, 2))


def test_permutation_operations_for_order_4_on_6x6():
    assert list(ops.permutation_operations(6, 4)) == [
        "flip-x", "flip-y", "transpose", "anti-transpose", "rot90", "rot180", "rot270",
        "cyclic-shift(3,0)", "cyclic-shift(0,3)", "cyclic-shift(3,3)"]
    assert "rot90" not in ops.permutation_operations(6, 2)  # order 4 does not divide 2
    assert "cyclic-shift(1,0)" in ops.permutation_operations(6, 6)
    assert ops.permutation_operations(5, 3) == {}  # no flip, turn or shift of a 5×5 kernel has order 3
    assert ops.permutation_operations(6, 1) == {}
    assert list(ops.permutation_operations(6, 4, exact=True)) == ["rot90", "rot270"]  # all 4 powers differ
    exact = ops.permutation_operations(4, 4, exact=True)
    assert "rot90" in exact and "cyclic-shift(1,0)" in exact and "rot180" not in exact and "cyclic-shift(2,0)" not in exact
    with pytest.raises(ValueError, match="order must be a positive integer"):
        ops.permutation_operations(6, 0)
