"""Analyse every generator of a model or of a ``groups.npz``: the numbers behind ``lgn analyze``.

The input is a :class:`Groups`: the generators A ``(L, K, C', m, m)`` and
optionally the base filters B ``(L, K, C, k, k)``, read from a run folder
(:func:`groups_from_model`) or from arrays (:func:`load_groups`). For the
per-channel action C' = C and m = k²; for the joint action C' = 1 and m = C·k²,
and each generator is analysed as one block with ``channel = -1`` (its spatial
indices read every channel pair's k²×k² block, and its nearest operation is
I_C ⊗ M, the operation on every channel alike; see :mod:`lgn.analysis.measures`
and :mod:`lgn.analysis.matching`).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lgn.analysis.matching import nearest_operations
from lgn.analysis.measures import GROUP_ERROR_NAMES, INDEX_NAMES, group_errors, structure_indices
from lgn.files import write_json
from lgn.groups import operators
from lgn.settings import check_positive_int

__all__ = ["Groups", "groups_from_model", "load_run_groups", "load_groups", "save_groups", "analyze_groups",
           "write_analysis", "format_table", "DEFAULT_ORDER", "MATCH_THRESHOLD", "ANALYSIS_FILE", "GROUPS_FILE"]

DEFAULT_ORDER = 4  # p when nothing says otherwise: the paper's group_size
MATCH_THRESHOLD = 0.5  # a nearest operation below this cosine is not counted as its family in the summary
ANALYSIS_FILE = "analysis.json"
GROUPS_FILE = "groups.npz"


@dataclass
class Groups:
    """Generators (and base filters) to analyse; everything else is derived from their shapes."""

    A: np.ndarray               # (L, K, C', m, m) generators
    B: np.ndarray | None        # (L, K, C, k, k) base filters, or None
    kernel_size: int            # k
    channels: int               # C, input channels of the filters
    order: int                  # p, the number of powers in each orbit
    source: str = ""            # where the arrays came from, for the record

    def __post_init__(self) -> None:
        a = self.A
        if a.ndim != 5 or a.shape[-1] != a.shape[-2]:
            raise ValueError(f"generators A must have shape (L, K, C', m, m), got {tuple(a.shape)}")
        k, c = self.kernel_size, self.channels
        if a.shape[-1] != k * k * (c if a.shape[2] == 1 else 1) or a.shape[2] not in (1, c):
            raise ValueError(f"generators of shape {tuple(a.shape)} do not act on {c}-channel {k}×{k} filters: "
                             f"expected (L, K, {c}, {k * k}, {k * k}) or (L, K, 1, {c * k * k}, {c * k * k})")
        if self.B is not None and tuple(self.B.shape) != (*a.shape[:2], c, k, k):
            raise ValueError(f"base filters B must have shape {(*a.shape[:2], c, k, k)}, got {tuple(self.B.shape)}")
        check_positive_int(self.order, "order")

    @property
    def action(self) -> str:
        """``'channel'`` (one k²×k² block per channel) or ``'joint'`` (one (C·k²)² block)."""
        return "joint" if self.A.shape[-1] != self.kernel_size ** 2 else "channel"

    @property
    def n_layers(self) -> int:
        return self.A.shape[0]

    @property
    def n_groups(self) -> int:
        return self.A.shape[1]


def groups_from_model(model, source: str = "") -> Groups:
    """The generators and base filters of an :class:`lgn.LGN` (float64 numpy)."""
    a = model.generators()
    if a is None:
        raise ValueError("this model has independent filters (generator='independent'): there is no group to analyse")
    c = model.config
    base = np.stack([bank.base.detach().cpu().double().numpy() for bank in model.encoder.banks])
    return Groups(A=a.detach().cpu().double().numpy(), B=base, kernel_size=c.kernel_size,
                  channels=c.in_channels, order=c.group_size, source=source)


def load_run_groups(run_dir: str | os.PathLike) -> Groups:
    """The generators and base filters of the model saved in a run folder (``model.json`` + weights)."""
    from lgn.models import load_model

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no such run folder: {run_dir}")
    return groups_from_model(load_model(run_dir), source=str(run_dir))


def load_groups(path: str | os.PathLike, *, order: int | None = None, kernel_size: int | None = None) -> Groups:
    """Read ``A`` ``(L, K, C', m, m)`` and optional ``B`` ``(L, K, C, k, k)`` from an ``.npz``.

    The kernel size and channel count come from B when present; otherwise from
    ``kernel_size`` (default √m, the per-channel action). ``order`` defaults to an
    ``order`` array in the file, else :data:`DEFAULT_ORDER`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "A" not in data.files:
                raise ValueError(f"no array 'A' (found: {', '.join(data.files) or 'nothing'})")
            a = np.asarray(data["A"], dtype=np.float64)
            b = np.asarray(data["B"], dtype=np.float64) if "B" in data.files else None
            if order is None and "order" in data.files:
                order = int(data["order"])
    except Exception as e:  # numpy raises many kinds here (object arrays, bad zips, odd dtypes): all mean one thing
        raise ValueError(f"{path} is not a readable groups .npz file: {e}") from None
    if a.ndim != 5 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{path}: A must have shape (L, K, C, n, n), got {a.shape}")
    if not np.isfinite(a).all() or (b is not None and not np.isfinite(b).all()):
        raise ValueError(f"{path}: A or B holds NaN or Inf")
    m = a.shape[-1]
    if b is not None:
        if b.ndim != 5 or b.shape[-1] != b.shape[-2]:
            raise ValueError(f"{path}: B must have shape (L, K, C, k, k), got {b.shape}")
        k, channels = b.shape[-1], b.shape[2]
        if kernel_size is not None and kernel_size != k:
            raise ValueError(f"kernel_size={kernel_size} disagrees with B's {k}×{k} filters")
    else:
        k = kernel_size if kernel_size is not None else math.isqrt(m)
        if k < 1 or m % (k * k):
            raise ValueError(f"cannot read {m}×{m} generators as acting on {k}×{k} kernels; "
                             "pass the kernel size or include B")
        channels = a.shape[2] if m == k * k else m // (k * k)
    return Groups(A=a, B=b, kernel_size=int(k), channels=int(channels),
                  order=DEFAULT_ORDER if order is None else int(order), source=str(path))


def save_groups(groups: Groups, path: str | os.PathLike) -> Path:
    """Write ``A``, ``B`` (when known) and ``order`` to ``path`` (.npz), readable by :func:`load_groups`."""
    path = Path(path)
    arrays = {"A": groups.A, "order": np.array(groups.order)}
    if groups.B is not None:
        arrays["B"] = groups.B
    np.savez(path, **arrays)
    return path


def _entries(groups: Groups):
    """(layer, group, channel, matrix) for every generator; channel −1 for a joint one."""
    L, K, Cb = groups.A.shape[:3]  # layers, groups, action blocks
    joint = groups.action == "joint"
    for l in range(L):
        for g in range(K):
            for c in range(Cb):
                yield l, g, -1 if joint else c, groups.A[l, g, c]


def analyze_groups(groups: Groups) -> dict:
    """All measures of every generator, as the JSON-ready dict of ``analysis.json``.

    Keys: ``source``, ``kernel_size``, ``channels``, ``action``, ``order``,
    ``n_layers``, ``n_groups``, ``library`` (size and the cosine below which its
    entries are kept apart), ``generators`` (one entry per generator: ``layer``,
    ``group``, ``channel``, ``nearest_op {name, similarity}``, ``indices`` and
    ``group_error``, see :mod:`lgn.analysis.measures`) and ``summary``: the
    family counts of the nearest operations (a match below
    :data:`MATCH_THRESHOLD` counts as ``'none'``), the mean similarity, the mean
    of every index and the median of every group error (a few singular
    generators would swamp a mean condition number).
    """
    k = groups.kernel_size
    entries = list(_entries(groups))
    stack = np.stack([m for *_, m in entries])  # (G, m, m)
    lib, _ = operators.library_matrix(k)  # names; the matcher uses the sparse matrices
    matches = nearest_operations(stack, k)
    out = []
    for (l, g, c, mat), (match,) in zip(entries, matches):
        out.append({
            "layer": l, "group": g, "channel": c,
            "nearest_op": match.to_dict(),
            "indices": structure_indices(mat, k),
            "group_error": group_errors(mat, groups.order),
        })
    families = Counter(operators.family(e["nearest_op"]["name"]) if e["nearest_op"]["similarity"] >= MATCH_THRESHOLD
                       else "none" for e in out)

    def mean(section, names):
        return {n: float(np.mean([e[section][n] for e in out])) for n in names}

    def median(section, names):
        return {n: float(np.median([e[section][n] for e in out])) for n in names}

    return {
        "source": groups.source,
        "kernel_size": k,
        "channels": groups.channels,
        "action": groups.action,
        "order": groups.order,
        "n_layers": groups.n_layers,
        "n_groups": groups.n_groups,
        "library": {"size": len(lib), "max_similarity": 0.95},
        "generators": out,
        "summary": {
            "families": dict(families.most_common()),
            "mean_similarity": float(np.mean([e["nearest_op"]["similarity"] for e in out])),
            "indices": mean("indices", INDEX_NAMES),
            "group_error": median("group_error", GROUP_ERROR_NAMES),
        },
    }


def write_analysis(groups: Groups, out_dir: str | os.PathLike, *, figures: bool = True,
                   save_arrays: bool = False) -> dict:
    """Analyse ``groups`` and write ``analysis.json`` (and the figures, and ``groups.npz``) into ``out_dir``.

    Returns the analysis dict; its ``figures`` entry maps figure names to file
    names inside ``out_dir``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    analysis = analyze_groups(groups)
    if save_arrays:
        save_groups(groups, out_dir / GROUPS_FILE)
    analysis["figures"] = {}
    if figures:
        from lgn.analysis.figures import analysis_figures

        analysis["figures"] = analysis_figures(groups, out_dir)
    write_json(analysis, out_dir / ANALYSIS_FILE)
    return analysis


_SHORT = {"skew": "skew", "symmetric": "sym", "toeplitz": "toepl", "circulant": "circ",
          "dft_diagonal": "dftD", "dft_top": "dftT", "block": "block",
          "min_singular": "σmin", "cond": "cond", "finite_order": "order", "orthogonality": "orth"}


_LEGEND = [f"{name:<12} {text}" for name, text in [
    ("sim", "|cosine| similarity of A with the nearest known operation ('-': A ≈ −op)"),
    ("skew, sym", "share of A in its skew-symmetric and symmetric parts (skew² + sym² = 1)"),
    ("toepl, circ", "share of A's energy in Toeplitz (2-D shift, convolution) and circulant (cyclic) structure"),
    ("dftD", "share of energy on the diagonal of F·A·F⁻¹, F the 2-D DFT (equals circ)"),
    ("dftT", "share of energy in the k² largest entries of F·A·F⁻¹ (1 for shifts, 90° rotations, flips)"),
    ("block", "energy in the k strongest k×k blocks (0: spread evenly, 1: concentrated)"),
    ("σmin, cond", "smallest singular value of A, and σmax/σmin"),
    ("order", "min over c of ‖(cA)^p − I‖/‖I‖: 0 for a finite group of order dividing p"),
    ("orth", "min over c of ‖(cA)ᵀ(cA) − I‖/‖I‖: 0 for a multiple of an orthogonal matrix"),
]] + ["Every index and error is scale-invariant; the indices lie in [0, 1]."]


def format_table(analysis: dict) -> str:
    """A plain-text table of ``analysis`` (as returned by :func:`analyze_groups`), one line per generator."""
    gens = analysis["generators"]
    width = max([len("nearest op")] + [len(e["nearest_op"]["name"]) for e in gens])
    head = (f"{'layer':>5} {'group':>5} {'ch':>3}  {'nearest op':<{width}} {'sim':>5} | "
            + " ".join(f"{_SHORT[n]:>5}" for n in INDEX_NAMES) + " | "
            + " ".join(f"{_SHORT[n]:>6}" for n in GROUP_ERROR_NAMES))
    lines = [head, "-" * len(head)]
    for e in gens:
        ge = e["group_error"]
        cond = ge["cond"]
        cond = "inf" if cond is None or not math.isfinite(cond) else (f"{cond:6.1f}" if cond < 1e4 else f"{cond:6.0e}")
        lines.append(
            f"{e['layer']:>5} {e['group']:>5} {e['channel']:>3}  {e['nearest_op']['name']:<{width}} "
            f"{e['nearest_op']['similarity']:5.2f} | "
            + " ".join(f"{e['indices'][n]:5.2f}" for n in INDEX_NAMES) + " | "
            + f"{ge['min_singular']:6.3f} {cond:>6} {ge['finite_order']:6.3f} {ge['orthogonality']:6.3f}"
        )
    s = analysis["summary"]
    fams = ", ".join(f"{f} {n}" for f, n in s["families"].items())
    lines.append("-" * len(head))
    lines.append(f"{len(gens)} generators ({analysis['action']} action, k={analysis['kernel_size']}, "
                 f"p={analysis['order']}); nearest families (similarity ≥ {MATCH_THRESHOLD}): {fams}; "
                 f"mean similarity {s['mean_similarity']:.2f}")
    return "\n".join(lines + [""] + _LEGEND)
