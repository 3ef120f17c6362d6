"""The recovery score: does a learned orbit follow a planted group?

For a generator a ``(n, n)`` and a base filter b ``(n,)``, and the planted
generator T of order p::

    alignment = max over j coprime to p of  mean over i = 1..p−1 of  cos(a**i · b, T**(j·i) · b)

and 0 when the orbit collapses (mean over i of |cos(a**i · b, b)| > 0.9): an
orbit whose filters are all the same filter uses no group at all. 1 means the
learned orbit walks through the planted orbit of b step by step (for some
generator T**j of the planted group); a random generator scores about 0.05.
Only a's action on the orbit of b is scored, which is all the network uses.
Pure numpy, float64.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["COLLAPSE_THRESHOLD", "orbit_alignment", "alignment", "alignment_per_group", "collapse",
           "alignment_floor", "random_finite_order"]

COLLAPSE_THRESHOLD = 0.9


def _cos(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Cosine of matching rows of ``u`` and ``v`` ``(m, n)`` → ``(m,)``; 0 where either row is 0."""
    nu, nv = np.linalg.norm(u, axis=-1), np.linalg.norm(v, axis=-1)
    den = nu * nv
    return np.where(den > 1e-300, (u * v).sum(-1) / np.where(den > 1e-300, den, 1.0), 0.0)


def _orbit(a: np.ndarray, b: np.ndarray, order: int) -> np.ndarray:
    """``(order, n)``: b, a·b, …, a**(order−1)·b."""
    out = [b]
    for _ in range(order - 1):
        out.append(a @ out[-1])
    return np.stack(out)


def _check(a, b, planted) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a, b, t = (np.asarray(v, dtype=np.float64) for v in (a, b, planted))
    n = b.shape[-1]
    if a.shape != (n, n) or t.shape != (n, n) or b.shape != (n,):
        raise ValueError(f"expected generator (n, n), base (n,) and planted (n, n) with one n; "
                         f"got {a.shape}, {b.shape}, {t.shape}")
    return a, b, t


def collapse(a, b, order: int) -> float:
    """Mean over i = 1..order−1 of |cos(a**i · b, b)|: near 1 when the orbit is one filter repeated."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if order < 2:
        return 1.0
    orb = _orbit(a, b, order)
    return float(np.abs(_cos(orb[1:], np.broadcast_to(b, orb[1:].shape))).mean())


def orbit_alignment(a, b, planted, order: int) -> float:
    """The score of one group: generator ``a`` ``(n, n)``, base ``b`` ``(n,)``, planted T ``(n, n)`` of ``order``."""
    a, b, t = _check(a, b, planted)
    if not isinstance(order, (int, np.integer)) or order < 2:
        raise ValueError(f"the planted order must be an integer >= 2, got {order!r}")
    if collapse(a, b, order) > COLLAPSE_THRESHOLD:
        return 0.0
    learned = _orbit(a, b, order)[1:]  # (p−1, n)
    best = -1.0
    for j in range(1, order):
        if math.gcd(j, order) != 1:
            continue
        planted_orbit = _orbit(np.linalg.matrix_power(t, j), b, order)[1:]  # (p−1, n): T**(j·i) b
        best = max(best, float(_cos(learned, planted_orbit).mean()))
    return best


def alignment_per_group(generators, bases, planted, order: int) -> np.ndarray:
    """Scores of every group: ``generators`` ``(K, n, n)``, ``bases`` ``(K, n)`` → ``(K,)``."""
    a = np.asarray(generators, dtype=np.float64)
    b = np.asarray(bases, dtype=np.float64)
    if a.ndim != 3 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"expected generators (K, n, n) and bases (K, n), got {a.shape} and {b.shape}")
    return np.array([orbit_alignment(a[g], b[g], planted, order) for g in range(a.shape[0])])


def _layer0(generators, bases) -> tuple[np.ndarray, np.ndarray]:
    """``(K, n, n)`` generators and ``(K, n)`` bases of layer 0 (``groups.npz`` layout or already flat)."""
    a = np.asarray(generators, dtype=np.float64)
    b = np.asarray(bases, dtype=np.float64)
    if a.ndim == 5:
        a = a[0, :, 0]  # (K, n, n)
        b = b[0, :, 0].reshape(b.shape[1], -1)  # (K, k·k)
        if b.shape[-1] != a.shape[-1]:  # joint action: the base is all channels' pixels
            b = np.asarray(bases, dtype=np.float64)[0].reshape(a.shape[0], -1)
    return a, b


def random_finite_order(n: int, order: int, rng: np.random.Generator) -> np.ndarray:
    """A random orthogonal ``(n, n)`` with A**order = I: Q·D·Qᵀ, D of 2×2 rotations by random multiples of
    2π/order (and ±1 on a last odd coordinate), Q Haar-random."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    q = q * np.sign(np.diag(r))
    d = np.eye(n)
    for i in range(0, n - 1, 2):
        t = 2.0 * math.pi * rng.integers(1, order) / order
        d[i:i + 2, i:i + 2] = [[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]]
    return q @ d @ q.T


def alignment_floor(generators, bases, planted, order: int, *, draws: int = 5, seed: int = 0) -> dict:
    """What :func:`alignment` gives with no group learned, on the same base filters; two floors:

    - ``random_generator``: generators replaced by random orthogonal matrices of the same order
      (near 0: a random map sends b nowhere near T·b);
    - ``unrelated_filters``: the orbit filters a**i·b replaced by other base filters of the layer,
      drawn at random (on centred images far from 0: two centred digits overlap, and rotation keeps
      strokes near the centre, so against a rotation such filters score about 0.5).

    Mean over ``draws`` draws and over groups.
    """
    a, b = _layer0(generators, bases)
    t = _check(a[0], b[0], planted)[2]
    rng = np.random.default_rng(seed)
    k, n = b.shape
    random_scores = []
    for _ in range(draws):
        rand = random_finite_order(n, order, rng)
        random_scores.append(np.mean([orbit_alignment(rand, b[g], t, order) for g in range(k)]))
    unrelated = []
    if k > 1:
        for _ in range(draws):
            for g in range(k):
                others = rng.choice(np.delete(np.arange(k), g), size=order - 1, replace=k - 1 < order - 1)
                best = max(float(_cos(b[others], _orbit(np.linalg.matrix_power(t, j), b[g], order)[1:]).mean())
                           for j in range(1, order) if math.gcd(j, order) == 1)
                unrelated.append(best)
    return {"random_generator": float(np.mean(random_scores)),
            "unrelated_filters": float(np.mean(unrelated)) if unrelated else float("nan")}


def alignment(generators, bases, planted, order: int) -> float:
    """The benchmark's score of a layer: the mean of :func:`alignment_per_group`.

    Accepts the ``groups.npz`` layout too: ``generators`` ``(L, K, C, n, n)`` and
    ``bases`` ``(L, K, C, k, k)``, of which layer 0 and channel block 0 are scored.
    """
    a, b = _layer0(generators, bases)
    return float(alignment_per_group(a, b, planted, order).mean())
