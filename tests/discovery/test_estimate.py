"""The group estimate: exact order, the cycle search, recovery of groups it was never told about."""

import numpy as np
import pytest

from lgn.data.planted import smooth_templates
from lgn.discovery import alignment, estimate_group, judge
from lgn.discovery.estimate import find_cycles, fit_orthogonal, nearest_finite_order
from lgn.discovery.verdict import NULL_RATIO
from lgn.groups import operators


def _orbit_data(t, p, n_classes, n, sigma, seed):
    """x = T**j t_c + σ·noise, labels c: the planted construction for any T."""
    rng = np.random.default_rng(seed)
    k = int(round(np.sqrt(t.shape[0])))
    temps = smooth_templates(n_classes, k, rng).reshape(n_classes, -1)
    c, j = rng.integers(0, n_classes, n), rng.integers(0, p, n)
    powers = np.stack([np.linalg.matrix_power(t, i) for i in range(p)])
    x = np.einsum("nab,nb->na", powers[j], temps[c]) + sigma * rng.standard_normal((n, t.shape[0]))
    return x, c


def test_nearest_finite_order_is_exact_and_keeps_an_exact_group():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    a = nearest_finite_order(q, 5)
    assert np.allclose(np.linalg.matrix_power(a, 5), np.eye(12), atol=1e-9)
    assert np.allclose(a @ a.T, np.eye(12), atol=1e-9)
    t = operators.cyclic_permutation(12, 4, seed=1)
    assert np.allclose(nearest_finite_order(t, 4), t, atol=1e-9)


def test_find_cycles_recovers_a_planted_permutation_of_exact_centres():
    t = operators.rotation(5, 90)
    rng = np.random.default_rng(1)
    temps = rng.standard_normal((3, 25))
    centres = np.stack([np.linalg.matrix_power(t, j) @ temps[c] for c in range(3) for j in range(4)])  # (12, 25)
    shuffle = np.concatenate([rng.permutation(4) + 4 * c for c in range(3)])
    centres = centres[shuffle]
    clusters = [np.arange(4 * c, 4 * c + 4) for c in range(3)]
    pi, cost = find_cycles(centres @ centres.T, clusters, 4)
    assert cost < 1e-9
    mapped = centres[pi]
    ok = [np.allclose(mapped, centres @ np.linalg.matrix_power(t, j).T) for j in (1, 3)]
    assert any(ok)


