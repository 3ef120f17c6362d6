"""The symmetry losses on cases with a known answer, and the Schur argument: second moments accept a wrong
phase, third moments and whole-distribution losses refuse it."""

import math

import numpy as np
import pytest
import torch

from lgn.data.planted import planted_generator, smooth_templates
from lgn.discovery.losses import (class_moments, matching_loss, median_distance, mmd2, self_terms, sinkhorn,
                                  symmetry_loss, third_moment_loss)
from lgn.groups import operators


def _random_orthogonal(n, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return torch.from_numpy(q)


def test_mmd_of_two_gaussians_matches_the_closed_form():
    # N(0, I) against N(m, I) in d dimensions, Gaussian kernel of width σ:
    # MMD² = 2·(σ²/(σ² + 2))^(d/2)·(1 − exp(−|m|²/(2(σ² + 2))))
    g = torch.Generator().manual_seed(0)
    d, n, sigma = 3, 3000, 1.5
    m = torch.tensor([0.8, -0.4, 0.3], dtype=torch.float64)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randn(n, d, generator=g, dtype=torch.float64) + m
    s2 = sigma ** 2
    expected = 2 * (s2 / (s2 + 2)) ** (d / 2) * (1 - math.exp(-float(m @ m) / (2 * (s2 + 2))))
    assert float(mmd2(x, y, sigma)) == pytest.approx(expected, abs=0.01)
    same = torch.randn(n, d, generator=g, dtype=torch.float64)
    assert abs(float(mmd2(x, same, sigma))) < 0.005
    # the within terms passed in give the same value as computed inside
    assert float(mmd2(x, y, sigma, self_terms(x, y, sigma, "mmd"))) == pytest.approx(float(mmd2(x, y, sigma)))


def test_sinkhorn_cost_of_a_translation_is_its_squared_length():
    # with uniform weights and squared Euclidean cost, moving a sample by m adds exactly |m|² to every
    # transport plan's cost, so the debiased cost is |m|², whatever ε
    g = torch.Generator().manual_seed(1)
    x = torch.randn(60, 4, generator=g, dtype=torch.float64)
    m = torch.tensor([0.5, 0.0, -1.0, 0.25], dtype=torch.float64)
    for eps in (1.0, 3.0):  # Sinkhorn converges slowly for small ε: tested where 1,000 iterations suffice
        assert float(sinkhorn(x, x + m, eps, iterations=1000)) == pytest.approx(float(m @ m), rel=1e-4)
    assert abs(float(sinkhorn(x, x[torch.randperm(60, generator=g)], 0.1, iterations=200))) < 1e-8
    assert float(sinkhorn(x, 2 * x, 0.1)) > 0.5


def test_median_distance():
    x = torch.tensor([[0.0], [1.0], [3.0]])
    assert median_distance(x) == 2.0  # distances 1, 2, 3


def _symmetric_classes(t, order, classes=5, per_class=200, seed=0):
    """Classes whose samples hold every power of T of each draw: each class's sample is exactly T-invariant."""
    rng = np.random.default_rng(seed)
    k = int(math.isqrt(t.shape[0]))
    temps = smooth_templates(classes, k, rng).reshape(classes, -1)
    xs, ys = [], []
    for c in range(classes):
        draws = temps[c] + 0.5 * rng.standard_normal((per_class, k * k)) * rng.random((per_class, 1))
        for j in range(order):
            xs.append(draws @ np.linalg.matrix_power(t, j).T)
            ys.append(np.full(per_class, c))
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


def test_second_moments_accept_a_wrong_phase_that_third_moments_and_mmd_refuse():
    t, order = planted_generator("rot90", 6)
    eye = np.eye(36)
    # T's isotypic projectors: eigenvalue +1, −1, and the ±i pair (a real 2-D rotation block)
    p_plus = sum(np.linalg.matrix_power(t, j) for j in range(4)) / 4
    p_minus = sum((-1) ** j * np.linalg.matrix_power(t, j) for j in range(4)) / 4
    p_pair = (eye - t @ t) / 2
    assert np.allclose(p_plus + p_minus + p_pair, eye)
    wrong = p_plus + p_minus + t @ p_pair  # T on the ±i blocks, +1 on T's −1 block: the phase π flipped to 0
    assert np.allclose(wrong @ wrong.T, eye) and np.allclose(np.linalg.matrix_power(wrong, 4), eye)
    assert not np.allclose(wrong, t) and not np.allclose(wrong, t.T)
    x, y = _symmetric_classes(t, order)
    t_, wrong_, minus_t = (torch.from_numpy(m) for m in (t, wrong, -t))
    moments = class_moments(x, y)
    # Schur: every S_c commutes with T, hence with any polynomial in T: the wrong candidate and −T pass
    for candidate in (t_, wrong_, minus_t):
        assert float(symmetry_loss(candidate, moments)) < 1e-20
    assert float(symmetry_loss(_random_orthogonal(36, 0), moments)) > 0.01
    # third moments tell them apart
    directions = torch.nn.functional.normalize(torch.randn(64, 36, dtype=torch.float64), dim=1)
    third = {name: float(third_moment_loss(m, x, y, directions))
             for name, m in (("T", t_), ("wrong", wrong_), ("-T", minus_t))}
    assert third["T"] < 1e-20  # the sample is exactly T-invariant
    assert third["wrong"] > 0.1 and third["-T"] > 0.1
    # and so does the kernel two-sample statistic, class by class
    def mmd(m):
        values = []
        for c in range(5):
            xc = x[y == c]
            values.append(float(mmd2(xc, xc @ m.T, median_distance(xc))))
        return np.mean(values)

    assert mmd(t_) < 1e-3
    assert mmd(wrong_) > 10 * max(mmd(t_), 1e-4) and mmd(minus_t) > 10 * max(mmd(t_), 1e-4)


def test_matching_loss_is_zero_when_moved_images_land_on_images_of_their_class():
    t = torch.from_numpy(operators.flip(4, "x"))
    base = torch.randn(5, 16, dtype=torch.float64)
    x = torch.cat([base, base @ t.T])  # every image and its mirror image
    y = torch.arange(5).repeat(2)
    assert float(matching_loss(t, x, y, x, y)) < 1e-24
    # the mirror of an image of class 0 is no help to an image of class 1: the classes are kept apart
    assert float(matching_loss(t, x, y.roll(1), x, y)) > 0.1
    assert float(matching_loss(_random_orthogonal(16, 2), x, y, x, y)) > 0.3


def test_the_resplit_test_tells_moved_samples_from_equal_ones():
    from lgn.discovery.losses import mmd2_resplit_p

    g = torch.Generator().manual_seed(0)
    u = torch.randn(2, 3, 40, 5, generator=g, dtype=torch.float64)  # 2 pools, 3 comparisons, 40 a side
    same = torch.randn(2, 3, 40, 5, generator=g, dtype=torch.float64)
    shifted = same + 0.8  # every coordinate's mean moved by 0.8 standard deviations
    sigma = torch.full((2,), 2.0, dtype=torch.float64)
    assert mmd2_resplit_p(u, shifted, sigma, 99, g) == 0.01  # no re-split reaches the observed statistic
    # samples of one distribution: p is uniform, so at most about 5% of draws fall at or below 0.05
    p = np.array([mmd2_resplit_p(torch.randn(2, 3, 20, 5, generator=g, dtype=torch.float64),
                                 torch.randn(2, 3, 20, 5, generator=g, dtype=torch.float64), sigma, 49, g)
                  for _ in range(100)])
    assert np.mean(p <= 0.05) < 0.12 and 0.3 < np.median(p) < 0.7
    # the observed statistic is the unbiased MMD² of mmd2, mean over pools and comparisons: with a single
    # re-split, p is 1 (re-split at or above) or 1/2, never anything else
    assert mmd2_resplit_p(u, same, sigma, 1, g) in (0.5, 1.0)
