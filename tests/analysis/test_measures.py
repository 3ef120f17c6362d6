"""Each index is 1 on a matrix built to have its structure and 0 on one built not to.

The constructions are independent of the code under test: Toeplitz and circulant
matrices are assembled entry by entry from a random kernel t(dr, dc), matrices
without the structure by removing class means with a plain dict loop, and the
group errors are checked against a brute-force minimisation over the scale.
"""

import itertools
import math

import numpy as np
import pytest
import torch

from lgn.analysis import measures as M
from lgn.groups import CyclicGenerator
from lgn.groups import operators as ops

K = 5
N = K * K
rng = np.random.default_rng(0)


def pixels(k=K):
    return list(itertools.product(range(k), range(k)))


def bttb(k=K, cyclic=False, seed=0):
    """A[(r, c), (r', c')] = t(r − r', c − c'), entry by entry."""
    t = np.random.default_rng(seed).standard_normal((2 * k - 1, 2 * k - 1))
    a = np.zeros((k * k, k * k))
    for (i, (r, c)), (j, (rr, cc)) in itertools.product(enumerate(pixels(k)), repeat=2):
        dr, dc = r - rr, c - cc
        a[i, j] = t[dr % k, dc % k] if cyclic else t[dr + k - 1, dc + k - 1]
    return a


def without(a, cyclic, k=K):
    """a minus the mean of each of its diagonal classes: orthogonal to every BTTB (BCCB) matrix."""
    groups = {}
    for (i, (r, c)), (j, (rr, cc)) in itertools.product(enumerate(pixels(k)), repeat=2):
        key = ((r - rr) % k, (c - cc) % k) if cyclic else (r - rr, c - cc)
        groups.setdefault(key, []).append((i, j))
    out = a.copy()
    for idx in groups.values():
        rows, cols = zip(*idx)
        out[rows, cols] -= a[rows, cols].mean()
    return out


def random(n=N, seed=1):
    return np.random.default_rng(seed).standard_normal((n, n))


# --- symmetry -----------------------------------------------------------------

def test_skew_and_symmetric():
    s = random()
    assert M.skew_index(s - s.T) == pytest.approx(1.0)
    assert M.symmetric_index(s - s.T) == pytest.approx(0.0, abs=1e-12)
    assert M.skew_index(s + s.T) == pytest.approx(0.0, abs=1e-12)
    assert M.symmetric_index(s + s.T) == pytest.approx(1.0)
    assert M.skew_index(s) ** 2 + M.symmetric_index(s) ** 2 == pytest.approx(1.0)
    assert M.skew_index(np.zeros((4, 4))) == 0.0


# --- shift structure ----------------------------------------------------------

def test_toeplitz_index():
    assert M.toeplitz_index(bttb()) == pytest.approx(1.0)
    assert M.toeplitz_index(5.0 * bttb(seed=3)) == pytest.approx(1.0)
    assert M.toeplitz_index(without(random(), cyclic=False)) == pytest.approx(0.0, abs=1e-12)
    for dx, dy in [(1, 0), (-2, 1), (4, 4)]:
        assert M.toeplitz_index(ops.shift(K, dx, dy, cyclic=False)) == pytest.approx(1.0)


def test_circulant_index():
    assert M.circulant_index(bttb(cyclic=True)) == pytest.approx(1.0)
    assert M.circulant_index(without(random(), cyclic=True)) == pytest.approx(0.0, abs=1e-12)
    # hand-worked: a zero-padded shift by one column has k(k−1) ones in a circulant class of k² entries:
    # projection energy (k(k−1))² / k², total k(k−1)  →  (k−1)/k
    assert M.circulant_index(ops.shift(K, 1, 0, cyclic=False)) == pytest.approx((K - 1) / K)
    a = random()
    assert M.circulant_index(a) <= M.toeplitz_index(a) + 1e-12
    # a random matrix: about dim(subspace)/n² = (2k−1)²/k⁴ and k²/k⁴
    assert M.toeplitz_index(a) < 3 * (2 * K - 1) ** 2 / N ** 2
    assert M.circulant_index(a) < 3 * N / N ** 2


