"""Training: the paper's recipe, checkpoints and evaluation (the run folder it writes is :mod:`lgn.runs`)."""

from lgn.train.checkpoint import load_checkpoint, save_checkpoint
from lgn.train.config import DataConfig, RunConfig, TrainConfig, apply_overrides, load_toml, resolve, set_value
from lgn.train.evaluate import evaluate, psnr, task_loss
from lgn.train.loop import TrainResult, epoch_order, fit, recompute_batch_norm_, train

__all__ = ["train", "fit", "recompute_batch_norm_", "TrainResult", "TrainConfig", "DataConfig", "RunConfig", "load_toml", "apply_overrides",
           "set_value", "resolve", "evaluate", "psnr", "task_loss", "save_checkpoint", "load_checkpoint",
           "epoch_order"]
