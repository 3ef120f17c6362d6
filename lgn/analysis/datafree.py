"""The data-free path: where the regulariser alone takes a model's generators, as a control for what data do.

A free LGN's loss is the task loss plus μ·Σ‖A·Ã − I‖_F (the auxiliary-inverse
regulariser, docs/method.md §5). Adam on that regulariser alone, from the run's own
initial weights, with the run's learning-rate schedule, clipping, step count and
re-projection but no data, moves the generators along the *data-free path*. Where a
trained run's generators lie on it (per-generator cosine near 1), the data and the
task did not shape them; where they lie far from it, training on the data did.
"""

from __future__ import annotations

import numpy as np
import torch

from lgn.settings import check_positive_int

__all__ = ["data_free_generators", "generator_cosines"]


def _stacked(model: torch.nn.Module) -> torch.nn.Module:
    """One generator module holding every layer's free generators (and auxiliary inverses), layer-major.

    Adam, clipping by the global norm, the regulariser (a sum over generators) and the
    re-projection (per generator) all act element- or generator-wise, so training this
    one module is training the model's generators, at a fraction of the per-step cost.
    """
    import copy

    gens = [bank.generator for bank in model.encoder.banks]
    if not all(type(g) is type(gens[0]) and isinstance(getattr(g, "weight", None), torch.nn.Parameter)
               for g in gens):
        raise ValueError(f"the data-free path needs free generators in every layer, got "
                         f"{', '.join(type(g).__name__ for g in gens)}")
    out = copy.deepcopy(gens[0])
    for name, p in gens[0].named_parameters(recurse=False):
        setattr(out, name, torch.nn.Parameter(torch.cat([getattr(g, name).detach() for g in gens])))
    return out


def data_free_generators(model: torch.nn.Module, train, steps_per_epoch: int) -> np.ndarray:
    """Train ``model``'s generators on its regulariser alone by the recipe's schedule; where they end.

    Args:
        model: an :class:`lgn.models.LGN` with free generators as the run built it (same seed, before any step);
            left unchanged.
        train: the run's :class:`lgn.train.TrainConfig` (``epochs``, ``lr``, its step schedule, ``adam_eps``,
            ``grad_clip``).
        steps_per_epoch: the run's optimiser steps per epoch, ⌈training images / batch size⌉.

    Returns:
        ``(L, K, C', m, m)`` float64: the generators after ``epochs × steps_per_epoch`` steps of Adam on
        μ·Σ‖A·Ã − I‖ (``model.config.reg_weight`` times the generators' own regulariser), each step followed by
        clipping at ``grad_clip`` and the generators' re-projection, as in training.
    """
    check_positive_int(steps_per_epoch, "steps_per_epoch")
    if model.generators() is None:
        raise ValueError("this model has independent filters: there are no generators to follow")
    shape = model.generators().shape  # (L, K, C', m, m)
    gen = _stacked(model)
    params = list(gen.parameters())
    optimizer = torch.optim.Adam(params, lr=train.lr, eps=train.adam_eps)
    weight = model.config.reg_weight
    milestones = sorted(train.milestone_steps(steps_per_epoch))
    for step in range(train.epochs * steps_per_epoch):
        for group in optimizer.param_groups:
            group["lr"] = train.lr * train.lr_factor(step, milestones)
        optimizer.zero_grad(set_to_none=True)
        (weight * gen.regularization()).backward()
        if train.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, train.grad_clip)
        optimizer.step()
        with torch.no_grad():
            gen.project_()
    return gen.matrix().detach().cpu().double().numpy().reshape(shape)


def generator_cosines(A1, A2) -> np.ndarray:
    """⟨A1, A2⟩_F / (‖A1‖_F‖A2‖_F) of every generator with its counterpart: ``(L, K, C')`` for ``(L, K, C', m, m)``.

    The generators are paired by position, which is right for two runs from one initialisation (a run and its
    data-free path, or its start); 0 where either is zero.
    """
    a, b = np.asarray(A1, dtype=np.float64), np.asarray(A2, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 5:
        raise ValueError(f"expected two generator arrays of one shape (L, K, C', m, m), got {a.shape} and {b.shape}")
    dots = np.einsum("lkcij,lkcij->lkc", a, b)
    norms = np.linalg.norm(a, axis=(-2, -1)) * np.linalg.norm(b, axis=(-2, -1))
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
