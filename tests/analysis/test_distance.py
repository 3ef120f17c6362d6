"""The run distance: zero on itself, blind to group order and scale, symmetric, and separating."""

import itertools
import math

import numpy as np
import pytest

from lgn.analysis.distance import distance_matrix, feature_distance, generator_features, group_distance, run_features
from lgn.analysis.measures import structure_indices
from lgn.groups import operators as ops

K = 6  # kernel size


def _stack(mats, layers=1):
    """Generators ``(layers, len(mats), 1, k², k²)`` from a list of k²×k² matrices."""
    return np.stack([np.stack(mats)[:, None]] * layers)


def _random_run(rng, L=2, G=4, C=1):
    return rng.standard_normal((L, G, C, K * K, K * K))


SHIFTS = [ops.shift(K, 1, 0), ops.shift(K, 0, 1), ops.shift(K, -1, 0), ops.shift(K, 1, 1)]
ROTATIONS = [ops.rotation(K, 90), ops.rotation(K, 45), ops.rotation(K, 30), ops.rotation(K, 60)]


def test_zero_on_itself():
    A = _random_run(np.random.default_rng(0))
    assert group_distance(A, A) == pytest.approx(0.0, abs=1e-12)


def test_invariant_to_permuting_the_groups_of_each_layer():
    rng = np.random.default_rng(1)
    A, B = _random_run(rng), _random_run(rng)
    P = A.copy()
    P[0] = A[0, [2, 0, 3, 1]]
    P[1] = A[1, [3, 2, 1, 0]]
    assert group_distance(A, P) == pytest.approx(0.0, abs=1e-12)
    assert group_distance(P, B) == pytest.approx(group_distance(A, B), abs=1e-12)


def test_invariant_to_scaling_each_generator():
    rng = np.random.default_rng(2)
    A, B = _random_run(rng), _random_run(rng)
    scaled = A * rng.uniform(0.01, 100.0, size=A.shape[:3])[..., None, None]  # a different c > 0 per generator
    assert group_distance(A, scaled) == pytest.approx(0.0, abs=1e-12)
    assert group_distance(scaled, B) == pytest.approx(group_distance(A, B), abs=1e-12)


def test_symmetric_and_bounded():
    rng = np.random.default_rng(3)
    runs = [run_features(r) for r in (_random_run(rng, L=1), _random_run(rng, L=1), _stack(SHIFTS), _stack(ROTATIONS))]
    for a, b in itertools.combinations(runs, 2):
        d = feature_distance(a, b)
        assert d == pytest.approx(feature_distance(b, a), abs=1e-12)
        assert 0.0 <= d <= 1.0


def test_separates_shift_like_from_rotation_like_sets():
    shifts, rotations = _stack(SHIFTS), _stack(ROTATIONS)
    other_shifts = _stack([ops.shift(K, -1, -1), ops.shift(K, 0, -1), ops.shift(K, 2, 0), ops.shift(K, 1, -1)])
    other_rotations = _stack([ops.rotation(K, -90), ops.rotation(K, 135), ops.rotation(K, -30), ops.rotation(K, 60)])
    within = max(group_distance(shifts, other_shifts), group_distance(rotations, other_rotations))
    across = group_distance(shifts, rotations)
    assert across > 0.25 and across > 3 * within


def test_agrees_with_brute_force_matching():
    """One layer of four generators against three: the best injective pairing found by trying them all."""
    rng = np.random.default_rng(4)
    a = [rng.standard_normal((K * K, K * K)) for _ in range(4)]
    b = [SHIFTS[0], ROTATIONS[0], rng.standard_normal((K * K, K * K))]

    def cost(x, y):  # written out from the definition
        ix, iy = structure_indices(x, K), structure_indices(y, K)
        d_idx = sum((ix[n] - iy[n]) ** 2 for n in ix) / 7
        sx, sy = np.linalg.svd(x, compute_uv=False), np.linalg.svd(y, compute_uv=False)
        d_spec = float(np.sum((sx / np.linalg.norm(sx) - sy / np.linalg.norm(sy)) ** 2)) / 2
        return math.sqrt((d_idx + d_spec) / 2)

    best = min(np.mean([cost(a[i], b[j]) for j, i in enumerate(pick)]) for pick in itertools.permutations(range(4), 3))
    assert group_distance(_stack(a), _stack(b)) == pytest.approx(best, abs=1e-10)


def test_features_and_matrix():
    f = generator_features(ops.shift(K, 1, 0))
    assert f.shape == (7 + K * K,)
    np.testing.assert_allclose(f[7:], np.full(K * K, 1 / K))  # a permutation: a flat unit spectrum
    runs = [run_features(_stack(SHIFTS)), run_features(_stack(ROTATIONS)), run_features(_stack(SHIFTS[::-1]))]
    d = distance_matrix(runs)
    assert d.shape == (3, 3) and np.allclose(d, d.T) and np.allclose(np.diag(d), 0)
    assert d[0, 2] == pytest.approx(0.0, abs=1e-12) and d[0, 1] > 0.25


def test_refuses_runs_of_different_depth_and_bad_shapes():
    with pytest.raises(ValueError, match="layers"):
        group_distance(_stack(SHIFTS, 2), _stack(SHIFTS, 1))
    with pytest.raises(ValueError, match="shape"):
        run_features(np.zeros((2, 36, 36)))
