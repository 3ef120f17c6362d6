"""Exact linear operators on k×k kernels, as n×n matrices (n = k²).

Every matrix here acts on a kernel flattened row-major (pixel (r, c) has index
r·k + c), so ``(M @ x.reshape(n)).reshape(k, k)`` applies the operation to ``x``.
These are the reference points of the project: fixed generators for baselines,
planted groups for the discovery benchmark, and the library the analysis matches
learned generators against (:func:`library`). Pure numpy, float64.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from lgn.settings import check_positive_int

__all__ = [
    "identity",
    "shift",
    "rotation",
    "flip",
    "transpose",
    "average_pool",
    "pool_rotation",
    "dft",
    "library",
    "library_matrix",
    "permutation_operations",
    "family",
    "FAMILIES",
    "cyclic_permutation",
    "permutation_matrix",
    "named_operator",
    "OPERATOR_NAMES",
]


def _check_size(k: int) -> None:
    check_positive_int(k, "kernel size")


def _from_pixel_map(k: int, fn) -> np.ndarray:
    """Build M with M[out, in] = weight for each (out pixel, in pixel, weight) fn yields."""
    n = k * k
    m = np.zeros((n, n))
    for r in range(k):
        for c in range(k):
            for (rr, cc, w) in fn(r, c):
                m[r * k + c, rr * k + cc] += w
    return m


def identity(k: int) -> np.ndarray:
    """The n×n identity."""
    _check_size(k)
    return np.eye(k * k)


def shift(k: int, dx: int, dy: int, *, cyclic: bool = True) -> np.ndarray:
    """Translate by ``dx`` columns (right) and ``dy`` rows (down).

    out[r, c] = x[r − dy, c − dx]; indices wrap when ``cyclic``, and pixels that
    come from outside the kernel are zero otherwise.
    """
    _check_size(k)

    def src(r, c):
        rr, cc = r - dy, c - dx
        if cyclic:
            yield rr % k, cc % k, 1.0
        elif 0 <= rr < k and 0 <= cc < k:
            yield rr, cc, 1.0

    return _from_pixel_map(k, src)


def rotation(k: int, degrees: float) -> np.ndarray:
    """Rotate counter-clockwise by ``degrees`` about the kernel centre.

    Multiples of 90° are exact permutations (``np.rot90``). Other angles sample
    the input at the inversely rotated position with bilinear interpolation;
    samples outside the kernel are zero.
    """
    _check_size(k)
    quarter = degrees / 90.0
    if abs(quarter - round(quarter)) < 1e-12:
        turns = int(round(quarter)) % 4
        eye = np.eye(k * k).reshape(k * k, k, k)
        # column j of M is the rotated j-th basis image
        return np.stack([np.rot90(e, turns).reshape(-1) for e in eye], axis=1)
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    centre = (k - 1) / 2.0

    def src(r, c):
        # image coordinates: x to the right, y up (rows go down)
        x, y = c - centre, centre - r
        # inverse rotation of the output position gives the source position
        xs, ys = cos * x + sin * y, -sin * x + cos * y
        cs, rs = xs + centre, centre - ys
        r0, c0 = math.floor(rs), math.floor(cs)
        fr, fc = rs - r0, cs - c0
        for dr, wr in ((0, 1 - fr), (1, fr)):
            for dc, wc in ((0, 1 - fc), (1, fc)):
                rr, cc, w = r0 + dr, c0 + dc, wr * wc
                if w > 1e-12 and 0 <= rr < k and 0 <= cc < k:
                    yield rr, cc, w

    return _from_pixel_map(k, src)


def flip(k: int, axis: str = "x") -> np.ndarray:
    """Mirror: ``axis='x'`` reverses columns (left↔right), ``'y'`` reverses rows."""
    _check_size(k)
    if axis not in ("x", "y"):
        raise ValueError(f"flip axis must be 'x' or 'y', got {axis!r}")
    if axis == "x":
        return _from_pixel_map(k, lambda r, c: [(r, k - 1 - c, 1.0)])
    return _from_pixel_map(k, lambda r, c: [(k - 1 - r, c, 1.0)])


def transpose(k: int, anti: bool = False) -> np.ndarray:
    """Reflect about the main diagonal, or about the anti-diagonal when ``anti``."""
    _check_size(k)
    if anti:
        return _from_pixel_map(k, lambda r, c: [(k - 1 - c, k - 1 - r, 1.0)])
    return _from_pixel_map(k, lambda r, c: [(c, r, 1.0)])


def average_pool(k: int, radius: int) -> np.ndarray:
    """Stride-1 box average of side 2·radius + 1, centred on each pixel.

    Only pixels inside the kernel are averaged (no zero padding counted), so
    constants are preserved: every row of M sums to 1.
    """
    _check_size(k)
    if radius < 0:
        raise ValueError(f"pooling radius must be >= 0, got {radius}")

    def src(r, c):
        rows = range(max(0, r - radius), min(k, r + radius + 1))
        cols = range(max(0, c - radius), min(k, c + radius + 1))
        w = 1.0 / (len(rows) * len(cols))
        for rr in rows:
            for cc in cols:
                yield rr, cc, w

    return _from_pixel_map(k, src)


def pool_rotation(k: int, radius: int, degrees: float) -> np.ndarray:
    """Average pooling of ``radius`` followed by rotation by ``degrees``: R·P."""
    return rotation(k, degrees) @ average_pool(k, radius)


def dft(k: int) -> np.ndarray:
    """The unitary 2-D DFT on k×k kernels as an n×n complex matrix F (n = k²).

    F = F₁ ⊗ F₁ with (F₁)[u, r] = exp(−2πi·u·r/k)/√k, so ``F @ x.reshape(n)`` is
    ``np.fft.fft2(x, norm='ortho').reshape(n)`` and F⁻¹ = Fᴴ.
    """
    _check_size(k)
    u = np.arange(k)
    f1 = np.exp(-2j * np.pi * np.outer(u, u) / k) / math.sqrt(k)
    return np.kron(f1, f1)


def permutation_matrix(perm: np.ndarray) -> np.ndarray:
    """M with (M x)[i] = x[perm[i]]."""
    perm = np.asarray(perm)
    n = perm.shape[0]
    if sorted(perm.tolist()) != list(range(n)):
        raise ValueError(f"not a permutation of 0..{n - 1}: {perm.tolist()}")
    m = np.zeros((n, n))
    m[np.arange(n), perm] = 1.0
    return m


def cyclic_permutation(n: int, order: int, seed: int = 0) -> np.ndarray:
    """A random pixel permutation made of ⌊n/order⌋ disjoint cycles of length ``order``.

    The remaining n mod order pixels are fixed, so the matrix has order exactly
    ``order``. Deterministic for a given seed.
    """
    if order < 1 or order > n:
        raise ValueError(f"order must be in 1..{n}, got {order}")
    rng = np.random.default_rng(seed)
    pixels = rng.permutation(n)
    perm = np.arange(n)
    for start in range(0, n - n % order, order):
        cycle = pixels[start:start + order]
        perm[cycle] = np.roll(cycle, 1)
    return permutation_matrix(perm)


# name -> builder(k); the CLI and configs refer to operators by these names.
def _named():
    table = {
        "identity": lambda k: identity(k),
        "rot90": lambda k: rotation(k, 90),
        "rot180": lambda k: rotation(k, 180),
        "rot270": lambda k: rotation(k, 270),
        "flip-x": lambda k: flip(k, "x"),
        "flip-y": lambda k: flip(k, "y"),
        "transpose": lambda k: transpose(k),
        "anti-transpose": lambda k: transpose(k, anti=True),
        "shift-x": lambda k: shift(k, 1, 0),
        "shift-y": lambda k: shift(k, 0, 1),
    }
    return table


OPERATOR_NAMES = tuple(_named())


def named_operator(name: str, k: int) -> np.ndarray:
    """The operator called ``name`` (one of ``OPERATOR_NAMES``) on k×k kernels."""
    table = _named()
    if name not in table:
        raise ValueError(f"unknown operator {name!r}; expected one of {', '.join(table)}")
    return table[name](k)


# ---------------------------------------------------------------------------
# The matching library: every exact operation the analysis names, by family.

FAMILIES = ("identity", "flip", "transpose", "rot", "shift", "pool", "pool+rot")

_QUARTER_TURNS = (90, 180, 270)
_OTHER_ANGLES = (30, 45, 60, 120, 135, 150, 210, 225, 240, 300, 315, 330)


def family(name: str) -> str:
    """The family word of a library name: ``'(pool2+rot60)^2'`` → ``'pool+rot'``.

    A leading ``'-'`` (the negated operation, see :func:`lgn.analysis.nearest_operation`)
    is ignored.
    """
    name = name.lstrip("-").strip("()")
    if name.startswith("pool") and "+rot" in name:
        return "pool+rot"
    for word in ("identity", "anti-transpose", "transpose", "flip", "rot", "cyclic-shift", "shift", "pool"):
        if name.startswith(word):
            return {"anti-transpose": "transpose", "cyclic-shift": "shift"}.get(word, word)
    raise ValueError(f"{name!r} is not a library operation name")


def _cyclic_offsets(k: int) -> list[int]:
    """Representatives of Z_k in (−k/2, k/2], smallest magnitude first."""
    reps = [d if d <= k // 2 else d - k for d in range(k)]
    return sorted(reps, key=lambda d: (abs(d), d < 0))


def _permutation_candidates(k: int):
    """The library's pixel permutations as (name, dense matrix), simplest first."""
    yield "identity", identity(k)
    yield "flip-x", flip(k, "x")
    yield "flip-y", flip(k, "y")
    yield "transpose", transpose(k)
    yield "anti-transpose", transpose(k, anti=True)
    for deg in _QUARTER_TURNS:
        yield f"rot{deg}", rotation(k, deg)
    offsets = _cyclic_offsets(k)
    pairs = sorted(((dx, dy) for dx in offsets for dy in offsets if (dx, dy) != (0, 0)),
                   key=lambda p: (abs(p[0]) + abs(p[1]), abs(p[1])))
    for dx, dy in pairs:
        yield f"cyclic-shift({dx},{dy})", shift(k, dx, dy, cyclic=True)


