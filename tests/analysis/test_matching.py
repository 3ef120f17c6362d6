"""The nearest-operation matcher names every library operation under rescaling and noise,
and names operators built here independently (np.rot90, np.roll, np.flip) by their family."""

import numpy as np
import pytest

from lgn.analysis import cosine_similarity, nearest_operation, nearest_operations, similarity_matrix
from lgn.groups import operators as ops


def from_image_op(k, fn):
    """The n×n matrix of a function on k×k images, column j = fn(j-th basis image)."""
    eye = np.eye(k * k).reshape(k * k, k, k)
    return np.stack([np.asarray(fn(e), dtype=float).reshape(-1) for e in eye], axis=1)


@pytest.mark.parametrize("k", [3, 6])
@pytest.mark.parametrize("noise_kind", ["frobenius", "max-entry"])
def test_names_every_library_operation_after_rescaling_and_5_percent_noise(k, noise_kind):
    lib = ops.library(k)
    names = list(lib)
    mats = np.stack([lib[n] for n in names])  # (E, n, n)
    rng = np.random.default_rng(k)
    noise = rng.standard_normal(mats.shape)
    if noise_kind == "frobenius":  # ‖noise‖_F = 5% of ‖M‖_F
        noise *= 0.05 * np.linalg.norm(mats, axis=(1, 2), keepdims=True) / np.linalg.norm(noise, axis=(1, 2),
                                                                                           keepdims=True)
    else:  # every entry ± 5% of M's largest entry
        noise *= 0.05 * np.abs(mats).max(axis=(1, 2), keepdims=True)
    scale = np.exp(rng.uniform(np.log(1e-3), np.log(1e3), size=(len(names), 1, 1)))
    found = nearest_operations(scale * (mats + noise), k)
    wrong = [(name, m[0].name) for name, m in zip(names, found) if m[0].name != name]
    assert not wrong
    for m in found:
        assert 0.4 < m[0].similarity <= 1.0


def test_negative_scale_is_named_with_a_minus():
    m = nearest_operation(-2.0 * ops.rotation(6, 90))
    assert m.name == "-rot90" and m.similarity == pytest.approx(1.0)


@pytest.mark.parametrize("fn,family", [
    (lambda e: np.rot90(e, 1), "rot"),
    (lambda e: np.rot90(e, -1), "rot"),
    (lambda e: np.roll(e, 1, axis=1), "shift"),
    (lambda e: np.roll(e, (-2, 1), axis=(0, 1)), "shift"),
    (lambda e: np.pad(e, ((1, 0), (0, 0)))[:-1], "shift"),  # zero-padded shift down
    (lambda e: np.flip(e, 0), "flip"),
    (lambda e: np.flip(e, 1), "flip"),
    (lambda e: e.T, "transpose"),
    (lambda e: e, "identity"),
])
def test_held_out_permutations_are_named_by_family(fn, family):
    a = from_image_op(6, fn)
    noisy = a + 0.05 * np.random.default_rng(0).standard_normal(a.shape) / 6
    m = nearest_operation(noisy)
    assert ops.family(m.name) == family and m.similarity > 0.9


def test_held_out_pooling_with_zero_padding_is_pool():
    # box average of side 3 counting zeros outside the kernel (unlike the library's clipped average)
    def box(e):
        p = np.pad(e, 1)
        return sum(p[i:i + 6, j:j + 6] for i in range(3) for j in range(3)) / 9

    m = nearest_operation(from_image_op(6, box))
    assert m.name == "pool1" and m.similarity > 0.9


def test_joint_generator_compares_with_the_operation_on_every_channel():
    rot = ops.rotation(6, 90)
    joint = np.kron(np.eye(3), rot)
    m = nearest_operation(0.3 * joint, kernel_size=6)
    assert m.name == "rot90" and m.similarity == pytest.approx(1.0)
    # rot90 on one channel only: cos = ⟨rot, rot⟩ / (‖rot‖ · √3‖rot‖) = 1/√3
    one = np.zeros((108, 108))
    one[:36, :36] = rot
    assert similarity_matrix(one, rot[None])[0, 0] == pytest.approx(1 / np.sqrt(3))


def test_cosine_similarity():
    a = np.random.default_rng(0).standard_normal((4, 4))
    assert cosine_similarity(a, 3 * a) == pytest.approx(1.0)
    assert cosine_similarity(a, -a) == pytest.approx(-1.0)
    assert cosine_similarity(a, np.zeros((4, 4))) == 0.0
    with pytest.raises(ValueError):
        cosine_similarity(a, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="kernel size"):
        nearest_operation(np.eye(10))
