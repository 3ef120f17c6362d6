"""Discovery as training: an LGN whose orbit bank starts from the group the data show.

The recipe (``lgn discover``; numbers in docs/discovery.md):

1. find the group: ``method="estimate"`` reads it off the data
   (:func:`lgn.discovery.estimate.estimate_group`: an orthogonal A with A**p = I
   that cycles the data's cluster centres); ``method="learn"`` learns it by
   gradient descent on a distribution loss (:func:`lgn.discovery.learn.learn_generator`);
   ``method="episodic"`` learns it on few-shot episodes whose readout pools over the
   orbit (:func:`lgn.discovery.episodic.learn_episodic`); the last two put training
   images in the place of the centres below;
2. build an unfolded LGN with dense filters (kernel = image size, no padding)
   whose generator in every layer is that A, fixed, and whose base filters
   start at cluster centres (one class per group);
3. train base filters, thresholds, batch norms and head on the task, with one
   extra term that keeps layer 0's base filters on the data: weight ·
   Σ_g (1 − max_c cos(b_g, μ_c)). Without it the task pulls some base filters
   onto filters the group leaves (almost) fixed, and those orbits collapse.

The paper's recipe (free generators, unit norm, auxiliary inverse, random
start) is :func:`paper_recipe_model` trained by the same loop: the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import numpy as np
import torch
import torch.nn.functional as F

from lgn.discovery.episodic import EpisodicConfig, learn_episodic
from lgn.discovery.estimate import GroupEstimate, estimate_group
from lgn.discovery.learn import LearnConfig, learn_generator
from lgn.groups import FixedGenerator
from lgn.models import LGN, build_model
from lgn.nn.pool import ORBIT_POOLS
from lgn.settings import kind, limit, section
from lgn.train import TrainConfig, evaluate, fit

__all__ = ["DiscoveryConfig", "DiscoveryResult", "standardise", "discovery_model", "paper_recipe_model",
           "train_classifier", "train_paper_recipe", "find_group", "train_discovery", "discover", "model_groups", "METHODS"]

MAX_DEFAULT_GROUPS = 16
METHODS = ("estimate", "learn", "episodic")


@section("discovery")
class DiscoveryConfig:
    n_layers: Annotated[int, limit("at least 1", ge=1)] = 4  # L: unfolded layers, each with the discovered generator
    n_groups: Annotated[int | None, limit("at least 1 or none", ge=1)] = None
    # ^ K: base filters; None means one per class (at most 16)
    epochs: Annotated[int, limit("at least 1", ge=1)] = 10  # training epochs on the task
    batch_size: Annotated[int, limit("at least 1", ge=1)] = 128  # minibatch size
    lr: Annotated[float, limit("positive", gt=0)] = 0.01
    # ^ Adam learning rate, halved at 1/2, 3/4 and 7/8 of the epochs
    anchor_weight: Annotated[float, limit("non-negative", ge=0)] = 1.0
    # ^ weight of the term keeping layer-0 base filters near a data centre
    beam_width: Annotated[int, limit("at least 1", ge=1)] = 64  # beam of the cycle search over cluster centres
    n_clusters: Annotated[int | None, limit("at least 1 or none", ge=1)] = None
    # ^ unlabelled data only: clusters (a multiple of the group size)
    seed: Annotated[int, limit("in 0..2**64-1 (torch's seed range)", ge=0, lt=2 ** 64)] = 0
    # ^ seeds k-means, initialisation and batch order
    method: Annotated[str, limit(f"one of {', '.join(METHODS)}", pattern=f"^({'|'.join(METHODS)})$")] = "estimate"
    # ^ how the group is found (module docstring)
    orbit_pool: Annotated[str | None, limit(f"one of {', '.join(ORBIT_POOLS)} or none",
                                            pattern=f"^({'|'.join(ORBIT_POOLS)})$")] = None
    # ^ None: the head reads every orbit response; "max"/"mean": each orbit pooled, so that the LGN is invariant
    #   to the group (docs/invariance.md)
    learn: Annotated[LearnConfig, kind("a LearnConfig")] = field(default_factory=LearnConfig)  # method="learn" only
    episodic: Annotated[EpisodicConfig, kind("an EpisodicConfig")] = field(default_factory=EpisodicConfig)
    # ^ method="episodic" only


@dataclass
class DiscoveryResult:
    """The estimate, the trained model (None for unlabelled data) and its groups in ``groups.npz`` layout."""

    estimate: GroupEstimate
    generators: np.ndarray          # (L, K, 1, n, n), n = C·k² (joint action on the whole image)
    bases: np.ndarray               # (L, K, C, k, k)
    model: LGN | None = None
    test_accuracy: float | None = None
    history: list[float] = field(default_factory=list)  # mean training loss per epoch


def standardise(x_train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Subtract the training set's mean and divide by its standard deviation (one scalar each).

    A scalar shift and scale commute with every pixel permutation, so a planted
    symmetry survives it.
    """
    mean, std = x_train.mean(), x_train.std().clamp_min(1e-12)
    return [(t - mean) / std for t in (x_train, *others)]


