"""Discovery by a few-shot task: the group that lets one pose of a class recognise the others.

``lgn discover --method episodic``. A signal inside the LGN itself, in the spirit of
meta-learning symmetries by reparameterisation (MSR), with a closed-form inner loop
and so no second-order gradients:

- an *episode* draws, for every class, ``shots`` support images and ``queries``
  query images (the poses are whatever the data hold; no pose is known);
- the inner loop is closed form: class c's base filter b_c is the mean of its
  (unit-norm) support images, the layer-0 base filters of an LGN fitted on the
  support split;
- the readout pools over the orbit index: class c's logit for a query x is
  τ·logsumexp_i(cos(x, A^i·b_c)/τ), i = 0 … p − 1, a soft maximum over the orbit
  {A^i·b_c} of the LGN's layer-0 filters;
- A, the only trained parameter, is updated on the query split's cross-entropy.

With few poses in the support set, only a generator that maps the support pose onto
the query's pose lets the prototype reach it: the right group lowers the loss, and
a fit-only loss has no such pressure. The generator is the exact cyclic group of
:class:`lgn.groups.cayley.CayleyCyclic` (the identity, for which the orbit is one
filter, is out of reach), ``restarts`` random starts train at once, and the start
with the lowest query loss on fixed training episodes is kept. No estimator is
involved. It needs labels (the classes are the task). docs/discovery.md has the
measured numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Annotated

import numpy as np
import torch
import torch.nn.functional as F

from lgn.discovery.estimate import GroupEstimate
from lgn.discovery.search import REFERENCE_DIM, as_estimate, generator_step
from lgn.groups.cayley import CayleyCyclic, haar_orthogonal
from lgn.settings import limit, section

__all__ = ["EpisodicConfig", "episode_loss", "learn_episodic", "search_episodic"]


@section("episodic")
class EpisodicConfig:
    restarts: Annotated[int, limit("at least 1", ge=1)] = 8  # random starts, trained together
    steps: Annotated[int, limit("at least 0", ge=0)] = 500  # Adam steps, one batch of episodes each
    lr: Annotated[float, limit("positive", gt=0)] = 0.03  # Adam learning rate at D = 36 pixels, scaled by √(36/D)
    shots: Annotated[int, limit("at least 1", ge=1)] = 1  # support images per class and episode
    queries: Annotated[int, limit("at least 1", ge=1)] = 16  # query images per class and episode
    episodes: Annotated[int, limit("at least 1", ge=1)] = 8  # episodes per step
    temperature: Annotated[float, limit("positive", gt=0)] = 0.1  # τ of the orbit soft maximum and of the logits
    reanchor: Annotated[int, limit("at least 0", ge=0)] = 25  # steps between re-anchorings of the Cayley map (0: never)
    points: Annotated[int, limit("at least 1", ge=1)] = 512  # training images the verdict looks at

    def to_dict(self) -> dict:
        return asdict(self)


def episode_loss(gen: CayleyCyclic, support: torch.Tensor, query: torch.Tensor, temperature: float
                 ) -> torch.Tensor:
    """``(starts,)``: the query cross-entropy of episodes, mean over episodes, classes and queries.

    ``support`` ``(E, C, s, n)`` and ``query`` ``(E, C, m, n)``: E episodes of C classes. Prototypes
    b_c = mean of the unit-norm support images; logit_c(x) = τ·logsumexp_i(cos(x, A^i·b_c)/τ), then
    softmax over classes at temperature τ.
    """
    q = gen.basis()  # (S, D, D)
    e, c, m, _ = query.shape
    proto = F.normalize(F.normalize(support, dim=-1).mean(2), dim=-1)  # (E, C, n)
    v = proto[None] @ q[:, None]  # (S, E, C, D): coordinates Qᵀb
    orbit = torch.stack([gen.rotate(v, i) for i in range(gen.order)], dim=2)  # (S, E, p, C, D)
    u = F.normalize(query, dim=-1).reshape(e, c * m, -1)[None] @ q[:, None]  # (S, E, C·m, D)
    cos = torch.einsum("sekd,sepcd->sekpc", u, orbit)  # (S, E, C·m, p, C)
    logits = torch.logsumexp(cos / temperature, dim=3)  # (S, E, C·m, C): τ·logsumexp/τ at scale 1/τ
    target = torch.arange(c).repeat_interleave(m).expand(gen.starts, e, -1)  # (S, E, C·m)
    loss = F.cross_entropy(logits.reshape(-1, c), target.reshape(-1), reduction="none")
    return loss.reshape(gen.starts, -1).mean(1)


def _episodes(x: torch.Tensor, pools: list[torch.Tensor], config: EpisodicConfig, g: torch.Generator
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(support (E, C, s, n), query (E, C, m, n))`` drawn without overlap inside each episode."""
    s, m = config.shots, config.queries
    picks = torch.stack([torch.stack([p[torch.randperm(len(p), generator=g)[:s + m]] for p in pools])
                         for _ in range(config.episodes)])  # (E, C, s + m)
    both = x[picks]  # (E, C, s + m, n)
    return both[:, :, :s], both[:, :, s:]


