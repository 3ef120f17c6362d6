"""Losses and test metrics: cross-entropy and accuracy to classify, MSE and PSNR to reconstruct."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lgn.data.preprocess import Preprocessing
from lgn.runs import CONFIG_FILE, load_run_split
from lgn.train.config import TrainConfig, check_settings

__all__ = ["task_loss", "evaluate", "evaluate_run", "psnr"]


def task_loss(output: torch.Tensor, x: torch.Tensor, y: torch.Tensor | None, task: str) -> torch.Tensor:
    """Mean cross-entropy of logits ``(N, classes)`` against ``y`` ``(N,)``, or MSE of a reconstruction of ``x``."""
    return F.cross_entropy(output, y) if task == "classify" else F.mse_loss(output, x)


def psnr(output: torch.Tensor, target: torch.Tensor, peak: float) -> torch.Tensor:
    """Per-image PSNR in dB, ``10·log10(peak² / mean((output − target)²))``: ``(N, ...)`` → ``(N,)``."""
    mse = (output - target).pow(2).flatten(1).mean(1).clamp_min(1e-20)
    return 10.0 * torch.log10(peak ** 2 / mse)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None, *, task: str, batch_size: int,
             preprocessing: Preprocessing | None = None, peak: float = 1.0) -> dict[str, float]:
    """Mean loss and accuracy (``{'loss', 'acc'}``) or mean PSNR (``{'loss', 'psnr'}``) over ``x``.

    ``x`` ``(N, C, H, W)`` is the preprocessed input. PSNR is measured on the
    raw scale: output and input are mapped back through ``preprocessing``,
    and ``peak`` is the raw data's range. The model is put in eval mode and
    returned to its former mode. A model of another float dtype (float16,
    float64) gets ``x`` in its dtype, and is scored in ``x``'s.
    """
    was_training = model.training
    model.eval()
    dtype = _dtype(model, x.dtype)
    loss_sum = score_sum = 0.0
    try:
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size]
            yb = None if y is None else y[start:start + batch_size]
            out = model(xb.to(dtype)).to(x.dtype)
            loss_sum += float(task_loss(out, xb, yb, task)) * len(xb)
            if task == "classify":
                score_sum += float((out.argmax(1) == yb).sum())
            else:
                if preprocessing is not None:
                    out, xb = preprocessing.invert(out), preprocessing.invert(xb)
                score_sum += float(psnr(out, xb, peak).sum())
    finally:
        model.train(was_training)
    n = len(x)
    return {"loss": loss_sum / n, "acc" if task == "classify" else "psnr": score_sum / n}


def _dtype(model: torch.nn.Module, default: torch.dtype) -> torch.dtype:
    """The float dtype of ``model``'s parameters (``default`` if it has none)."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), default)


def evaluate_run(run_dir, *, dataset: str | None = None, data_dir: str | None = None, split: str = "test",
                 device: str = "cpu", batch_size: int | None = None, which: str = "last") -> dict:
    """Re-evaluate the model saved in the run folder ``run_dir`` (its ``which`` epoch's weights: ``'last'`` or
    ``'best'``) on a split of its dataset or of ``dataset``.

    The run's own preprocessing is applied. Without ``dataset`` the run's data
    settings are reused (folder, options, subsets), so the test figure of
    its last epoch is reproduced. Every setting of the run's ``config.json`` is
    checked. Returns ``{'dataset', 'split', 'examples', 'loss', 'acc' | 'psnr'}``.
    """
    run = load_run_split(run_dir, dataset=dataset, data_dir=data_dir, split=split, device=device, which=which)
    settings = check_settings(run.config, str(run.folder / CONFIG_FILE))  # a damaged file is refused by name
    batch_size = batch_size or settings.get("train", {}).get("eval_batch_size", TrainConfig.eval_batch_size)
    metrics = evaluate(run.model, run.x, run.y, task=run.model.config.task, peak=run.data.value_range,
                       preprocessing=run.preprocessing, batch_size=batch_size)
    bad = next((k for k, v in metrics.items() if not math.isfinite(v)), None)
    if bad is not None:
        raise ValueError(f"evaluating {run_dir} on {run.name} gave a non-finite {bad} ({metrics[bad]}): the data's "
                         f"values are too large to compute it in float32")
    return {"dataset": run.name, "split": split, "examples": len(run.x), **metrics}
