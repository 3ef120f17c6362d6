"""The training loop: the paper's recipe (SPEC §5) writing a run folder that ``--resume`` continues.

Per epoch: Adam at the learning rate of the step schedule, for each batch the
task loss plus the model's regulariser, gradient-norm clipping, an optimiser
step and re-projection; then evaluation on the test split, and the model,
metrics and checkpoint written to the run folder.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from lgn.data import fit_preprocessing, get_dataset, save_preprocessing
from lgn.models import build_model, save_model
from lgn.train.checkpoint import load_checkpoint, save_checkpoint
from lgn.train.config import RunConfig, check_settings, resolve
from lgn.train.evaluate import evaluate, psnr, task_loss
from lgn.train.run import (CONFIG_FILE, TENSORBOARD_DIR, append_metrics, check_run_dir, clear_run_files,
                           read_config, read_metrics, write_metrics)

__all__ = ["train", "TrainResult", "resolve_device", "epoch_order", "MUTABLE_ON_RESUME"]

# settings a resumed run may change: they do not alter the numbers it computes
MUTABLE_ON_RESUME = ("train.device", "train.progress", "train.tensorboard", "train.eval_batch_size")


@dataclass
class TrainResult:
    out: Path                 # the run folder
    config: RunConfig         # the resolved config
    metrics: list[dict] = field(default_factory=list)  # one record per epoch, as in metrics.jsonl


def resolve_device(name: str) -> torch.device:
    """``torch.device(name)``, refusing CUDA where none is available."""
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
            raise ValueError(f"device {name!r} requested but CUDA is not available (torch {torch.__version__}, "
                             f"{build}); use --device cpu")
        index = int(name[5:]) if name.startswith("cuda:") else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    return torch.device(name)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The permutation of ``n`` training examples in 0-based ``epoch``: a function of (seed, epoch) alone."""
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))
    return torch.randperm(n, generator=generator)


def _merge(base: dict, top: dict) -> dict:
    out = {section: dict(table) for section, table in base.items()}
    for section, table in top.items():
        out.setdefault(section, {}).update(table)
    return out


def _changes(old: dict, new: dict) -> list[str]:
    """``section.key: old → new`` for every setting that differs, except the mutable ones."""
    out = []
    for section in new:
        for key, value in new[section].items():
            before = old.get(section, {}).get(key)
            if f"{section}.{key}" not in MUTABLE_ON_RESUME and before != value:
                out.append(f"{section}.{key}: {before!r} → {value!r}")
    return out


def _summary_writer_class():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ValueError("--tensorboard needs the optional tensorboard package: "
                         "pip install 'lgn[tensorboard]'") from None
    return SummaryWriter


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True,
                disable=None if enabled else True)  # None: shown on a terminal only


def _summary(record: dict, epochs: int) -> str:
    score = (f"test_acc {record['test_acc']:.4f}" if "test_acc" in record
             else f"test_psnr {record['test_psnr']:.2f} dB")
    return (f"epoch {record['epoch']}/{epochs}  train_loss {record['train_loss']:.4f}  "
            f"test_loss {record['test_loss']:.4f}  {score}  ({record['train_seconds']:.1f} s)")


def _train_epoch(model, optimizer, x: torch.Tensor, y: torch.Tensor | None, order: torch.Tensor, *,
                 config: RunConfig, bar, prep, peak: float) -> tuple[float, int]:
    """One pass over ``x`` ``(N, C, H, W)`` in ``order``; returns (summed task loss, correct predictions).

    Each batch: task loss plus regulariser, backward, gradient-norm clipping,
    an Adam step and re-projection. ``bar`` shows the running loss and
    accuracy, or the latest batch's PSNR on the raw scale.
    """
    t, task = config.train, config.model.task
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    seen = 0
    for b, idx in enumerate(order.split(t.batch_size)):
        xb = x[idx]
        yb = None if y is None else y[idx]
        output = model(xb)
        loss = task_loss(output, xb, yb, task)
        optimizer.zero_grad(set_to_none=True)
        (loss + model.regularization()).backward()
        if t.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, t.grad_clip)
        optimizer.step()
        model.project_()
        seen += len(idx)
        loss_sum += loss.detach() * len(idx)
        if yb is not None:
            correct += (output.detach().argmax(1) == yb).sum()
        if not bar.disable and (b % 5 == 4 or seen == len(order)):
            shown = {"loss": f"{float(loss_sum) / seen:.4f}"}
            if yb is not None:
                shown["acc"] = f"{int(correct) / seen:.3f}"
            else:
                shown["psnr"] = f"{float(psnr(prep.invert(output.detach()), prep.invert(xb), peak).mean()):.2f}"
            bar.set_postfix(shown, refresh=False)
        bar.update()
    return float(loss_sum), int(correct)