def test_find_cycles_always_ends_in_cycles_of_the_order_in_one_large_pool():
    """One pool of 160 centres with no structure (where mapping centres in a fixed order left chains that
    could not close and raised), and one of 80 planted orbits, shuffled: the cycles are exactly the orbits."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((160, 36))
    pi, _ = find_cycles(x @ x.T, [np.arange(160)], 4, width=8)
    assert sorted(pi.tolist()) == list(range(160))  # a permutation
    for a in range(160):
        cycle = [a]
        while pi[cycle[-1]] != a:
            cycle.append(int(pi[cycle[-1]]))
        assert len(cycle) == 4
    t = operators.rotation(6, 90)
    temps = rng.standard_normal((20, 36))
    centres = np.stack([np.linalg.matrix_power(t, j) @ temps[c] for c in range(20) for j in range(4)])
    shuffle = rng.permutation(80)
    pi, cost = find_cycles(centres[shuffle] @ centres[shuffle].T, [np.arange(80)], 4)
    orbit = (shuffle // 4)  # the template each shuffled centre comes from
    assert cost < 1e-9 and np.array_equal(orbit[pi], orbit) and np.all(pi != np.arange(80))
    assert np.allclose(np.linalg.matrix_power(t, 2) @ centres[shuffle].T, centres[shuffle][pi[pi]].T)


@pytest.mark.parametrize("order,seed", [(3, 0), (6, 1), (2, 2)])
def test_recovers_unseen_permutation_groups(order, seed):
    """Random pixel permutations of orders the planted names do not cover."""
    t = operators.cyclic_permutation(36, order, seed=seed + 10)
    x, y = _orbit_data(t, order, 3, 450, 0.1, seed)
    est = estimate_group(x, y, order, seed=seed)
    bases = est.centres[[c[0] for c in est.clusters]]
    assert alignment(np.stack([est.generator] * len(bases)), bases, t, order) > 0.98
    assert est.fit_residual < 0.05


def test_recovers_a_rotated_non_pixel_group_unlabelled():
    """T = Q·P·Qᵀ (an orthogonal group that permutes no pixels), clusters without labels."""
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    t = q @ operators.rotation(4, 90) @ q.T
    x, _ = _orbit_data(t, 4, 2, 400, 0.05, 3)
    est = estimate_group(x, None, 4, n_clusters=8)
    bases = est.centres[:3]
    assert alignment(np.stack([est.generator] * 3), bases, t, 4) > 0.98


def test_no_group_is_reported_as_not_found():
    """Each class: p unrelated templates. Nothing cycles them, so the verdict must say no."""
    rng = np.random.default_rng(4)
    temps = smooth_templates(12, 6, rng).reshape(3, 4, 36)
    c, j = rng.integers(0, 3, 600), rng.integers(0, 4, 600)
    x = temps[c, j] + 0.1 * rng.standard_normal((600, 36))
    est = estimate_group(x, c, 4)
    verdict = judge(est, 6)
    assert verdict.null_ratio > NULL_RATIO
    assert not verdict.found and verdict.text().startswith("no group")


def test_verdict_names_rot90():
    x, y = _orbit_data(operators.rotation(6, 90), 4, 3, 400, 0.1, 5)
    verdict = judge(estimate_group(x, y, 4), 6)
    assert verdict.found and verdict.order == 4
    assert verdict.nearest_operation in ("rot90", "rot270")
    assert verdict.permutation_cycles == {4: 9}


def test_procrustes_falls_back_when_the_svd_does_not_converge(monkeypatch):
    """gesdd (numpy's driver) fails to converge on some rank-deficient inputs; gesvd then gives the map."""
    rng = np.random.default_rng(6)
    t = operators.cyclic_permutation(16, 4, seed=2)
    source = np.zeros((6, 16))
    source[:, :3] = rng.standard_normal((6, 3))  # rank 3 of 16
    expected = fit_orthogonal(source, source @ t.T)

    def no_convergence(*args, **kwargs):
        raise np.linalg.LinAlgError("SVD did not converge")

    monkeypatch.setattr(np.linalg, "svd", no_convergence)
    a = fit_orthogonal(source, source @ t.T)
    assert np.allclose(a @ a.T, np.eye(16), atol=1e-9)
    assert np.allclose(source @ a.T, source @ t.T, atol=1e-9)
    assert np.allclose(source @ a.T, source @ expected.T, atol=1e-9)


def test_bad_arguments():
    x = np.zeros((10, 4))
    with pytest.raises(ValueError, match="group size"):
        estimate_group(x, np.zeros(10, int), 1)
    with pytest.raises(ValueError, match="n_clusters"):
        estimate_group(x, None, 2)


def _digits(n_per_class, moved):
    """Real 16×16 digits of classes 0, 2, 3, 4 (the first ``n_per_class`` of each, 600 images in all), each turned by a random
    multiple of 90° when ``moved``."""
    from lgn.data.planted import digit_images

    x, y, _, _ = digit_images(16)
    keep = np.concatenate([np.flatnonzero(y == c)[:n_per_class] for c in (0, 2, 3, 4)])
    x, y = x[keep], y[keep]
    if moved:
        turns = np.random.default_rng(0).integers(0, 4, len(x))
        x = np.stack([np.rot90(im, t) for im, t in zip(x, turns)])
    x = x.reshape(len(x), -1)
    return (x - x.mean()) / x.std(), y


def test_verdict_is_calibrated_on_real_digits():
    """Turned digits: found, far under the null; the same digits unturned: refused, inside the null."""
    x, y = _digits(150, moved=True)
    turned = judge(estimate_group(x, y, 4), 16)
    assert turned.found and turned.null_ratio < NULL_RATIO and turned.p_value <= 0.05
    assert turned.nearest_operation in ("rot90", "rot270")
    x, y = _digits(150, moved=False)
    plain = judge(estimate_group(x, y, 4), 16)
    assert not plain.found and plain.null_ratio > 0.8
    assert set(plain.null_quantiles) == {"0", "0.05", "0.5", "0.95"}
    assert "null" in plain.text() and "p =" in plain.text()
