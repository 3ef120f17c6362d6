"""Discovery by training: an exact cyclic generator learned by gradient descent on a distribution loss.

``lgn discover --method learn``. No clustering and no Gram-matrix search: the generator
starts random (or, with ``start="estimate"``, at the estimator's guess) and only
gradient steps on a loss built from the training data move it.

**The signal.** If T is a symmetry of each class's distribution, the sample {x} of a
class and the moved sample {A^i·x} come from one distribution exactly when A acts like
T. The loss compares the two samples as distributions (:mod:`lgn.discovery.losses`):
the kernel two-sample statistic MMD² with a Gaussian kernel (``loss="mmd"``) or the
debiased entropic optimal-transport cost (``loss="sinkhorn"``), mean over classes and
over i = 1 … p − 1. Without labels the whole training set is one pool. Second moments
alone cannot tell T from a wrong phase on its isotypic blocks (docs/discovery.md); a
whole-distribution loss can.

**The search.**

- The generator is exact, A = Q·R·Qᵀ with A^p = I for every parameter, the identity out
  of reach, and Q from a Cayley map around an anchor (:class:`lgn.groups.cayley.CayleyCyclic`).
  ``restarts`` starts train at once, each from a Haar-random Q.
- The kernel bandwidth (OT: the entropic ε, its square) starts at ``anneal`` × the median
  distance between images of a class and falls linearly to 1× over the first
  ``anneal_until`` of the steps: wide kernels see coarse structure and smooth the loss,
  narrow ones pin the map.
- Adam on the Cayley parameter, learning rate ``lr`` × √(36 / D): one step turns Q by
  about the same angle whatever the image size D. Every ``reanchor`` steps the rotation
  reached is folded into the anchor and the parameter reset to 0.
- Each step draws two disjoint samples of ``sample`` images per class (pooled: 4 × that).
- The start with the lowest loss at the median bandwidth on fixed samples of the
  training data (never the test data) is kept, passing over starts that barely move the
  data (mean cos(A·x, x) ≥ ``still``): a map that acts as the identity on the directions the
  data use keeps any distribution.
- ``third_weight`` > 0 adds, once the bandwidth is at its floor, the centred third-moment term
  (:func:`lgn.discovery.losses.third_moment_loss`) along random directions.
- ``start="coarse"`` (square images of even side k): the random starts train first on
  images averaged over 2×2 blocks (D/4 pixels: cheaper, and fewer directions to search);
  the best is lifted, acting on the block-constant images as learned and as a random
  group of R's spectrum on their orthogonal complement, and trains on the full images as
  one start. A map that commutes with 2×2 averaging (a rotation by 90°, a shift by an even
  number of pixels) survives the lift; a scrambling of pixels does not.
- ``refine`` > 0: the ``refine_keep`` starts with the lowest losses at the pick train
  ``refine`` steps more, the bandwidth falling from 1× to ``refine_scale`` × the median
  (where the gap between the true map and the maps the first stage stops at is eight
  times larger on real digits, docs/discovery.md); the lowest loss at that width is kept.
- ``start="episodic"`` (labelled data): one more start, at the generator the few-shot search of
  :mod:`lgn.discovery.episodic` learns on the same images, trains beside the random starts; the pick
  chooses among them all. The two signals fail on different sets (docs/discovery.md).
- ``shells`` > 0 (unlabelled data): the losses compare within equal-count shells of the image norm
  (:func:`norm_shells`) instead of one pool: an orthogonal map keeps every norm, so each shell is
  symmetric on its own, and a narrower distribution pins the map better than the pool does.
- ``held_out`` of each class (or of the pool) never enters the search.

The verdict's evidence is measured on those held-out images (:func:`as_estimate`): the
distribution loss of A against that of random generators of the same order, and a
two-sample re-split test of whether A·x can be told from x at all.
docs/discovery.md has the measured numbers, including where this fails.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Annotated

import numpy as np
import torch

from lgn.discovery.episodic import EpisodicConfig, search_episodic
from lgn.discovery.estimate import GroupEstimate
from lgn.discovery.losses import median_distance, third_moment_loss
from lgn.discovery.search import REFERENCE_DIM, as_estimate, generator_step, symmetry_distance, within_terms
from lgn.discovery.verdict import STILL
from lgn.groups.cayley import CayleyCyclic, haar_orthogonal
from lgn.groups.generators import cyclic_rotation_block
from lgn.settings import limit, section

LOSSES = ("mmd", "sinkhorn")
STARTS = ("random", "estimate", "coarse", "episodic")

__all__ = ["LearnConfig", "LOSSES", "STARTS", "basis_for", "block_average_basis", "lift_basis", "learn_generator",
           "norm_shells"]


@section("learn")
class LearnConfig:
    loss: Annotated[str, limit(f"one of {', '.join(LOSSES)}", pattern=f"^({'|'.join(LOSSES)})$")] = "mmd"
    # ^ distribution loss: mmd or sinkhorn
    restarts: Annotated[int, limit("at least 1", ge=1)] = 8  # random starts, trained together
    steps: Annotated[int, limit("at least 0", ge=0)] = 500  # Adam steps
    lr: Annotated[float, limit("non-negative", ge=0)] = 0.03  # Adam learning rate at D = 36 pixels, scaled by √(36/D)
    anneal: Annotated[float, limit("at least 1", ge=1)] = 4.0
    # ^ bandwidth at the first step, in multiples of the median distance
    anneal_until: Annotated[float, limit("in [0, 1]", ge=0, le=1)] = 0.7
    # ^ fraction of the steps over which the bandwidth falls to 1×
    sample: Annotated[int, limit("at least 2", ge=2)] = 128
    # ^ images per class and side in a step (pooled, unlabelled: 4× this)
    reanchor: Annotated[int, limit("at least 0", ge=0)] = 25  # steps between re-anchorings of the Cayley map (0: never)
    third_weight: Annotated[float, limit("non-negative", ge=0)] = 0.0
    # ^ weight of the third-moment term once the bandwidth is at 1× (0: none)
    start: Annotated[str, limit(f"one of {', '.join(STARTS)}", pattern=f"^({'|'.join(STARTS)})$")] = "random"
    # ^ random: Haar-random bases; estimate: the estimator's generator (one start); coarse: random starts on
    #   2×2-averaged images, the best lifted (one start); episodic: the random starts plus one at
    #   --method episodic's generator
    refine: Annotated[int, limit("at least 0", ge=0)] = 0
    # ^ Adam steps continuing the best ``refine_keep`` starts after the pick (0: none)
    refine_scale: Annotated[float, limit("in (0, 1]", gt=0, le=1)] = 0.5
    # ^ the refine stage's bandwidth floor, in multiples of the median distance
    refine_keep: Annotated[int, limit("at least 1", ge=1)] = 1
    # ^ starts the refine stage continues (the lowest losses at the pick)
    still: Annotated[float, limit("in (0, 1]", gt=0, le=1)] = STILL
    # ^ the pick passes over starts whose mean cos(A·x, x) is at or above this: they barely move the data, and the
    #   verdict refuses them (1: it passes over none)
    shells: Annotated[int, limit("at least 0", ge=0)] = 0
    # ^ unlabelled data: compare within this many equal-count shells of the image norm ‖x‖, which every
    #   orthogonal map keeps, instead of one pool (0)
    held_out: Annotated[float, limit("in [0, 1)", ge=0, lt=1)] = 0.2
    # ^ fraction of each class (unlabelled: of all images) kept out of the search for the verdict
    points: Annotated[int, limit("at least 1", ge=1)] = 512  # held-out images the verdict looks at (its centres)

    def to_dict(self) -> dict:
        return asdict(self)


def norm_shells(x: torch.Tensor, count: int) -> torch.Tensor:
    """``(N,)`` int64: the shell of each image of ``x`` ``(N, n)`` among ``count`` equal-count shells of the norm
    ‖x‖. An orthogonal map keeps every norm, so a distribution symmetric under it is symmetric within each
    shell: pseudo-classes for unlabelled data that no labels and no knowledge of the map went into."""
    norms = x.norm(dim=1)
    edges = torch.quantile(norms, torch.linspace(0, 1, count + 1, dtype=norms.dtype)[1:-1])
    return torch.bucketize(norms, edges)


def _pools(labels: torch.Tensor | None, n: int) -> list[torch.Tensor]:
    """The index sets compared: one per class, or all images when unlabelled."""
    if labels is None:
        return [torch.arange(n)]
    return [torch.nonzero(labels == c).flatten() for c in torch.unique(labels)]


def _draw(x: torch.Tensor, pools: list[torch.Tensor], size: int, g: torch.Generator
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint random samples of each pool: ``(x1, x2)``, each ``(pools, m, n)`` with m = ``size`` or
    half the smallest pool."""
    half = min(size, min(len(p) for p in pools) // 2)
    picks = [p[torch.randperm(len(p), generator=g)[:2 * half]] for p in pools]
    both = x[torch.stack(picks)]  # (pools, 2m, n)
    return both[:, :half], both[:, half:]


def basis_for(a: np.ndarray, order: int, data: np.ndarray | None = None) -> np.ndarray:
    """An orthogonal Q ``(D, D)`` with Q·R·Qᵀ as close to the orthogonal ``a`` (with a**order = I) as R's
    spectrum allows: a's real Schur blocks of each angle fill R's blocks of that angle, the rest fill the
    remaining slots. Exact when a has R's spectrum.

    Where a has more blocks of an angle than R, those left over act differently in Q·R·Qᵀ. With ``data``
    ``(N, D)`` the blocks the data use most are matched first (within the ±1 eigenspaces, after turning
    their basis to the data's principal directions), so that the change falls where the data are weakest.
    """
    from scipy.linalg import schur

    dim = a.shape[0]
    d, z = schur(a, output="real")
    if data is not None:
        diag = np.diag(d)
        single = np.ones(dim, dtype=bool)
        single[:-1] &= np.abs(np.diag(d, -1)) <= 1e-9
        single[1:] &= np.abs(np.diag(d, -1)) <= 1e-9
        for sign in (1.0, -1.0):  # an eigenspace of ±1: its Schur basis is arbitrary, turn it to the data
            cols = np.flatnonzero(single & (np.sign(diag) == sign))
            if len(cols) > 1:
                proj = data @ z[:, cols]  # (N, k)
                w, v = np.linalg.eigh(proj.T @ proj)
                z[:, cols] = z[:, cols] @ v[:, np.argsort(-w)]
    blocks = []  # (angle index in 0..order−1 folded to 0..order//2, columns)
    i = 0
    while i < dim:
        if i + 1 < dim and abs(d[i + 1, i]) > 1e-9:
            cols = [i, i + 1] if d[i + 1, i] > 0 else [i + 1, i]  # angle in (0, π): sin > 0 below the diagonal
            theta = math.atan2(abs(d[i + 1, i] - d[i, i + 1]) / 2, (d[i, i] + d[i + 1, i + 1]) / 2)
            blocks.append((round(theta * order / (2 * math.pi)), cols))
            i += 2
        else:
            blocks.append((0 if d[i, i] > 0 else order // 2, [i]))
            i += 1
    r = cyclic_rotation_block(dim, order)
    slots = []  # R's blocks: (angle index, rows)
    i = 0
    while i < dim:
        if i + 1 < dim and abs(r[i + 1, i]) > 1e-12:
            slots.append((round(math.atan2(r[i + 1, i], r[i, i]) * order / (2 * math.pi)), [i, i + 1]))
            i += 2
        else:
            slots.append((0 if r[i, i] > 0 else order // 2, [i]))
            i += 1
    if data is not None:  # the most used blocks first
        blocks.sort(key=lambda block: -float(np.sum((data @ z[:, block[1]]) ** 2)))
    q = np.zeros((dim, dim))
    free_slots = list(range(len(slots)))
    leftover = []
    for angle, cols in blocks:
        match = next((s for s in free_slots if slots[s][0] == angle and len(slots[s][1]) == len(cols)), None)
        if match is None:
            leftover.extend(cols)
            continue
        free_slots.remove(match)
        q[:, slots[match][1]] = z[:, cols]
    rows = [row for s in free_slots for row in slots[s][1]]
    q[:, rows] = z[:, leftover]
    return q


def block_average_basis(k: int) -> torch.Tensor:
    """``(k², (k/2)²)`` orthonormal columns spanning the k×k images constant on 2×2 blocks (row-major pixels);
    ``x @ U`` is the 2×2-averaged image, times 2."""
    if k % 2:
        raise ValueError(f"start='coarse' needs square images of even side, got side {k}")
    h = k // 2
    u = torch.zeros(k, k, h, h, dtype=torch.float64)
    for r in range(k):
        for c in range(k):
            u[r, c, r // 2, c // 2] = 0.5
    return u.reshape(k * k, h * h)


def _random_starts(n: int, order: int, config: LearnConfig, g: torch.Generator) -> CayleyCyclic:
    """``config.restarts`` exact cyclic generators on R^n, each anchored at a Haar-random rotation."""
    return CayleyCyclic(n, order, config.restarts, anchor=haar_orthogonal(config.restarts, n, g)).float()


def _pick_scores(gen: CayleyCyclic, x: torch.Tensor, pools, medians: torch.Tensor, labels, config: LearnConfig,
                 g: torch.Generator, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The pick's evidence on fixed halves of each pool (training data only): each start's loss at ``scale`` × the
    median bandwidth, and its stillness, the mean cos(A·x, x) over the images; ``(starts,)`` each."""
    size = config.sample if labels is not None else 4 * config.sample
    x1, x2 = _draw(x, pools, 2 * size, g)
    h = scale * medians
    with torch.no_grad():
        loss = symmetry_distance(gen, x1, x2, h, config.loss, within_terms(x1, x2, h, config.loss))
        u = x1.reshape(-1, x1.shape[-1]) @ gen.basis()  # (S, pools·m, D): coordinates Qᵀx
        still = ((gen.rotate(u, 1) * u).sum(-1) / (u * u).sum(-1).clamp_min(1e-12)).mean(-1)
    return loss, still


def _ranking(loss: torch.Tensor, still: torch.Tensor, config: LearnConfig) -> torch.Tensor:
    """The losses the pick ranks, ``(starts,)``: a start whose stillness is at or above ``config.still`` barely
    moves the data (a map acting as the identity on the directions the data use keeps any distribution, and
    the verdict refuses it) and ranks last, unless every start does."""
    moving = still < config.still
    return torch.where(moving, loss, torch.inf) if bool(moving.any()) else loss


def _coarse_start(x: torch.Tensor, labels, pools, order: int, config: LearnConfig, g: torch.Generator,
                  progress) -> CayleyCyclic:
    """Random starts on 2×2-averaged images; the best lifted to one full-size start (see the module docstring)."""
    n = x.shape[1]
    k = math.isqrt(n)
    if k * k != n:
        raise ValueError(f"start='coarse' needs square images, got {n} pixels")
    u = block_average_basis(k)  # (n, m)
    m = u.shape[1]
    if m % order:
        raise ValueError(f"start='coarse' needs (k/2)² divisible by the order {order}, got {m}")
    xc = x @ u.to(x.dtype)  # (N, m)
    medians = torch.tensor([median_distance(xc[pool[torch.randperm(len(pool), generator=g)[:512]]])
                            for pool in pools])
    coarse = _random_starts(m, order, config, g)
    _train(coarse, xc, pools, medians, labels, config, g, progress, config.steps, config.anneal, 1.0)
    scores = _ranking(*_pick_scores(coarse, xc, pools, medians, labels, config, g), config)
    q_coarse = coarse.basis()[int(torch.argmin(scores))].detach().double()  # (m, m)
    return CayleyCyclic(n, order, 1, anchor=lift_basis(q_coarse, u, g)[None]).float()


def _episodic_start(x: torch.Tensor, pools, order: int, config: LearnConfig, g: torch.Generator,
                    progress) -> CayleyCyclic:
    """``config.restarts`` Haar-random starts plus one more at the generator ``--method episodic`` learns on the
    same search images (its few-shot signal: its default settings, ``config.restarts`` starts and
    ``config.steps`` steps)."""
    episodic, scores = search_episodic(x, pools, order, EpisodicConfig(restarts=config.restarts, steps=config.steps),
                                       g, progress)
    with torch.no_grad():
        found = episodic.basis()[int(torch.argmin(scores))].double()
    anchors = torch.cat([haar_orthogonal(config.restarts, x.shape[1], g), found[None]])
    return CayleyCyclic(x.shape[1], order, config.restarts + 1, anchor=anchors).float()


def lift_basis(q_coarse: torch.Tensor, u: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """The full basis ``(n, n)`` [U·Q_coarse, V·Q_rest]: Q_coarse ``(m, m)`` on the span of ``u`` ``(n, m)``
    (orthonormal), a Haar-random Q_rest on its orthogonal complement V.

    R's first m coordinates are R of size m (whole copies of the regular representation, m a multiple of
    the order), so with A = Q·R·Qᵀ: A·U = U·A_coarse, the coarse map on the span of U, exactly.
    """
    n, m = u.shape
    full = torch.linalg.qr(torch.cat([u, torch.randn(n, n - m, generator=g, dtype=u.dtype)], 1))[0]
    v = full[:, m:]  # (n, n − m)
    anchor = torch.cat([u @ q_coarse, v @ haar_orthogonal(1, n - m, g)[0].to(u.dtype)], dim=1)
    anchor[:, 0] *= torch.sign(torch.linalg.det(anchor))  # a rotation, as every start (column 0: eigenvalue 1)
    return anchor


def _anneal(step: int, steps: int, high: float, low: float, until: float) -> float:
    """The bandwidth factor at ``step`` of ``steps``: ``high`` → ``low`` linearly over the first ``until`` of the
    steps, then ``low``."""
    span = until * steps
    if span <= 0 or step >= span:
        return low
    return high + (low - high) * step / span


def _train(gen: CayleyCyclic, x: torch.Tensor, pools, medians: torch.Tensor, labels, config: LearnConfig,
           g: torch.Generator, progress, steps: int, high: float, low: float) -> None:
    """``steps`` Adam steps of every start of ``gen``, the bandwidth annealed from ``high`` to ``low`` × the
    medians over the first ``config.anneal_until`` of them; the third-moment term joins at ``low``."""
    dim = x.shape[1]
    opt = torch.optim.Adam(gen.parameters(), lr=config.lr * math.sqrt(REFERENCE_DIM / dim))
    size = config.sample if labels is not None else 4 * config.sample
    directions = None
    if config.third_weight > 0:
        fixed = torch.Generator().manual_seed(0)  # a fixed draw: the term leaves the sampling of the steps alone
        directions = torch.nn.functional.normalize(torch.randn(64, dim, generator=fixed, dtype=x.dtype), dim=1)
        third_labels = labels if labels is not None else torch.zeros(len(x), dtype=torch.int64)
        searched = torch.cat(pools)  # the images the search may see
    for step in range(steps):
        factor = _anneal(step, steps, high, low, config.anneal_until)
        x1, x2 = _draw(x, pools, size, g)
        scales = factor * medians
        loss = symmetry_distance(gen, x1, x2, scales, config.loss, within_terms(x1, x2, scales, config.loss)).sum()
        if directions is not None and factor == low:
            i = searched[torch.randint(0, len(searched), (min(len(searched), 2048),), generator=g)]
            a = gen.matrix()  # (S, D, D)
            loss = loss + config.third_weight * sum(
                third_moment_loss(a[s], x[i], third_labels[i], directions) for s in range(gen.starts))
        generator_step(gen, opt, loss, step, config, progress)


def _hold_out(pools: list[torch.Tensor], fraction: float, g: torch.Generator
              ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Each pool split at random into the images the search sees and the ``fraction`` kept for the verdict
    (at least 4 of each when ``fraction`` > 0, and at least 4 left to the search)."""
    search, held = [], []
    for pool in pools:
        pool = pool[torch.randperm(len(pool), generator=g)]
        cut = min(max(4, round(fraction * len(pool))), len(pool) - 4) if fraction > 0 else 0
        search.append(pool[cut:])
        held.append(pool[:cut])
    return search, held


def learn_generator(x: torch.Tensor, labels: torch.Tensor | None, order: int, config: LearnConfig | None = None,
                    *, seed: int = 0, clusters: int | None = None, progress=None
                    ) -> tuple[GroupEstimate, list[dict]]:
    """Learn a generator of a cyclic group of ``order`` under which the data ``x`` ``(N, n)`` are symmetric.

    ``labels`` ``(N,)`` int64, or None (the losses pool all images). ``clusters``: the estimator's
    cluster count for ``start="estimate"`` on unlabelled data (default 10 × order). ``config.held_out``
    of each class never enters the search; the verdict's evidence is measured on it (:func:`as_estimate`).
    Returns the learned group as a :class:`GroupEstimate` and one record per start (``loss`` at the
    median bandwidth on fixed training samples, ``chosen``; with a refine stage, ``refined``: the loss
    at ``refine_scale`` × the median after it, for the starts it continued). ``progress(text)`` is called
    every 50 steps. Deterministic for a ``seed``; torch's global random state is untouched.
    """
    if not isinstance(order, (int, np.integer)) or order < 2:
        raise ValueError(f"the group size must be an integer >= 2, got {order!r}")
    config = config or LearnConfig()
    if labels is None and config.start == "episodic":
        raise ValueError("start='episodic' needs labelled data: its episodes are few-shot classification tasks")
    x = x.reshape(len(x), -1).float()  # (N, n): training in float32, the result rebuilt in float64
    n = x.shape[1]
    order = int(order)
    labels = None if labels is None else labels.reshape(-1)
    if labels is None and config.shells:
        labels = norm_shells(x, config.shells)  # from here on the shells are the classes
    g = torch.Generator().manual_seed(seed)
    pools, held = _hold_out(_pools(labels, len(x)), config.held_out, g)
    if min(len(p) for p in pools) < 4:
        raise ValueError(f"every class needs at least 4 images for the search after holding out "
                         f"{config.held_out:g} of it, the smallest has {min(len(p) for p in pools)}")
    medians = torch.tensor([median_distance(x[pool[torch.randperm(len(pool), generator=g)[:512]]])
                            for pool in pools])  # (pools,)
    evidence = held if config.held_out > 0 else pools
    if config.start == "estimate":
        from lgn.discovery.estimate import estimate_group

        seen = torch.cat(pools)
        guess = estimate_group(x[seen].numpy(), None if labels is None else labels[seen].numpy(), order,
                               n_clusters=None if labels is not None else (clusters or 10 * order), seed=seed)
        anchor = torch.from_numpy(basis_for(guess.generator, order, x[seen].double().numpy()))[None]
        gen = CayleyCyclic(n, order, 1, anchor=anchor).float()
    elif config.start == "coarse":
        gen = _coarse_start(x, labels, pools, order, config, g, progress)
    elif config.start == "episodic":
        gen = _episodic_start(x, pools, order, config, g, progress)
    else:
        gen = _random_starts(n, order, config, g)
    _train(gen, x, pools, medians, labels, config, g, progress, config.steps, config.anneal, 1.0)
    loss, still = _pick_scores(gen, x, pools, medians, labels, config, g)
    records = [{"start": s, "loss": float(v), "stillness": float(c), "chosen": False}
               for s, (v, c) in enumerate(zip(loss, still))]
    scores = _ranking(loss, still, config)
    best = int(torch.argmin(scores))
    if config.refine:
        keep = torch.argsort(scores)[:config.refine_keep]
        with torch.no_grad():
            kept = CayleyCyclic(n, order, len(keep), anchor=gen.basis()[keep].double()).float()
        _train(kept, x, pools, medians, labels, config, g, progress, config.refine, 1.0, config.refine_scale)
        refined, still = _pick_scores(kept, x, pools, medians, labels, config, g, config.refine_scale)
        for s, v in zip(keep.tolist(), refined.tolist()):
            records[s]["refined"] = v
        ranked = _ranking(refined, still, config)
        gen, best, best_start = kept, int(torch.argmin(ranked)), int(keep[int(torch.argmin(ranked))])
    else:
        best_start = best
    records[best_start]["chosen"] = True
    return as_estimate(gen, best, x, labels, evidence, config.points, g), records