def test_dft_conjugate_matches_fft_of_columns():
    a = random()
    conj = M.dft_conjugate(a)
    # F A F⁻¹ x = fft2(A · ifft2(x)) for every x; check on the basis
    for j in range(N):
        e = np.zeros(N)
        e[j] = 1
        x = np.fft.ifft2(e.reshape(K, K), norm="ortho").reshape(-1)
        expected = np.fft.fft2((a @ x).reshape(K, K), norm="ortho").reshape(-1)
        np.testing.assert_allclose(conj @ e, expected, atol=1e-12)


def test_dft_diagonal_index():
    assert M.dft_diagonal_index(bttb(cyclic=True)) == pytest.approx(1.0)
    assert M.dft_diagonal_index(ops.shift(K, 2, 1)) == pytest.approx(1.0)
    assert M.dft_diagonal_index(without(random(), cyclic=True)) == pytest.approx(0.0, abs=1e-12)
    a = random(seed=4)
    assert M.dft_diagonal_index(a) == pytest.approx(M.circulant_index(a))  # the DFT diagonalises BCCB


@pytest.mark.parametrize("op", [ops.rotation(K, 90), ops.rotation(K, 180), ops.flip(K, "x"), ops.flip(K, "y"),
                                ops.transpose(K), ops.shift(K, 1, 2), np.eye(N)])
def test_dft_top_is_one_for_monomial_fourier_actions(op):
    assert M.dft_top_index(3.0 * op) == pytest.approx(1.0)


def test_dft_top_is_low_for_noise():
    assert M.dft_top_index(random()) < 0.35  # about (1 + ln n)/n = 0.17
    signs = np.sign(np.random.default_rng(0).standard_normal((N, N)))  # flat entries, spread spectrum
    assert M.dft_top_index(signs) < 0.35


def test_block_index():
    row_op = np.kron(np.eye(K), random(K))  # acts on each kernel row alone: block diagonal
    assert M.block_index(row_op) == pytest.approx(1.0)
    assert M.block_index(ops.shift(K, 0, 1)) == pytest.approx(1.0)  # vertical shift: block permutation
    # a 90° rotation puts exactly one entry in every k×k block: an even spread
    assert M.block_index(ops.rotation(K, 90)) == pytest.approx(0.0, abs=1e-12)
    assert M.block_index(np.ones((N, N))) == pytest.approx(0.0, abs=1e-12)
    assert 0.0 < M.block_index(random()) < 0.3


def test_indices_are_scale_invariant_and_in_unit_interval():
    a = random(seed=7)
    ref = M.structure_indices(a)
    assert set(ref) == set(M.INDEX_NAMES)
    for name, value in M.structure_indices(-0.01 * a).items():
        assert value == pytest.approx(ref[name])
        assert 0.0 <= value <= 1.0
    assert all(v == 0.0 for v in M.structure_indices(np.zeros((N, N))).values())


def test_joint_action_reads_each_channel_pair():
    c = 3
    circ = np.kron(np.eye(c), bttb(cyclic=True))  # the same cyclic convolution on every channel
    mixed = np.kron(random(c, seed=2), bttb(cyclic=True, seed=5))  # and with channel mixing
    for a in (circ, mixed):
        assert M.circulant_index(a, K) == pytest.approx(1.0)
        assert M.toeplitz_index(a, K) == pytest.approx(1.0)
        assert M.dft_diagonal_index(a, K) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="multiple of k²"):
        M.toeplitz_index(random(N + 1), K)
    with pytest.raises(ValueError, match="kernel size"):
        M.toeplitz_index(random(3 * N))


# --- group-ness ---------------------------------------------------------------

def brute_force_finite_order(a, p):
    cs = np.concatenate([-np.logspace(-3, 3, 4001), np.logspace(-3, 3, 4001)])
    ap = np.linalg.matrix_power(a, p)
    eye = np.eye(a.shape[0])
    return min(np.linalg.norm(c ** p * ap - eye) for c in cs) / math.sqrt(a.shape[0])


