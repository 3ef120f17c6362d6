"""The paper's "in the wild" probe (docs/method.md §7): the linear map on k×k patches closest to a known operation.

For each operation T (average pooling of radius r, rotation by θ, pooling then
rotation) we fit one n×n matrix A (n = k²) by least squares,

    A = argmin Σ_patches ‖T(x)_patch − A·x_patch‖²,

where T acts on the *image around* the patch, not on the patch alone: each
sample is a window of side k + 2·margin centred on the patch, T is applied to
the whole window (:func:`window_operator`) and the centre k×k is cropped. So
pooling near the patch border sees the pixels outside the patch, and the fitted
A is the best prediction of them from the patch: it depends on the image
statistics, which is the point of the probe. Operations that stay inside the
patch (the 90° rotation about its centre) are fitted exactly: A is the
permutation itself. Every channel of every patch is one sample (the
per-channel action shares one map across channels).

Pooling radius r means the box of side 2r + 1 (:func:`lgn.groups.operators.average_pool`);
rotations are counter-clockwise about the patch centre, bilinear between
pixels (:func:`lgn.groups.operators.rotation`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from lgn.analysis.matching import cosine_similarity, nearest_operation, similarity_matrix
from lgn.analysis.measures import group_errors, structure_indices
from lgn.groups import operators

__all__ = ["PROBE_OPERATIONS", "ProbeFit", "parse_operation", "operation_margin", "window_operator",
           "fit_linear_map", "run_probe", "compare_generators"]

# docs/method.md §7: pooling of radius 3..6, rotation by 30..90°, pooling followed by a 60° rotation
PROBE_OPERATIONS = ("pool3", "pool4", "pool5", "pool6", "rot30", "rot45", "rot60", "rot90", "pool3+rot60")

_NAME = re.compile(r"^(?:pool(?P<r>\d+))?(?P<plus>\+)?(?:rot(?P<deg>-?\d+(?:\.\d+)?))?$")


def parse_operation(name: str) -> tuple[int | None, float | None]:
    """``'pool3'`` → (3, None), ``'rot60'`` → (None, 60.0), ``'pool3+rot60'`` → (3, 60.0)."""
    m = _NAME.match(name)
    if not name or not m or (m["r"] is None and m["deg"] is None) or \
            (m["plus"] is not None) != (m["r"] is not None and m["deg"] is not None):
        raise ValueError(f"unknown probe operation {name!r}; expected 'pool<r>', 'rot<deg>' or "
                         f"'pool<r>+rot<deg>', e.g. {', '.join(PROBE_OPERATIONS)}")
    return (int(m["r"]) if m["r"] else None), (float(m["deg"]) if m["deg"] else None)


def _operator(size: int, name: str) -> np.ndarray:
    """The operation ``name`` on size×size images, as a size²×size² matrix."""
    radius, degrees = parse_operation(name)
    out = np.eye(size * size)
    if radius is not None:
        out = operators.average_pool(size, radius)
    if degrees is not None:
        out = operators.rotation(size, degrees) @ out
    return out


def operation_margin(name: str, kernel_size: int) -> int:
    """Pixels of context around a k×k patch that ``name`` needs to be computed without border effects.

    Pooling of radius r reads r pixels out; a rotation reads out to the circle
    through the patch corners (√2·(k−1)/2 from the centre) plus one pixel for
    the bilinear neighbour; pooling then rotation needs both.
    """
    radius, degrees = parse_operation(name)
    margin = 0
    if degrees is not None and (degrees % 90) != 0:
        margin = int(np.ceil(np.sqrt(2) * (kernel_size - 1) / 2 - (kernel_size - 1) / 2)) + 1
    return margin + (radius or 0)


def window_operator(name: str, kernel_size: int, margin: int) -> np.ndarray:
    """Rows of the operation on a (k + 2·margin)² window that give its centre k×k patch.

    Returns ``(k², (k + 2·margin)²)``: ``M @ window.reshape(-1)`` is the operated
    window's centre patch, flattened row-major.
    """
    k, size = kernel_size, kernel_size + 2 * margin
    rows = ((np.arange(k)[:, None] + margin) * size + np.arange(k)[None, :] + margin).reshape(-1)
    return _operator(size, name)[rows]


def fit_linear_map(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares A with y_i ≈ A·x_i, and the relative error ‖Y − X·Aᵀ‖_F / ‖Y‖_F.

    Args:
        x: ``(samples, n)`` inputs; y: ``(samples, n)`` targets.

    Returns:
        ``(A, relative_error)`` with A of shape ``(n, n)`` (float64).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"expected x and y of the same shape (samples, n), got {x.shape} and {y.shape}")
    if x.shape[0] < x.shape[1]:
        raise ValueError(f"need at least n = {x.shape[1]} samples to fit an n×n map, got {x.shape[0]}")
    at, *_ = np.linalg.lstsq(x, y, rcond=None)  # (n, n) = Aᵀ
    residual = np.linalg.norm(y - x @ at)
    scale = np.linalg.norm(y)
    return at.T, float(residual / scale) if scale > 0 else 0.0


@dataclass
class ProbeFit:
    """One fitted probe map and what it is."""

    name: str               # the operation, e.g. 'pool3+rot60'
    matrix: np.ndarray      # (n, n) the fitted map A
    exact: np.ndarray       # (n, n) the operation on the k×k patch alone (zero outside)
    rel_error: float        # ‖T(x) − A·x‖ / ‖T(x)‖ over the samples
    order: int              # p used for the finite-order error

    def to_dict(self) -> dict:
        """``name``, ``rel_error``, ``exact_similarity`` (cosine with ``exact``), ``nearest_op``,
        ``indices`` and ``group_error`` of the fitted map."""
        k = int(round(self.matrix.shape[0] ** 0.5))
        return {
            "name": self.name,
            "rel_error": self.rel_error,
            "exact_similarity": cosine_similarity(self.matrix, self.exact),
            "nearest_op": nearest_operation(self.matrix, k).to_dict(),
            "indices": structure_indices(self.matrix, k),
            "group_error": group_errors(self.matrix, self.order),
        }


def run_probe(windows: np.ndarray, kernel_size: int, operations=PROBE_OPERATIONS, *,
              order: int = 4) -> list[ProbeFit]:
    """Fit every operation on the centre patches of ``windows``.

    Args:
        windows: ``(N, C, S, S)`` image windows, S = k + 2·margin with margin ≥
            :func:`operation_margin` of every operation (S − k even).
        kernel_size: k.
        operations: names, see :func:`parse_operation`.
        order: p for the finite-order error of the fitted maps.

    Returns:
        One :class:`ProbeFit` per operation, in order.
    """
    windows = np.asarray(windows)
    if windows.ndim != 4 or windows.shape[-1] != windows.shape[-2]:
        raise ValueError(f"windows must have shape (N, C, S, S), got {windows.shape}")
    k, size = kernel_size, windows.shape[-1]
    margin, odd = divmod(size - k, 2)
    if margin < 0 or odd:
        raise ValueError(f"windows of side {size} cannot centre a {k}×{k} patch (need k + 2·margin)")
    need = max(operation_margin(op, k) for op in operations)
    if margin < need:
        raise ValueError(f"operations {', '.join(operations)} need windows of side ≥ {k + 2 * need}, got {size}")
    flat = windows.reshape(-1, size * size).astype(np.float64)  # (N·C, S²) every channel a sample
    centre = ((np.arange(k)[:, None] + margin) * size + np.arange(k)[None, :] + margin).reshape(-1)
    x = flat[:, centre]  # (N·C, k²)
    fits = []
    for name in operations:
        y = flat @ window_operator(name, k, margin).T  # (N·C, k²) the operated centre patch
        a, err = fit_linear_map(x, y)
        fits.append(ProbeFit(name=name, matrix=a, exact=_operator(k, name), rel_error=err, order=order))
    return fits


def compare_generators(analysis_groups, fits: list[ProbeFit]) -> dict:
    """Cosine similarity of every learned generator with every probe map (the paper gives none).

    Args:
        analysis_groups: a :class:`lgn.analysis.Groups`.
        fits: from :func:`run_probe`, on the same kernel size.

    Returns:
        ``{'maps': [names], 'generators': [{layer, group, channel, similarity: {map: cos},
        best: {name, similarity}}]}``: signed cosines, a joint generator compared with
        I_C ⊗ map; ``best`` by |cos|.
    """
    g = analysis_groups
    n = fits[0].matrix.shape[0]
    if g.kernel_size ** 2 != n:
        raise ValueError(f"the run has {g.kernel_size}×{g.kernel_size} kernels, the probe {int(n ** 0.5)}×"
                         f"{int(n ** 0.5)}: rerun the probe with --kernel-size {g.kernel_size}")
    L, K, Cb, m, _ = g.A.shape  # layers, groups, blocks, matrix size
    sims = similarity_matrix(g.A.reshape(-1, m, m), np.stack([f.matrix for f in fits]))  # (L·K·Cb, E)
    names = [f.name for f in fits]
    out = []
    for i, row in enumerate(sims):
        l, rest = divmod(i, K * Cb)
        grp, c = divmod(rest, Cb)
        best = int(np.argmax(np.abs(row)))
        out.append({"layer": l, "group": grp, "channel": -1 if g.action == "joint" else c,
                    "similarity": {name: float(v) for name, v in zip(names, row)},
                    "best": {"name": names[best], "similarity": float(row[best])}})
    return {"maps": names, "generators": out}
