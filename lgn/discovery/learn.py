"""Discovery by training alone: a generator learned by gradient descent from random starts.

``lgn discover --method learn``. No clustering and no Gram-matrix search: the
generator starts random and only gradient steps on losses built from the
training data move it. What the data tell about a symmetry T of each class's
distribution, in two losses:

- **Symmetry (second moments).** If T maps the images of class c onto images of
  class c, the responses of a filter f and of T·f have the same second moment
  over the class, for every f: fᵀ Tᵀ S_c T f = fᵀ S_c f with S_c = E[x xᵀ | c].
  For orthogonal T that is T S_c = S_c T, so the loss is the commutator
  Σ_c ‖A S_c − S_c A‖² / ‖S_c‖², averaged over classes. It is quadratic in A,
  cheap, and blind to which image goes where.
- **Matching (nearest neighbours).** A moved training image should land on
  another training image of its class: mean over a batch of
  min_x' ‖A x − x'‖² / ‖x‖², x' over a reference sample of the same class.

The generator is an exact cyclic group (:class:`lgn.groups.CyclicGenerator`,
A = Q R Qᵀ, A**p = I, every p-th root of unity equally often in R), so the
identity, which satisfies both losses trivially, is out of reach. The losses
are not convex in Q, so the recipe makes ``restarts`` random starts, trains
each on the symmetry loss, then on symmetry + matching, keeps the start with
the lowest matching loss over training images (a criterion computed from the
training data), and trains it further. The LGN then trains on the task with that
generator fixed and its base filters starting at training images, as the
estimate recipe does with its cluster centres.

docs/discovery.md has the measured numbers, including where this fails.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from lgn.discovery.estimate import GroupEstimate
from lgn.groups.generators import CyclicGenerator

NULL_DRAWS = 19  # random generators the verdict compares the learned one with (p-values down to 0.05)

__all__ = ["LearnConfig", "class_moments", "symmetry_loss", "matching_loss", "learn_generator"]


@dataclass
class LearnConfig:
    restarts: int = 8           # random starts of the generator
    warm_steps: int = 300       # Adam steps on the symmetry loss alone, per start
    match_steps: int = 300      # Adam steps on symmetry + matching, per start
    final_steps: int = 1000     # further steps on the chosen start
    lr: float = 0.02            # Adam learning rate of the generator's skew parameter
    match_weight: float = 0.1   # weight of the matching loss against the symmetry loss
    init_scale: float = 3.0     # scale of the random skew-symmetric start (larger: Q further from I)
    batch_size: int = 256       # images moved per matching step
    reference: int = 2048       # training images the moved ones are matched against, per step
    points: int = 512           # training images the verdict and the start selection look at

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name in ("lr", "match_weight", "init_scale"):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 \
                        or not math.isfinite(value):
                    raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
            elif not isinstance(value, int) or isinstance(value, bool) or value < (0 if "steps" in name else 1):
                raise ValueError(f"{name} must be a {'non-negative' if 'steps' in name else 'positive'} "
                                 f"integer, got {value!r}")


def class_moments(x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Second moments S_c = E[x xᵀ | c] of images ``x`` ``(N, n)``, each scaled to unit Frobenius norm:
    ``(classes, n, n)``. Classes with no image are left out."""
    moments = []
    for c in torch.unique(labels):
        xc = x[labels == c]  # (N_c, n)
        s = xc.T @ xc / len(xc)  # (n, n)
        moments.append(s / s.norm().clamp_min(1e-300))
    return torch.stack(moments)


def symmetry_loss(a: torch.Tensor, moments: torch.Tensor) -> torch.Tensor:
    """Mean over classes of ‖A S_c − S_c A‖²: 0 when A commutes with every class's second moment."""
    return ((a @ moments - moments @ a) ** 2).sum(dim=(1, 2)).mean()