def train(settings: dict, out: str | Path, *, resume: bool = False, force: bool = False,
          log: Callable[[str], None] | None = print,
          on_epoch_end: Callable[[dict], None] | None = None) -> TrainResult:
    """Train as ``settings`` say (a nested dict, see :mod:`lgn.train.config`) into the run folder ``out``.

    ``resume`` continues the checkpoint in ``out`` (or starts afresh if it has
    none), reusing ``out``'s saved config as the base of ``settings``;
    ``force`` overwrites the run files of a non-empty ``out``. ``log`` receives
    one line per epoch; ``on_epoch_end`` each epoch's metrics record once it
    and the checkpoint are saved.
    """
    out = check_run_dir(out, resume=resume, force=force)
    saved = read_config(out) if resume else None
    if saved is not None:  # the run's own config is the base of what the caller sets
        settings = _merge(check_settings(saved, str(out / CONFIG_FILE)), settings)
    data_settings = settings.get("data", {})
    if not data_settings.get("name"):
        raise ValueError("no dataset: give --dataset NAME (or data.name in the config)")
    train_cfg = RunConfig.from_dict({"train": settings.get("train", {})}).train
    device = resolve_device(train_cfg.device)
    summary_writer = _summary_writer_class() if train_cfg.tensorboard else None  # fail before any work
    writer = None
    try:
        data_cfg = RunConfig.from_dict({"data": data_settings}).data
        dataset = get_dataset(data_cfg.name, data_dir=data_cfg.data_dir, seed=train_cfg.seed,
                              **data_cfg.options).subset(data_cfg.train_subset, data_cfg.test_subset)
        config = resolve(settings, dataset)
        task, t = config.model.task, config.train

        torch.manual_seed(t.seed)
        model = build_model(config.model).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=t.lr, eps=t.adam_eps)
        checkpoint = load_checkpoint(out, model, optimizer) if resume and out.is_dir() else None
        if checkpoint is not None:
            changed = _changes(checkpoint.config, config.to_dict())
            if changed:
                raise ValueError(f"cannot resume {out}: its settings differ in {'; '.join(changed)}")
            metrics = [r for r in read_metrics(out) if r.get("epoch", 0) <= checkpoint.epoch]
            start_epoch, step = checkpoint.epoch, checkpoint.step
            if log:
                log(f"resuming {out} after epoch {start_epoch} of {t.epochs}")
        else:
            if out.is_dir():
                clear_run_files(out)
            metrics, start_epoch, step = [], 0, 0

        prep = fit_preprocessing(dataset.x_train, zca=data_cfg.zca, zca_epsilon=data_cfg.zca_epsilon)
        x_train, x_test = prep(dataset.x_train).to(device), prep(dataset.x_test).to(device)
        y_train, y_test = (None, None) if task == "reconstruct" else (dataset.y_train.to(device),
                                                                       dataset.y_test.to(device))
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        save_preprocessing(prep, out)
        write_metrics(out, metrics)
        device_prep = prep.to(device)
        if summary_writer is not None:
            writer = summary_writer(log_dir=str(out / TENSORBOARD_DIR))

        n_batches = math.ceil(len(x_train) / t.batch_size)
        for epoch in range(start_epoch, t.epochs):
            lr = t.lr_at(epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            bar = _progress(n_batches, f"epoch {epoch + 1}/{t.epochs}", t.progress)
            start = time.perf_counter()
            loss_sum, correct = _train_epoch(model, optimizer, x_train, y_train,
                                             epoch_order(len(x_train), t.seed, epoch).to(device),
                                             config=config, bar=bar, prep=device_prep, peak=dataset.value_range)
            train_seconds = time.perf_counter() - start  # complete: the returned floats waited for the device
            bar.close()
            step += n_batches

            train_loss = loss_sum / len(x_train)
            if not math.isfinite(train_loss):
                raise ValueError(f"training diverged in epoch {epoch + 1}: the loss is {train_loss}; "
                                 f"the run folder keeps epoch {epoch}. Try a smaller train.lr")
            start = time.perf_counter()
            test = evaluate(model, x_test, y_test, task=task, batch_size=t.eval_batch_size,
                            preprocessing=device_prep, peak=dataset.value_range)
            record = {"epoch": epoch + 1, "step": step, "lr": lr, "train_loss": train_loss}
            if task == "classify":
                record["train_acc"] = correct / len(x_train)
            record.update({f"test_{k}": v for k, v in test.items()})
            record.update(train_seconds=train_seconds, eval_seconds=time.perf_counter() - start)

            save_model(model, out)
            append_metrics(out, record)
            save_checkpoint(out, model, optimizer, epoch=epoch + 1, step=step, config=config.to_dict())
            metrics.append(record)
            if writer is not None:
                for key, value in record.items():
                    if key != "epoch":
                        writer.add_scalar(key, value, epoch + 1)
                writer.flush()
            if log:
                log(_summary(record, t.epochs))
            if on_epoch_end is not None:
                on_epoch_end(record)
    finally:
        if writer is not None:
            writer.close()
    return TrainResult(out, config, metrics)