def permutation_operations(k: int, order: int, *, exact: bool = False) -> dict[str, np.ndarray]:
    """The library's exact pixel permutations M with M**order = I, identity excluded: name → n×n matrix.

    Flips, transposes, quarter turns and cyclic shifts whose order divides ``order``, so
    that the powers I, M, …, M**(order−1) of each form a group; with ``exact``, only those
    of order exactly ``order``, whose ``order`` powers are all different (on 6×6 kernels
    and order 4: rot90 and rot270). Simplest first, under the names :func:`library` gives
    them; a matrix equal to an earlier one (on tiny kernels, e.g. k = 2: rot180 is
    cyclic-shift(1,1)) is listed once. Empty when none qualifies (``order`` 1, or an odd
    order on a kernel without such shifts).
    """
    _check_size(k)
    check_positive_int(order, "order")
    eye = np.eye(k * k)
    out: dict[str, np.ndarray] = {}
    for name, m in _permutation_candidates(k):
        if np.array_equal(m, eye) or any(np.array_equal(m, seen) for seen in out.values()):
            continue
        if np.array_equal(np.linalg.matrix_power(m, int(order)), eye) and not (
                exact and any(np.array_equal(np.linalg.matrix_power(m, q), eye) for q in range(1, int(order)))):
            out[name] = m
    return out


