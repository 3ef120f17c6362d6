"""The run distance: zero on itself, blind to group order and scale, symmetric, and separating."""

import itertools
import math

import numpy as np
import pytest

from lgn.analysis.distance import (COMMUTATION_OPERATORS, commutation_residuals, dependence_test, distance_matrix,
                                   eigen_angles, feature_distance, generator_features, group_distance, run_features)
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


def test_runs_of_the_same_permutations_are_exactly_zero_apart():
    """Scaling leaves float64 rounding in the normalised spectra (about 1e-17 of distance), and its sign differs
    between CPUs; a distance that small is rounding, reported as 0 so that comparisons of such runs tie."""
    perms = _stack([ops.rotation(K, 90), ops.rotation(K, 270), ops.rotation(K, 180), ops.shift(K, 1, 0)], layers=2)
    for c in (0.1, 3.0, 7.3):
        assert group_distance(perms, perms[:, ::-1] * c, K) == 0.0
    assert group_distance(perms, _stack(SHIFTS, layers=2), K) > 0.1


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
        ax = np.sort(np.abs(np.angle(np.linalg.eigvals(x)))) / np.pi
        ay = np.sort(np.abs(np.angle(np.linalg.eigvals(y)))) / np.pi
        d_ang = float(np.sum((ax - ay) ** 2)) / (K * K)
        res = [[np.linalg.norm(m @ o - o @ m) / (2 * np.linalg.norm(m)) for o in
                (ops.named_operator(name, K) for name in COMMUTATION_OPERATORS)] for m in (x, y)]
        d_res = float(np.sum((np.array(res[0]) - np.array(res[1])) ** 2)) / len(COMMUTATION_OPERATORS)
        return math.sqrt((d_idx + d_spec + d_ang + d_res) / 4)

    best = min(np.mean([cost(a[i], b[j]) for j, i in enumerate(pick)]) for pick in itertools.permutations(range(4), 3))
    assert group_distance(_stack(a), _stack(b)) == pytest.approx(best, abs=1e-10)


def test_features_and_matrix():
    f = generator_features(ops.shift(K, 1, 0))
    assert f.shape == (7 + 2 * K * K + len(COMMUTATION_OPERATORS),)
    np.testing.assert_allclose(f[7:7 + K * K], np.full(K * K, 1 / K))  # a permutation: a flat unit spectrum
    residuals = dict(zip(COMMUTATION_OPERATORS, f[7 + 2 * K * K:]))
    assert residuals["shift-x"] == residuals["shift-y"] == 0 and residuals["rot90"] > 0.1  # shifts commute
    runs = [run_features(_stack(SHIFTS)), run_features(_stack(ROTATIONS)), run_features(_stack(SHIFTS[::-1]))]
    d = distance_matrix(runs)
    assert d.shape == (3, 3) and np.allclose(d, d.T) and np.allclose(np.diag(d), 0)
    assert d[0, 2] == pytest.approx(0.0, abs=1e-12) and d[0, 1] > 0.25


def test_refuses_runs_of_different_depth_and_bad_shapes():
    with pytest.raises(ValueError, match="layers"):
        group_distance(_stack(SHIFTS, 2), _stack(SHIFTS, 1))
    with pytest.raises(ValueError, match="shape"):
        run_features(np.zeros((2, 36, 36)))


def _conjugated(rng, blocks):
    """An orthogonal generator Q·D·Qᵀ with D block-diagonal from ``blocks`` (2×2 rotations by angle, or ±1)."""
    d = np.zeros((K * K, K * K))
    i = 0
    for b in blocks:
        if isinstance(b, float):
            c, s = math.cos(b), math.sin(b)
            d[i:i + 2, i:i + 2] = [[c, -s], [s, c]]
            i += 2
        else:
            d[i, i] = b
            i += 1
    assert i == K * K
    q, _ = np.linalg.qr(rng.standard_normal((K * K, K * K)))
    return q @ d @ q.T