@pytest.mark.parametrize("p", [2, 3, 4])
def test_finite_order_error_matches_brute_force(p):
    a = random(6, seed=p) / 3
    assert M.finite_order_error(a, p) == pytest.approx(brute_force_finite_order(a, p), rel=1e-3, abs=1e-4)


def test_finite_order_error_on_groups():
    rot = ops.rotation(K, 90)
    assert M.finite_order_error(0.2 * rot, 4) == pytest.approx(0.0, abs=1e-7)
    assert M.finite_order_error(0.2 * rot, 2) > 0.5  # rot90² = rot180 ≠ I
    assert M.finite_order_error(ops.flip(K, "x"), 2) == pytest.approx(0.0, abs=1e-7)
    assert M.finite_order_error(ops.shift(K, 1, 0, cyclic=False), 5) == 1.0  # nilpotent
    gen = CyclicGenerator(1, 1, N, order=4).double()
    with torch.no_grad():
        a = gen.matrix()[0, 0].numpy()
    assert M.finite_order_error(a, 4) < 1e-6
    # −I: (c·(−I))² = I for c = ±1, and for odd p, c = −1 gives I too
    assert M.finite_order_error(-np.eye(4), 2) == pytest.approx(0.0, abs=1e-7)
    assert M.finite_order_error(-np.eye(4), 3) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="order"):
        M.finite_order_error(rot, 0)


def test_orthogonality_error():
    q, _ = np.linalg.qr(random(8, seed=3))
    assert M.orthogonality_error(3.7 * q) == pytest.approx(0.0, abs=1e-7)  # √ of rounding
    assert M.orthogonality_error(ops.rotation(K, 90)) == pytest.approx(0.0, abs=1e-7)
    # hand-worked: diag(1, 2) has σ² = 1, 4: √(1 − (1 + 4)² / (2·(1 + 16)))
    assert M.orthogonality_error(np.diag([1.0, 2.0])) == pytest.approx(math.sqrt(1 - 25 / 34))
    # a rank-r orthogonal projection on m dims: √(1 − r/m)
    proj = np.diag([1.0] * 3 + [0.0] * 5)
    assert M.orthogonality_error(proj) == pytest.approx(math.sqrt(1 - 3 / 8))
    # brute force over the scale
    a = random(6, seed=9)
    brute = min(np.linalg.norm(c * c * a.T @ a - np.eye(6)) for c in np.logspace(-2, 1, 20001)) / math.sqrt(6)
    assert M.orthogonality_error(a) == pytest.approx(brute, rel=1e-3)


def test_group_errors():
    q, _ = np.linalg.qr(random(6, seed=3))
    ge = M.group_errors(2.0 * q, 4)
    assert set(ge) == set(M.GROUP_ERROR_NAMES)
    assert ge["min_singular"] == pytest.approx(2.0)
    assert ge["cond"] == pytest.approx(1.0)
    singular = M.group_errors(ops.shift(K, 1, 0, cyclic=False), 4)
    assert singular["min_singular"] == 0.0 and singular["cond"] == math.inf
    assert singular["finite_order"] == 1.0


def test_orbit_norms_follow_explicit_matrix_powers():
    from lgn.analysis import orbit_norms

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(9, 9)) / 3, rng.normal(size=(3, 3))
    want = [np.linalg.norm(np.linalg.matrix_power(a, i) @ b.ravel()) / np.linalg.norm(b) for i in range(4)]
    np.testing.assert_allclose(orbit_norms(a, b, 4), want, rtol=1e-12)
    q, _ = np.linalg.qr(rng.normal(size=(9, 9)))
    np.testing.assert_allclose(orbit_norms(0.5 * q, b, 4), [1, 0.5, 0.25, 0.125], rtol=1e-12)  # c^i for c·orthogonal
    assert not orbit_norms(a, np.zeros(9), 3).any()
    with pytest.raises(ValueError, match="m entries"):
        orbit_norms(a, np.ones(4), 3)