def _candidates(k: int, powers: tuple[int, ...]):
    """(name, matrix) pairs, simplest first; the order decides which of two near-equal names survives.
    Matrices dense numpy or scipy sparse ``(n, n)``."""
    yield from _permutation_candidates(k)
    span = range(-(k - 1), k)
    pairs = sorted(((dx, dy) for dx in span for dy in span if (dx, dy) != (0, 0)),
                   key=lambda p: (abs(p[0]) + abs(p[1]), abs(p[1]), p[0] < 0, p[1] < 0))
    for dx, dy in pairs:
        yield f"shift({dx},{dy})", shift(k, dx, dy, cyclic=False)
    # from here on, sparse (scipy CSR): at k = 28 some hundred dense 784×784 matrices and their
    # products would dominate the memory and the time of building the library
    from scipy import sparse

    pools = {r: sparse.csr_array(average_pool(k, r)) for r in range(1, 6)}
    rots = {deg: sparse.csr_array(rotation(k, deg)) for deg in _QUARTER_TURNS + _OTHER_ANGLES}
    for r, m in pools.items():
        yield f"pool{r}", m
    smooth = [(f"rot{deg}", rots[deg]) for deg in _OTHER_ANGLES]  # powers not already listed
    smooth += [(f"pool{r}", m) for r, m in pools.items()]
    smooth += [(f"pool{r}+rot{deg}", rots[deg] @ pools[r]) for r in pools for deg in rots]
    for name, m in smooth:
        if not name.startswith("pool") or "+" in name:
            yield name, m
    for name, m in smooth:
        base = f"({name})" if "+" in name else name
        for e in powers:
            power = m
            for _ in range(e - 1):
                power = power @ m
            yield f"{base}^{e}", power