def test_eigen_angles_are_a_conjugacy_invariant_that_tells_orthogonal_generators_of_one_order_apart():
    """Two random orthogonal generators of order 4: all quarter turns, or quarter turns mixed with ±1.

    Singular values are all 1 and the structure indices of a random conjugate carry no class, so only
    the eigenvalue angles tell the two classes apart; within a class they agree exactly."""
    rng = np.random.default_rng(5)
    quarter = [math.pi / 2] * 18
    mixed = [math.pi / 2] * 9 + [1] * 9 + [-1] * 9
    a = [_conjugated(rng, quarter) for _ in range(4)]
    a2 = [_conjugated(rng, quarter) for _ in range(4)]
    b = [_conjugated(rng, mixed) for _ in range(4)]
    for x in a + b:
        assert np.allclose(np.linalg.matrix_power(x, 4), np.eye(K * K), atol=1e-9)
    np.testing.assert_allclose(eigen_angles(a[0]), np.full(K * K, 0.5), atol=1e-9)
    np.testing.assert_allclose(eigen_angles(a[0]), eigen_angles(a2[3]), atol=1e-9)
    within = group_distance(_stack(a), _stack(a2))
    across = group_distance(_stack(a), _stack(b))
    assert across > 0.1 and across > 3 * within


def test_commutation_separates_a_rotation_group_from_a_shift_group_of_the_same_order():
    """On 4×4 kernels a quarter turn and a one-pixel cyclic shift are both permutations of order 4 with four
    4-cycles: conjugate, so their singular values and eigenvalue angles are identical. Commutation with the
    library's operators tells them apart."""
    k = 4
    rot, shift = ops.rotation(k, 90), ops.shift(k, 1, 0)
    for x in (rot, shift):
        assert np.allclose(np.linalg.matrix_power(x, 4), np.eye(k * k)) and not np.allclose(x @ x, np.eye(k * k))
    np.testing.assert_allclose(eigen_angles(rot), eigen_angles(shift), atol=1e-9)
    r_rot, r_shift = commutation_residuals(rot, k), commutation_residuals(shift, k)
    names = list(COMMUTATION_OPERATORS)
    assert r_rot[names.index("rot90")] == 0 and r_rot[names.index("shift-x")] > 0.3
    assert r_shift[names.index("shift-x")] == 0 and r_shift[names.index("rot90")] > 0.3

    def stack(mats):
        return np.stack([np.stack(mats)[:, None]])

    rotations = stack([rot, ops.rotation(k, 270), rot.T, rot @ rot @ rot])        # the quarter turns, both ways
    shifts = stack([shift, ops.shift(k, -1, 0), ops.shift(k, 0, 1), ops.shift(k, 0, -1)])  # order-4 shifts
    other_rotations = stack([ops.rotation(k, 270), rot, rot, ops.rotation(k, 270)])
    within = max(group_distance(rotations, other_rotations, k), group_distance(shifts, shifts[:, ::-1], k))
    across = group_distance(rotations, shifts, k)
    assert across > 0.1 and across > 5 * max(within, 1e-3)


def test_commutation_residuals_are_scale_free_and_act_on_every_channel_block():
    k = 3
    rot = ops.rotation(k, 90)
    joint = np.kron(np.eye(2), rot)  # the same quarter turn on each of two channels
    np.testing.assert_allclose(commutation_residuals(joint, k), commutation_residuals(rot, k), atol=1e-12)
    np.testing.assert_allclose(commutation_residuals(7.5 * rot, k), commutation_residuals(rot, k), atol=1e-12)
    assert not commutation_residuals(np.zeros((9, 9)), k).any()


