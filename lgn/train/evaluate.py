"""Losses and test metrics: cross-entropy and accuracy to classify, MSE and PSNR to reconstruct."""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F

from lgn.data.preprocess import Preprocessing

__all__ = ["task_loss", "evaluate", "evaluate_run", "load_run_split", "psnr"]


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


def load_run_split(run_dir, *, dataset: str | None = None, data_dir: str | None = None, split: str = "test",
                   device: str = "cpu") -> dict:
    """The model of the run folder ``run_dir`` and a split of its dataset (or of ``dataset``), preprocessed as
    the run was: ``{'model', 'x', 'y', 'name', 'data', 'preprocessing', 'config'}`` (``y`` None when the task
    does not use labels)."""
    from lgn.data import get_dataset, load_preprocessing
    from lgn.data.preprocess import PREPROCESS_FILE
    from lgn.device import resolve_device
    from lgn.models import load_model
    from lgn.train.config import check_settings
    from lgn.train.run import CONFIG_FILE, read_config

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    config = read_config(run_dir)
    if config is None:
        raise FileNotFoundError(f"no config.json in {run_dir}: not an lgn run folder")
    config = check_settings(config, os.path.join(run_dir, CONFIG_FILE))  # a damaged file is refused by name
    data = config.get("data", {})
    same = dataset is None or dataset == data.get("name")
    name = data.get("name") if same else dataset
    ds = get_dataset(name, data_dir=data_dir if data_dir is not None or not same else data.get("data_dir"),
                     seed=config.get("train", {}).get("seed", 0), **(data.get("options", {}) if same else {}))
    if same:
        ds = ds.subset(data.get("train_subset"), data.get("test_subset"))
    device = resolve_device(device)
    model = load_model(run_dir, map_location=device)
    task = model.config.task
    x, y = (ds.x_train, ds.y_train) if split == "train" else (ds.x_test, ds.y_test)
    if task == "classify":
        if y is None:
            raise ValueError(f"{name} has no labels; this run's model classifies")
        if int(y.max()) >= model.config.num_classes:
            raise ValueError(f"{name} has label {int(y.max())} but the model knows "
                             f"{model.config.num_classes} classes")
        y = y.to(device)
    else:
        y = None
    prep = load_preprocessing(run_dir).to(device)
    if len(prep.mean) != model.config.in_channels:
        raise ValueError(f"{os.path.join(run_dir, PREPROCESS_FILE)} is for {len(prep.mean)} channels but the "
                         f"run's model takes {model.config.in_channels}")
    x = prep(x.to(device))
    model.check_input(x[:1].to(_dtype(model, x.dtype)))
    return {"model": model, "x": x, "y": y, "name": name, "data": ds, "preprocessing": prep, "config": config}


def evaluate_run(run_dir, *, dataset: str | None = None, data_dir: str | None = None, split: str = "test",
                 device: str = "cpu", batch_size: int | None = None) -> dict:
    """Re-evaluate the model saved in the run folder ``run_dir`` on a split of its dataset or of ``dataset``.

    The run's own preprocessing is applied. Without ``dataset`` the run's data
    settings are reused (folder, options, subsets), so the test figure of
    its last epoch is reproduced. Returns ``{'dataset', 'split', 'examples',
    'loss', 'acc' | 'psnr'}``.
    """
    from lgn.train.config import TrainConfig

    loaded = load_run_split(run_dir, dataset=dataset, data_dir=data_dir, split=split, device=device)
    model, x, y, name, ds, prep, config = (loaded[k] for k in ("model", "x", "y", "name", "data", "preprocessing",
                                                               "config"))
    task = model.config.task
    batch_size = batch_size or config.get("train", {}).get("eval_batch_size", TrainConfig.eval_batch_size)
    metrics = evaluate(model, x, y, task=task, peak=ds.value_range, preprocessing=prep, batch_size=batch_size)
    bad = next((k for k, v in metrics.items() if not math.isfinite(v)), None)
    if bad is not None:
        raise ValueError(f"evaluating {run_dir} on {name} gave a non-finite {bad} ({metrics[bad]}): the data's "
                         f"values are too large to compute it in float32")
    return {"dataset": name, "split": split, "examples": len(x), **metrics}