def _square(x: torch.Tensor) -> tuple[int, int]:
    if x.dim() != 4 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"discovery needs square images (N, C, k, k), got {tuple(x.shape)}")
    return x.shape[1], x.shape[-1]


def _config(channels: int, k: int, order: int, num_classes: int, n_groups: int, n_layers: int, **extra):
    return dict(in_channels=channels, image_size=k, kernel_size=k, padding=0, pool_size=1,
                num_classes=max(num_classes, 2), n_groups=n_groups, group_size=order, n_layers=n_layers,
                action="joint", **extra)


def _bases(estimate: GroupEstimate, n_groups: int) -> np.ndarray:
    """``(K, n)``: base filter g is centre g // classes of class g mod classes."""
    pools = estimate.clusters
    picks = [pools[g % len(pools)][(g // len(pools)) % len(pools[g % len(pools)])] for g in range(n_groups)]
    return estimate.centres[picks]


def discovery_model(estimate: GroupEstimate, channels: int, k: int, num_classes: int, n_groups: int,
                    n_layers: int, orbit_pool: str | None = None) -> LGN:
    """An LGN whose every layer has the generator ``estimate.generator`` (fixed) and base filters at centres;
    with ``orbit_pool`` ("max" or "mean") the head reads each orbit pooled, and the LGN is invariant to the
    group."""
    model = build_model(**_config(channels, k, estimate.order, num_classes, n_groups, n_layers, generator="free",
                                  regularizer="none", orbit_pool=orbit_pool))
    a = torch.from_numpy(estimate.generator).float()  # (n, n)
    base = torch.from_numpy(_bases(estimate, n_groups)).float()  # (K, n)
    for bank in model.encoder.banks:
        bank.generator = FixedGenerator(a, n_groups, 1)
        with torch.no_grad():
            bank.base.copy_(base.reshape(bank.base.shape))
        bank.project_()
    return model


def paper_recipe_model(channels: int, k: int, order: int, num_classes: int, n_groups: int, n_layers: int,
                       orbit_pool: str | None = None) -> LGN:
    """The paper's recipe on the same architecture: free generators, unit norm, auxiliary inverse (and, with
    ``orbit_pool``, the same pooled head as :func:`discovery_model`'s)."""
    return build_model(**_config(channels, k, order, num_classes, n_groups, n_layers, generator="free",
                                 regularizer="aux-inverse", orbit_pool=orbit_pool))


def _anchor(model: LGN, centres: torch.Tensor) -> torch.Tensor:
    """Σ_g (1 − max_c cos(b_g, μ_c)) over layer 0's base filters b ``(K, n)`` and centres μ ``(m, n)``."""
    base = model.encoder.banks[0].base
    b = F.normalize(base.reshape(base.shape[0], -1), dim=1)  # (K, n)
    return (1.0 - (b @ F.normalize(centres, dim=1).T).max(dim=1).values).sum()


def train_classifier(model: LGN, x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor,
                     y_test: torch.Tensor, config: DiscoveryConfig, *, centres: np.ndarray | None = None,
                     progress=None) -> tuple[float, list[float]]:
    """Train ``model`` on the task by the training recipe (:func:`lgn.train.fit`); (test accuracy, loss history).

    ``centres`` ``(m, n)`` adds ``config.anchor_weight`` times the anchor term.
    ``progress`` is called after every epoch with a line saying which and its loss.
    The history is the mean task loss of each epoch.
    """
    recipe = TrainConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, seed=config.seed,
                         progress=False)
    anchor = None if centres is None or config.anchor_weight == 0 else torch.from_numpy(centres).float()
    extra = None if anchor is None else (lambda m: config.anchor_weight * _anchor(m, anchor))
    records = fit(model, x_train, y_train, recipe, extra_loss=extra,
                  on_epoch_end=None if progress is None else (
                      lambda record: progress(f"training epoch {record['epoch']}/{config.epochs}: "
                                              f"train_loss {record['train_loss']:.4f}")))
    model.eval()
    acc = evaluate(model, x_test, y_test, task="classify", batch_size=1024)["acc"]
    return acc, [r["train_loss"] for r in records]


def train_paper_recipe(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
                       order: int, config: DiscoveryConfig, n_groups: int, progress=None) -> tuple[LGN, float]:
    """The baseline on standardised images ``(N, C, k, k)``: :func:`paper_recipe_model` (with ``config.orbit_pool``
    its head), seeded by ``config.seed`` and trained by :func:`train_classifier`; (the model, test accuracy)."""
    torch.manual_seed(config.seed)
    model = paper_recipe_model(x_train.shape[1], x_train.shape[-1], order, int(y_train.max()) + 1, n_groups,
                               config.n_layers, config.orbit_pool)
    acc, _ = train_classifier(model, x_train, y_train, x_test, y_test, config, progress=progress)
    return model, acc


def model_groups(model: LGN) -> tuple[np.ndarray, np.ndarray]:
    """``(A (L, K, C', n, n), B (L, K, C, k, k))`` of a model, as numpy float64."""
    a = model.generators().detach().double().cpu().numpy()
    b = np.stack([bank.base.detach().double().cpu().numpy() for bank in model.encoder.banks])
    return a, b


def find_group(x_train: torch.Tensor, y_train: torch.Tensor | None, order: int, config: DiscoveryConfig,
               progress=None) -> GroupEstimate:
    """Step 1 of :func:`discover` alone: the group of ``order`` in the standardised training images ``x_train``
    ``(N, C, k, k)`` by ``config.method``; labels ``(N,)`` int64 or None."""
    flat = x_train.reshape(len(x_train), -1).double().numpy()  # (N, C·k²)
    if config.method == "learn":
        if progress is not None:
            progress(f"learning a generator of order {order} from {config.learn.restarts} random starts")
        estimate, _ = learn_generator(torch.from_numpy(flat), y_train, order, config.learn, seed=config.seed,
                                      clusters=config.n_clusters, progress=progress)
        return estimate
    if config.method == "episodic":
        if progress is not None:
            progress(f"learning a generator of order {order} on few-shot episodes from "
                     f"{config.episodic.restarts} random starts")
        estimate, _ = learn_episodic(torch.from_numpy(flat), y_train, order, config.episodic, seed=config.seed,
                                     progress=progress)
        return estimate
    if y_train is None and config.n_clusters is None:
        raise ValueError("unlabelled data: give the number of clusters (a multiple of the group size)")
    if progress is not None:
        progress(f"estimating a group of order {order} from the clusters of {len(flat)} images")
    return estimate_group(flat, None if y_train is None else y_train.numpy(), order, n_clusters=config.n_clusters,
                          width=config.beam_width, seed=config.seed)


def discover(x_train: torch.Tensor, y_train: torch.Tensor | None, x_test: torch.Tensor,
             y_test: torch.Tensor | None, order: int, config: DiscoveryConfig | None = None,
             progress=None) -> DiscoveryResult:
    """Find the group of ``order`` in the data (``config.method``) and, with labels, train the discovery
    LGN on them.

    Images ``(N, C, k, k)``; labels ``(N,)`` int64 or None. Unlabelled data give
    the group only (generators repeated over layers, base filters at centres or
    training images); ``method="estimate"`` then needs ``config.n_clusters``,
    ``method="learn"`` pools its losses over all images, ``method="episodic"``
    refuses them. ``progress`` is called with a line of text as each stage starts
    (finding the group, training), every 50 generator steps of ``learn`` and
    ``episodic``, and after every training epoch.
    """
    config = config or DiscoveryConfig()
    _square(x_train)  # refuses other shapes before any work
    x_train, x_test = standardise(x_train, x_test)
    estimate = find_group(x_train, y_train, order, config, progress)
    return train_discovery(estimate, x_train, y_train, x_test, y_test, config, progress)


def train_discovery(estimate: GroupEstimate, x_train: torch.Tensor, y_train: torch.Tensor | None,
                    x_test: torch.Tensor, y_test: torch.Tensor | None, config: DiscoveryConfig,
                    progress=None) -> DiscoveryResult:
    """Steps 2–3 of :func:`discover`: the discovery LGN on the group of ``estimate``, trained on the standardised
    images (with labels; without, the group's generators and base filters only)."""
    channels, k = _square(x_train)
    n_groups = config.n_groups or min(len(estimate.clusters) if y_train is not None
                                      else len(estimate.centres) // estimate.order, MAX_DEFAULT_GROUPS)
    if y_train is None:
        n = channels * k * k
        a = np.broadcast_to(estimate.generator, (config.n_layers, n_groups, 1, n, n)).copy()
        b = np.broadcast_to(_bases(estimate, n_groups).reshape(n_groups, channels, k, k),
                            (config.n_layers, n_groups, channels, k, k)).copy()
        return DiscoveryResult(estimate, a, b)
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    torch.manual_seed(config.seed)
    model = discovery_model(estimate, channels, k, num_classes, n_groups, config.n_layers, config.orbit_pool)
    if progress is not None:
        progress(f"training the discovery LGN ({n_groups} groups, {config.n_layers} layers, "
                 f"{config.epochs} epochs)")
    acc, history = train_classifier(model, x_train, y_train, x_test, y_test, config,
                                    centres=estimate.centres, progress=progress)
    a, b = model_groups(model)
    return DiscoveryResult(estimate, a, b, model, acc, history)