def _constructed(rng, data_effect, task_effect, sigma=0.3, seeds=3):
    """Runs of 2 datasets × 2 tasks × ``seeds`` seeds as points: cell centre (effects along two axes) plus noise."""
    labels, points = [], []
    for ds in ("a", "b"):
        for task in ("classify", "reconstruct"):
            centre = np.zeros(6)
            centre[0] = data_effect * (ds == "b")
            centre[1] = task_effect * (task == "reconstruct")
            for s in range(seeds):
                labels.append((ds, task, s))
                points.append(centre + sigma * rng.standard_normal(6))
    points = np.array(points)
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    ds, task, seed = (np.array(x, dtype=object) for x in zip(*labels))
    return d, ds, task, seed


def test_dependence_test_finds_the_effects_built_in_and_not_the_others():
    for trial in range(5):
        rng = np.random.default_rng(100 + trial)
        d, ds, task, seed = _constructed(rng, data_effect=2.0, task_effect=0.0)
        data = dependence_test(d, ds, task, seed)
        on_task = dependence_test(d, task, ds, seed)
        # per task, 3 + 3 runs split into two labelled halves: 20 arrangements, 10 splits (a and b swapped tie)
        assert data["exact"] and data["arrangements"] == 400 and data["min_p"] == pytest.approx(1 / 100)
        assert data["p"] == pytest.approx(data["min_p"]) and data["gap"] > 0.5
        assert on_task["p"] > 0.05
        d, ds, task, seed = _constructed(rng, data_effect=0.0, task_effect=2.0)
        assert dependence_test(d, task, ds, seed)["p"] < 0.05 and dependence_test(d, ds, task, seed)["p"] > 0.05


def test_dependence_test_on_noise_rejects_at_about_its_level():
    """Without an effect the p-values are roughly uniform: at 0.05 about 5 % of 60 noise sets are rejected."""
    rng = np.random.default_rng(7)
    ps = []
    for _ in range(60):
        d, ds, task, seed = _constructed(rng, 0.0, 0.0)
        ps.append(dependence_test(d, ds, task, seed)["p"])
    ps = np.array(ps)
    assert np.mean(ps < 0.05) <= 0.15 and 0.3 < np.median(ps) < 0.7


def test_dependence_test_random_permutations_and_refusals():
    rng = np.random.default_rng(8)
    d, ds, task, seed = _constructed(rng, 2.0, 0.0)
    sampled = dependence_test(d, ds, task, seed, max_exact=10, n_random=999)
    assert not sampled["exact"] and sampled["min_p"] == pytest.approx(1 / 1000) and sampled["p"] < 0.01
    one_seed = dependence_test(d, ds, task, np.zeros(len(ds), dtype=int))  # no pairs of different seeds
    assert one_seed["p"] is None and "two seeds" in one_seed["reason"]
    with pytest.raises(ValueError, match="distance matrix"):
        dependence_test(d[:3, :3], ds, task, seed)


def test_feature_parts_add_up_to_the_mean_squared_matched_cost():
    from lgn.analysis.distance import FEATURE_PARTS, feature_parts

    rng = np.random.default_rng(4)
    f, g = (run_features(rng.normal(size=(2, 3, 1, K * K, K * K)), K) for _ in range(2))
    parts = feature_parts(f, g)
    assert list(parts) == list(FEATURE_PARTS) and min(parts.values()) > 0
    from scipy.optimize import linear_sum_assignment

    from lgn.analysis.distance import _cost_matrix
    want = []
    for fl, gl in zip(f, g):  # the matched costs of feature_distance, squared
        cost = _cost_matrix(fl, gl)
        rows, cols = linear_sum_assignment(cost)
        want.append(np.mean(cost[rows, cols] ** 2))
    assert sum(parts.values()) == pytest.approx(np.mean(want), rel=1e-12)
    a = rng.normal(size=(1, 2, 1, K * K, K * K))
    same = feature_parts(run_features(a, K), run_features(3.0 * a[:, ::-1], K))  # scaled and reordered: no part moves
    assert max(same.values()) < 1e-20
