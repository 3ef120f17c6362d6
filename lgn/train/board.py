"""What a run writes to TensorBoard (``--tensorboard``), so that a user watches a group form.

- every optimiser step: the batch's task loss and the learning rate (``step/train_loss``, ``step/lr``);
- every epoch: the epoch's record (``train_loss``, ``test_acc``, …, as ``metrics.jsonl``), and for a
  model with generators, each layer's generators as one image (``generators/layer_l``: a mosaic of the
  K·C' matrices on one symmetric scale, 0.5 grey for zero) and histograms of their singular values and
  of the angles of their eigenvalues (``singular_values/layer_l``, ``eigenvalue_angles/layer_l``): a
  cyclic group of order p shows as angles at multiples of 2π/p and singular values at one value.

``writer`` is a :class:`torch.utils.tensorboard.SummaryWriter` or anything with its ``add_scalar``,
``add_image`` and ``add_histogram``.
"""

from __future__ import annotations

import torch

__all__ = ["log_step", "log_epoch", "generator_mosaic"]


def log_step(writer, step: int, loss: float, lr: float) -> None:
    """The scalars of optimiser step ``step``."""
    writer.add_scalar("step/train_loss", loss, step)
    writer.add_scalar("step/lr", lr, step)


def generator_mosaic(a: torch.Tensor) -> torch.Tensor:
    """One layer's generators ``(K, C', n, n)`` tiled into an image ``(K·(n+1) − 1, C'·(n+1) − 1)`` in [0, 1]:
    row g, column c holds A_{g,c} on a scale shared by all, zero at 0.5, with 1-pixel gaps of 1 (white)."""
    K, C, n, _ = a.shape  # groups, blocks, matrix size
    peak = a.abs().max().clamp_min(torch.finfo(a.dtype).tiny)
    tiles = torch.ones(K, C, n + 1, n + 1, dtype=a.dtype)
    tiles[:, :, :n, :n] = (a.detach().cpu() / peak + 1) / 2
    image = tiles.permute(0, 2, 1, 3).reshape(K * (n + 1), C * (n + 1))  # (K·(n+1), C·(n+1))
    return image[:-1, :-1]


def log_epoch(writer, epoch: int, record: dict, model: torch.nn.Module) -> None:
    """The record of ``epoch`` and, where ``model`` has generators ``(L, K, C', n, n)``, their images and
    histograms."""
    for key, value in record.items():
        if key != "epoch":
            writer.add_scalar(key, value, epoch)
    generators = getattr(model, "generators", None)
    a = generators() if callable(generators) else None
    if a is None:
        return
    a = a.detach().double().cpu()
    for layer, matrices in enumerate(a):  # (K, C', n, n)
        writer.add_image(f"generators/layer_{layer}", generator_mosaic(matrices).float(), epoch, dataformats="HW")
        writer.add_histogram(f"singular_values/layer_{layer}", torch.linalg.svdvals(matrices).flatten(), epoch)
        writer.add_histogram(f"eigenvalue_angles/layer_{layer}", torch.linalg.eigvals(matrices).angle().flatten(),
                             epoch)
    writer.flush()