def _nearest(a: torch.Tensor, x: torch.Tensor, y: torch.Tensor, ref: torch.Tensor, y_ref: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """For each A·x_i ``(m, n)``: the squared distance to its nearest reference image of the same class,
    over ‖x_i‖², and that image's index."""
    moved = x @ a.T  # (m, n)
    d = torch.cdist(moved, ref) ** 2  # (m, R)
    d = d.masked_fill(y[:, None] != y_ref[None, :], float("inf"))
    best, idx = d.min(dim=1)
    return best / (x ** 2).sum(1).clamp_min(1e-300), idx


def matching_loss(a: torch.Tensor, x: torch.Tensor, y: torch.Tensor, ref: torch.Tensor,
                  y_ref: torch.Tensor) -> torch.Tensor:
    """Mean over ``x`` ``(m, n)`` of min over same-class ``ref`` ``(R, n)`` of ‖A x − x'‖² / ‖x‖²."""
    return _nearest(a, x, y, ref, y_ref)[0].mean()


def _steps(gen: CyclicGenerator, moments, x, y, steps: int, config: LearnConfig, match: bool,
           g: torch.Generator) -> None:
    opt = torch.optim.Adam(gen.parameters(), lr=config.lr)
    for _ in range(steps):
        a = gen.matrix()[0, 0]  # (n, n)
        loss = symmetry_loss(a, moments)
        if match:
            i = torch.randint(0, len(x), (config.batch_size,), generator=g)
            r = torch.randint(0, len(x), (config.reference,), generator=g)
            loss = loss + config.match_weight * matching_loss(a, x[i], y[i], x[r], y[r])
        opt.zero_grad()
        loss.backward()
        opt.step()


def _search(x: torch.Tensor, labels: torch.Tensor, order: int, points: torch.Tensor, config: LearnConfig,
            g: torch.Generator, progress) -> tuple[GroupEstimate, list[dict]]:
    """The starts, the choice among them, the final steps and the null; torch's generator already seeded."""
    n = x.shape[1]
    moments = class_moments(x, labels)
    starts, records = [], []
    for r in range(config.restarts):
        gen = CyclicGenerator(1, 1, n, order, init_scale=config.init_scale).double()
        _steps(gen, moments, x, labels, config.warm_steps, config, False, g)
        _steps(gen, moments, x, labels, config.match_steps, config, True, g)
        with torch.no_grad():
            a = gen.matrix()[0, 0]
            records.append({"start": r, "symmetry": float(symmetry_loss(a, moments)),
                            "matching": float(matching_loss(a, x[points], labels[points], x, labels))})
        starts.append(gen)
        if progress is not None:
            progress(f"start {r + 1}/{config.restarts}: matching {records[-1]['matching']:.3f}")
    best = min(range(len(records)), key=lambda r: records[r]["matching"])
    records[best]["chosen"] = True
    gen = starts[best]
    _steps(gen, moments, x, labels, config.final_steps, config, True, g)
    px, py = x[points], labels[points]

    def residual(a: torch.Tensor) -> float:  # against every training image of the class
        return float(_nearest(a, px, py, x, labels)[0].mean().sqrt())

    with torch.no_grad():
        a = gen.matrix()[0, 0]
        nearest = _nearest(a, px, py, px, py)[1]  # the cycle map among the points themselves
        # the null: the same residual for random generators of the same order (no symmetry learned)
        null = np.array([residual(CyclicGenerator(1, 1, n, order, init_scale=config.init_scale).double()
                                  .matrix()[0, 0]) for _ in range(NULL_DRAWS)])
        fit = residual(a)
    pools = [np.flatnonzero(py.numpy() == c) for c in np.unique(py.numpy())]
    return GroupEstimate(
        generator=a.numpy(), centres=px.numpy(), clusters=pools, cycles=nearest.numpy(),
        gram_residual=float("nan"), fit_residual=fit, order=order, null=null,
    ), records


def learn_generator(x: torch.Tensor, labels: torch.Tensor, order: int, config: LearnConfig | None = None, *,
                    seed: int = 0, progress=None) -> tuple[GroupEstimate, list[dict]]:
    """Learn a generator of a cyclic group of ``order`` under which the data ``x`` ``(N, n)`` are symmetric.

    ``labels`` ``(N,)`` int64. Returns the learned group as a :class:`GroupEstimate`
    (its ``centres`` are ``config.points`` random training images, its ``clusters``
    their indices by class, ``cycles`` maps each to the same-class point nearest to
    its image under A, ``fit_residual`` is the root of the mean of
    ‖A x − x'‖²/‖x‖² with x' the nearest same-class training image, ``null`` the
    same residual for 19 random generators of the same order; no Gram residual:
    NaN) and one record per start (``symmetry``, ``matching``, ``chosen``).
    ``progress(text)`` is called after each start. Deterministic for a ``seed``;
    torch's global random state is left as the caller had it.
    """
    if not isinstance(order, (int, np.integer)) or order < 2:
        raise ValueError(f"the group size must be an integer >= 2, got {order!r}")
    if labels is None:
        raise ValueError("--method learn needs labelled data: its losses compare images of one class")
    config = config or LearnConfig()
    x = x.reshape(len(x), -1).double()  # (N, n)
    labels = labels.reshape(-1)
    g = torch.Generator().manual_seed(seed)
    points = torch.randperm(len(x), generator=g)[:config.points]
    with torch.random.fork_rng(devices=[]):  # the starts draw from torch's generator; the caller's is restored
        torch.manual_seed(seed)
        return _search(x, labels, int(order), points, config, g, progress)