@functools.lru_cache(maxsize=4)
def _library(k: int, powers: tuple[int, ...], max_similarity: float):
    from scipy import sparse

    names, data, columns, counts = [], [], [], []
    for name, m in _candidates(k, powers):  # dense or sparse (n, n)
        row = sparse.coo_array(m).reshape((1, k ** 4)).tocsr()
        row.sum_duplicates()
        if row.nnz and np.linalg.norm(row.data) > 1e-12:
            names.append(name)
            data.append(row.data)
            columns.append(row.indices.astype(np.int32))
            counts.append(row.nnz)
    data, columns = np.concatenate(data), np.concatenate(columns)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    flat = sparse.csr_array((data, columns, indptr), shape=(len(names), k ** 4))  # (candidates, n²)
    del data, columns
    norms = np.sqrt(flat.multiply(flat).sum(axis=1)).ravel()
    # |cosine similarities| (candidates, candidates), sparse: most pairs of operations share no entry
    gram = (flat @ flat.T).tocsr()
    rows_of = np.repeat(np.arange(gram.shape[0]), np.diff(gram.indptr))
    gram.data = np.abs(gram.data) / (norms[rows_of] * norms[gram.indices])
    del rows_of
    kept = np.zeros(len(names), dtype=bool)
    for i in range(len(names)):
        # a simpler name already standing for (nearly) this operation wins
        cols = gram.indices[gram.indptr[i]:gram.indptr[i + 1]]
        vals = gram.data[gram.indptr[i]:gram.indptr[i + 1]]
        kept[i] = not np.any(vals[kept[cols]] > max_similarity)
    kept = np.flatnonzero(kept)
    stack = flat[kept]
    for part in (stack.data, stack.indices, stack.indptr):
        part.setflags(write=False)
    return tuple(names[i] for i in kept), stack


def library_matrix(k: int, *, powers: tuple[int, ...] = (2, 3), max_similarity: float = 0.95):
    """The :func:`library` as ``(names, rows)``: ``rows`` a scipy sparse CSR array ``(E, n²)`` whose row e is
    entry e flattened row-major (``rows[[e]].toarray().reshape(n, n)``).

    The form to use for large kernels: at k = 28 the dense library would be about 4,000 matrices of
    784×784 (20 GB in float64); the sparse one holds their nonzero entries only. Cached per arguments;
    the arrays are read-only.
    """
    _check_size(k)
    return _library(int(k), tuple(powers), float(max_similarity))


def library(k: int, *, powers: tuple[int, ...] = (2, 3), max_similarity: float = 0.95) -> dict[str, np.ndarray]:
    """The exact operations the analysis compares learned generators with, name → n×n matrix.

    Families (see :func:`family`):

    - ``identity``;
    - ``flip-x``, ``flip-y``, ``transpose``, ``anti-transpose``;
    - ``rot{θ}``: rotation by θ ∈ {90, 180, 270} (exact permutations) and by the
      other multiples of 30° and 45° (bilinear, :func:`rotation`);
    - ``cyclic-shift(dx,dy)`` and zero-padded ``shift(dx,dy)``, every offset;
    - ``pool{r}``: average pooling of radius r = 1..5 (:func:`average_pool`);
    - ``pool{r}+rot{θ}``: pooling followed by rotation, R·P;
    - powers ``^2``, ``^3`` of the operations whose powers are not already listed
      (bilinear rotations, pooling, pooling + rotation).

    Candidates are taken simplest first, and one whose cosine similarity with an
    earlier entry exceeds ``max_similarity`` is left out (e.g. on a 6×6 kernel
    ``pool5`` and ``pool5+rot90`` are the same uniform average), so every name left
    is at cosine ≤ ``max_similarity`` from every other and a matcher can tell them
    apart under noise. Dense n×n arrays, one per entry: for large kernels use :func:`library_matrix`
    (sparse), as the analysis does.
    """
    _check_size(k)
    names, stack = _dense_library(int(k), tuple(powers), float(max_similarity))
    return dict(zip(names, stack))


@functools.lru_cache(maxsize=4)
def _dense_library(k: int, powers: tuple[int, ...], max_similarity: float):
    names, rows = _library(k, powers, max_similarity)
    stack = rows.toarray().reshape(len(names), k * k, k * k)  # (entries, n, n)
    stack.setflags(write=False)
    return names, stack
