"""The recovery score against independent computations (np.rot90 / np.roll on images)."""

import math

import numpy as np
import pytest

from lgn.data.planted import TEMPLATE_NAMES, planted_generator
from lgn.discovery import alignment, alignment_per_group, collapse, orbit_alignment

K = 6


def _bases(n, rng):
    return rng.standard_normal((n, K * K))


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_planted_generator_and_its_inverse_score_one(name):
    t, p = planted_generator(name, K)
    b = _bases(3, np.random.default_rng(0))
    assert alignment(np.stack([t] * 3), b, t, p) == pytest.approx(1.0, abs=1e-12)
    assert alignment(np.stack([np.linalg.inv(t)] * 3), b, t, p) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_random_generator_scores_low(name):
    t, p = planted_generator(name, K)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((16, K * K, K * K)) / K
    assert abs(alignment(a, _bases(16, rng), t, p)) < 0.2


def test_identity_collapses_to_zero():
    t, p = planted_generator("rot90", K)
    b = _bases(2, np.random.default_rng(2))
    assert collapse(np.eye(K * K), b[0], p) == pytest.approx(1.0)
    assert alignment(np.stack([np.eye(K * K)] * 2), b, t, p) == 0.0


def test_invariant_base_filter_collapses():
    """A base filter the group leaves fixed has a one-filter orbit: score 0 even for a = T."""
    t, p = planted_generator("rot90", K)
    b = np.ones(K * K)
    assert orbit_alignment(t, b, t, p) == 0.0


def test_hand_computed_rot180_against_rot90_planted():
    """a = rot180 on a rot90-planted set: by hand with np.rot90, max over j ∈ {1, 3} of the mean cosine."""
    t, p = planted_generator("rot90", K)
    a = np.linalg.matrix_power(t, 2)
    img = np.random.default_rng(3).standard_normal((K, K))
    b = img.reshape(-1)

    def cos(u, v):
        return float(u.reshape(-1) @ v.reshape(-1) / np.linalg.norm(u) / np.linalg.norm(v))

    learned = [np.rot90(img, 2 * i) for i in range(1, 4)]
    expected = max(np.mean([cos(learned[i - 1], np.rot90(img, j * i)) for i in range(1, 4)]) for j in (1, 3))
    assert orbit_alignment(a, b, t, p) == pytest.approx(expected, abs=1e-12)
    assert expected < 0.5


def test_shift_score_by_hand_with_roll():
    """a = T**5 = T**−1 for shift-x (order 6): j = 5 is coprime to 6, so it scores 1; T**2 does not."""
    t, p = planted_generator("shift-x", K)
    img = np.random.default_rng(4).standard_normal((K, K))
    assert np.allclose(t @ img.reshape(-1), np.roll(img, 1, axis=1).reshape(-1))
    assert orbit_alignment(np.linalg.matrix_power(t, 5), img.reshape(-1), t, p) == pytest.approx(1.0)
    assert orbit_alignment(np.linalg.matrix_power(t, 2), img.reshape(-1), t, p) < 0.9
    assert math.gcd(2, p) != 1


def test_groups_npz_layout_scores_layer0_channel0():
    t, p = planted_generator("flip", K)
    rng = np.random.default_rng(5)
    a = np.zeros((2, 3, 1, K * K, K * K))
    a[0] = t  # layer 0 exact, layer 1 zeros (ignored)
    b = rng.standard_normal((2, 3, 1, K, K))
    assert alignment(a, b, t, p) == pytest.approx(1.0)
    assert alignment_per_group(a[0, :, 0], b[0, :, 0].reshape(3, -1), t, p).shape == (3,)


def test_bad_shapes_raise():
    t, p = planted_generator("flip", K)
    with pytest.raises(ValueError, match="expected"):
        orbit_alignment(np.eye(4), np.ones(K * K), t, p)
    with pytest.raises(ValueError, match="order"):
        orbit_alignment(t, np.ones(K * K), t, 1)


def test_alignment_floor_is_high_for_rotation_of_centred_digits_and_low_for_a_permutation():
    """Centred digits overlap, and rotation keeps strokes near the centre: unrelated filters score far above 0
    against rot90, near 0 against a scrambling permutation; a random generator of the same order near 0."""
    from lgn.data.planted import digit_images, planted_generator
    from lgn.discovery import alignment_floor

    x, y, _, _ = digit_images(16)
    b = np.stack([x[y == c][0] for c in range(10)]).reshape(10, -1)
    b = (b - x.mean()) / x.std()
    floors = {}
    for name in ("digits-rot90", "digits-perm4"):
        t, p = planted_generator(name, 16)
        floors[name] = alignment_floor(np.stack([t] * 10), b, t, p, draws=3)
        assert abs(floors[name]["random_generator"]) < 0.2
    assert floors["digits-rot90"]["unrelated_filters"] > 0.3
    assert floors["digits-perm4"]["unrelated_filters"] < 0.1
