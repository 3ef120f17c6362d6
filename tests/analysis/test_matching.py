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


# --- orbit-level naming ---------------------------------------------------------------------------------------------

def _acting_as_on_orbit(t, b, order, rng):
    """A generator that acts exactly as ``t`` on span{b, t·b, …, t^(p−2)·b} and at random elsewhere."""
    m = len(b)
    x = np.stack([np.linalg.matrix_power(t, i) @ b for i in range(order - 1)], axis=1)  # (m, p−1)
    q, _ = np.linalg.qr(x)
    span = q @ q.T  # projector onto the orbit's span
    return t @ span + rng.normal(0.0, m ** -0.5, (m, m)) @ (np.eye(m) - span)


@pytest.mark.parametrize("name", ["shift-x", "rot90", "flip-x"])
def test_a_generator_acting_as_an_operation_on_the_orbit_scores_zero_there_whatever_it_does_elsewhere(name):
    from lgn.analysis import orbit_residual

    rng = np.random.default_rng(3)
    k, p = 6, 4
    t = ops.named_operator(name, k)
    b = rng.normal(size=k * k)
    a = 2.5 * _acting_as_on_orbit(t, b, p, rng)  # any scale c
    match = orbit_residual(a, b, p, k)
    assert match.similarity < 1e-9
    # the library may list an operation equal to t on this orbit; it must do what t does there
    x = np.stack([np.linalg.matrix_power(a, i) @ b for i in range(p - 1)], axis=1)
    named = ops.library(k)[match.name]
    assert cosine_similarity(np.abs(named @ x), np.abs(t @ x)) > 1 - 1e-9
    # the whole-matrix match does not see it: the random complement dominates
    assert nearest_operation(a).similarity < 0.5


def test_orbit_residual_is_the_least_squares_fit_computed_directly():
    from lgn.analysis import orbit_residuals

    rng = np.random.default_rng(0)
    k, p = 3, 3
    a, b = rng.normal(size=(9, 9)), rng.normal(size=9)
    lib = ops.library(k)
    got = orbit_residuals(a, b, p, k)
    x = np.stack([b, a @ b], axis=1)
    y = a @ x
    for j, (name, t) in enumerate(lib.items()):
        z = t @ x
        c = np.sum(y * z) / np.sum(z * z)  # the best scale by least squares
        assert got[j] == pytest.approx(np.linalg.norm(y - c * z) / np.linalg.norm(y), abs=1e-12), name


def test_a_random_generator_scores_near_the_null():
    from lgn.analysis import orbit_null, orbit_residual

    k, p, m = 6, 4, 36
    null = orbit_null(m, p, k, samples=200, seed=1)
    lo, hi = np.quantile(null, [0.01, 0.99])
    rng = np.random.default_rng(7)
    scores = [orbit_residual(rng.normal(0.0, m ** -0.5, (m, m)), rng.normal(size=m), p, k).similarity
              for _ in range(20)]
    assert lo < np.median(scores) < hi
    assert abs(np.median(scores) - np.median(null)) < 0.03
    assert 0.5 < np.median(null) < 1.0  # far from a name, but not orthogonal to every operation


def test_orbit_residual_acts_on_every_channel_alike_for_a_joint_generator():
    from lgn.analysis import orbit_residual

    rng = np.random.default_rng(2)
    k, p, c = 3, 4, 2
    t = np.kron(np.eye(c), ops.named_operator("rot90", k))  # the operation on both channels
    b = rng.normal(size=c * k * k)
    match = orbit_residual(_acting_as_on_orbit(t, b, p, rng), b, p, k)
    assert match.similarity < 1e-9


def test_orbit_measures_refuse_bad_shapes():
    from lgn.analysis import orbit_residual

    with pytest.raises(ValueError, match="m entries"):
        orbit_residual(np.eye(9), np.ones(4), 4, 3)
    with pytest.raises(ValueError, match="at least 2"):
        orbit_residual(np.eye(9), np.ones(9), 1, 3)