def search_episodic(x: torch.Tensor, pools: list[torch.Tensor], order: int, config: EpisodicConfig,
                    g: torch.Generator, progress=None) -> tuple[CayleyCyclic, torch.Tensor]:
    """The episodic search alone: ``config.restarts`` random generators trained on episodes of the classes
    ``pools`` (index tensors into ``x`` ``(N, n)``, float32), and each start's query loss on fixed training
    episodes, ``(starts,)``."""
    n = x.shape[1]
    gen = CayleyCyclic(n, order, config.restarts, anchor=haar_orthogonal(config.restarts, n, g)).float()
    opt = torch.optim.Adam(gen.parameters(), lr=config.lr * math.sqrt(REFERENCE_DIM / n))
    for step in range(config.steps):
        support, query = _episodes(x, pools, config, g)
        loss = episode_loss(gen, support, query, config.temperature).sum()
        generator_step(gen, opt, loss, step, config, progress)
    support, query = _episodes(x, pools, EpisodicConfig(**{**config.to_dict(), "episodes": 32}), g)
    with torch.no_grad():
        return gen, episode_loss(gen, support, query, config.temperature)


def learn_episodic(x: torch.Tensor, labels: torch.Tensor, order: int, config: EpisodicConfig | None = None, *,
                   seed: int = 0, progress=None) -> tuple[GroupEstimate, list[dict]]:
    """Learn a generator of a cyclic group of ``order`` from few-shot episodes of ``x`` ``(N, n)``.

    ``labels`` ``(N,)`` int64 (required). Returns a :class:`GroupEstimate` laid out as
    :func:`lgn.discovery.learn.learn_generator`'s (training images as centres, the nearest-neighbour
    residual and its null of random generators) and one record per start (``loss``: the query loss on
    fixed training episodes; ``chosen``). ``progress(text)`` every 50 steps. Deterministic for a ``seed``.
    """
    if not isinstance(order, (int, np.integer)) or order < 2:
        raise ValueError(f"the group size must be an integer >= 2, got {order!r}")
    if labels is None:
        raise ValueError("--method episodic needs labelled data: its episodes are few-shot classification tasks")
    config = config or EpisodicConfig()
    order = int(order)
    x = x.reshape(len(x), -1).float()  # (N, n)
    labels = labels.reshape(-1)
    pools = [torch.nonzero(labels == c).flatten() for c in torch.unique(labels)]
    short = min(len(p) for p in pools)
    if short < config.shots + config.queries:
        raise ValueError(f"every class needs shots + queries = {config.shots + config.queries} images, "
                         f"the smallest has {short}")
    g = torch.Generator().manual_seed(seed)
    gen, scores = search_episodic(x, pools, order, config, g, progress)
    best = int(torch.argmin(scores))
    records = [{"start": s, "loss": float(v), "chosen": s == best} for s, v in enumerate(scores)]
    return as_estimate(gen, best, x, labels, pools, config.points, g), records
