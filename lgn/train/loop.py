"""The training loop: the paper's recipe (docs/method.md §5) writing a run folder that ``--resume`` continues.

Per epoch: Adam at the learning rate of the step schedule, for each batch the
task loss plus the model's regulariser, gradient-norm clipping, an optimiser
step and re-projection; then evaluation on the test split, and the model,
metrics and checkpoint written to the run folder.

One object holds a run as it goes, :class:`TrainState`: the model, the
optimiser, the position, the epoch's running sums, the finiteness check and
the world of ranks, with what a run keeps at checkpoints and epoch ends as its
methods. :func:`fit` runs it in memory; :func:`train` resolves the settings
once, at entry, and runs it in a run folder.

Checkpoints are written at every epoch end and, with ``train.checkpoint_every``,
every N steps; one holds the position within the epoch and the epoch's running
sums, so a run resumed from anywhere ends bit-identical to an uninterrupted one
(on CPU) and writes the same metrics.

Numerical faults: each step tests the loss, the gradients and the parameters and
float buffers left by the previous step with one device-side reduction and one
read (about 0.3 ms a step on CPU for the default model, under 1% of a step).
A non-finite loss or gradient stops the run (``train.on_nan = 'stop'``) before
the optimiser step, or skips the batch (``'skip'``: no step, batch-norm
running statistics restored; :data:`MAX_SKIPPED_IN_A_ROW` skips in a row still
stop). A non-finite parameter after a step cannot be undone by skipping and
always stops. No checkpoint is written with non-finite values.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import functools
import hashlib
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from lgn.data import Dataset, fit_preprocessing, get_dataset, save_preprocessing
from lgn.device import resolve_device
from lgn.models import ModelConfig, build_model, load_model, save_model
from lgn.models.lgn import check_model_fits
from lgn.runs import (BEST_WEIGHTS_FILE, CONFIG_FILE, TENSORBOARD_DIR, WEIGHTS_FILE, append_metrics, check_run_dir,
                      clear_run_files, lock_run_dir, read_config, write_config, write_metrics, write_run_record)
from lgn.train.checkpoint import (CHECKPOINT_FILES, CHECKPOINT_SLOTS, NEVER_COMPLETED, Checkpoint, CheckpointError,
                                  check_tensor, load_checkpoint, never_completed, next_slot, save_checkpoint)
from lgn.train.config import DataConfig, RunConfig, TrainConfig, check_settings, resolve_model
from lgn.train.distributed import SINGLE, World, batch_norm_over, from_environment
from lgn.train.board import log_epoch, log_step
from lgn.train.evaluate import evaluate, psnr, task_loss
from lgn.train.progress import ProgressLines, duration, seconds_left

__all__ = ["train", "fit", "TrainState", "recompute_batch_norm_", "TrainResult", "epoch_order",
           "MUTABLE_ON_RESUME", "NonFiniteError", "MAX_SKIPPED_IN_A_ROW", "BEST_BY"]

# settings a resumed run may change: they do not alter the numbers it computes (on_nan only after a fault)
MUTABLE_ON_RESUME = ("train.device", "train.progress", "train.tensorboard", "train.eval_batch_size",
                     "train.checkpoint_every", "train.on_nan")
MAX_SKIPPED_IN_A_ROW = 10  # with on_nan = 'skip', this many non-finite batches in a row stop the run anyway
# the metric of each epoch's evaluation that picks a run's best epoch (the highest; the first of equals). It is
# computed on the test split: the runs have no validation split (docs: README, "Extend, warm-start, best epoch")
BEST_BY = {"classify": "test_acc", "reconstruct": "test_psnr"}


class NonFiniteError(ValueError):
    """A non-finite loss, gradient or parameter stopped the run; the run folder keeps the last good checkpoint."""


@dataclass
class TrainResult:
    out: Path                 # the run folder
    config: RunConfig         # the resolved config
    metrics: list[dict] = field(default_factory=list)  # one record per epoch, as in metrics.jsonl


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The permutation of ``n`` training examples in 0-based ``epoch``: a function of (seed, epoch) alone."""
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))
    return torch.randperm(n, generator=generator)


def _merge(base: dict, top: dict) -> dict:
    out = {section: dict(table) for section, table in base.items()}
    for section, table in top.items():
        out.setdefault(section, {}).update(table)
    return out


def _changes(old: dict, new: dict, mutable: tuple[str, ...] = MUTABLE_ON_RESUME) -> list[str]:
    """``section.key: old → new`` for every setting that differs, except the ``mutable`` ones.

    A key that ``old`` lacks (a run saved before the key existed) counts as its default.
    """
    defaults = RunConfig.from_dict({}).to_dict()
    out = []
    for section in new:
        for key, value in new[section].items():
            before = old.get(section, {}).get(key, defaults.get(section, {}).get(key))
            if f"{section}.{key}" not in mutable and before != value:
                out.append(f"{section}.{key}: {before!r} → {value!r}")
    return out


def _summary_writer_class(out: Path):
    """TensorBoard's ``SummaryWriter``, once it is known to be able to write into ``out``."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ValueError("--tensorboard needs the optional tensorboard package: "
                         "pip install 'lgn[tensorboard]'") from None
    events = out / TENSORBOARD_DIR
    try:
        str(events).encode("utf-8")  # tensorboard encodes its paths as UTF-8, and fails on any other name
    except UnicodeEncodeError:
        raise ValueError(f"--tensorboard cannot write to {events}: tensorboard takes only paths that are UTF-8; "
                         f"choose another --out, or train without --tensorboard") from None
    return SummaryWriter


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True,
                disable=None if enabled else True)  # None: shown on a terminal only


def _summary(record: dict, epochs: int, seconds_left: float | None = None) -> str:
    score = (f"test_acc {record['test_acc']:.4f}" if "test_acc" in record
             else f"test_psnr {record['test_psnr']:.2f} dB")
    left = "" if seconds_left is None or record["epoch"] >= epochs else f", {duration(seconds_left)} left"
    return (f"epoch {record['epoch']}/{epochs}  train_loss {record['train_loss']:.4f}  "
            f"test_loss {record['test_loss']:.4f}  {score}  ({record['train_seconds']:.1f} s{left})")


@dataclass
class _Position:
    """Where a run stands; with the model, optimiser and RNG, what a checkpoint restores."""

    epoch: int = 0        # epochs completed
    batch: int = 0        # batches of epoch `epoch` (0-based) done, skipped ones included
    step: int = 0         # batches done in all epochs
    seen: int = 0         # examples in this epoch's running sums (skipped batches excluded)
    skipped: int = 0      # batches skipped in this epoch
    in_a_row: int = 0     # batches skipped in a row up to here
    seconds: float = 0.0  # training time of this epoch so far
    metrics: list[dict] = field(default_factory=list)  # the completed epochs' records
    extended: list[dict] = field(default_factory=list)
    # ^ each extension of the run: {"from_epochs", "to_epochs", "step"}; the learning-rate schedule stays laid
    #   over the epochs the run was first set to (schedule_epochs)

    def schedule_epochs(self, epochs: int) -> int:
        """The epochs the learning-rate schedule is laid over in a run now set to ``epochs``: those it was first
        set to, before any extension."""
        return self.extended[0]["from_epochs"] if self.extended else epochs

    def state(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("epoch", "batch", "step")}


class _FiniteCheck:
    """Tests the loss, the gradients and what the previous step left in the parameters, one read per step.

    Per tensor its norm (one ``_foreach_norm``), all stacked and tested by one
    ``isfinite().all()``: a NaN or Inf anywhere makes its norm non-finite.
    Only after a failure are the tensors themselves tested, to name the
    culprit (and to tell a norm that merely overflowed, > 1e19, from a fault).
    """

    def __init__(self, model: torch.nn.Module, params: list[tuple[str, torch.Tensor]]):
        self.watched = params + [(n, b) for n, b in model.named_buffers() if b.is_floating_point()]
        self.pending: torch.Tensor | None = None  # per watched tensor, its norm after the last step
        self.pending_step = 0

    def after_step(self, step: int) -> None:
        with torch.no_grad():
            self.pending = torch.stack(torch._foreach_norm([t for _, t in self.watched]))
        self.pending_step = step

    @staticmethod
    def _first_non_finite(named: list[tuple[str, torch.Tensor]]) -> str | None:
        return next((n for n, t in named if not bool(t.detach().isfinite().all())), None)

    def check(self, loss: torch.Tensor, total: torch.Tensor, grads: list[tuple[str, torch.Tensor]]):
        """None if all is finite, else ``(kind, name)``: kind 'parameter', 'loss', 'regulariser' or 'gradient'.

        The parameters are those the last :meth:`after_step` saw (not stepped since).
        """
        parts = [loss.detach().reshape(1), total.detach().reshape(1)]
        if grads:
            parts.append(torch.stack(torch._foreach_norm([g for _, g in grads])))
        if self.pending is not None:
            parts.append(self.pending)
        if bool(torch.cat(parts).isfinite().all()):
            self.pending = None
            return None
        name = self._first_non_finite(self.watched) if self.pending is not None else None
        self.pending = None
        if name is not None:
            return "parameter", name
        if not math.isfinite(float(loss.detach())):
            return "loss", "the task loss"
        if not math.isfinite(float(total.detach())):
            return "regulariser", "the regulariser"
        name = self._first_non_finite(grads)
        return None if name is None else ("gradient", name)

    def flush(self) -> str | None:
        """The parameter the last step made non-finite, if any (read before a checkpoint)."""
        pending, self.pending = self.pending, None
        if pending is None or bool(pending.isfinite().all()):
            return None
        return self._first_non_finite(self.watched)


def _kept(saved_step: int | None) -> str:
    return ("the run folder has no checkpoint yet" if saved_step is None
            else f"the run folder keeps the checkpoint of step {saved_step}")


def _fault_message(kind: str, name: str, step: int, epoch: int, batch: int, saved_step: int | None,
                   extra: str = "") -> str:
    where = (f"non-finite values in {name} after step {step}" if kind == "parameter"
             else f"non-finite {'gradient of ' + name if kind == 'gradient' else kind} at step {step}")
    kept = _kept(saved_step)
    hint = "try a smaller train.lr" + ("" if kind == "parameter" or extra else " or --on-nan skip")
    return f"{where} (epoch {epoch}, batch {batch}){extra}; {kept}; {hint}"


def _precision(precision: str, device: torch.device):
    """The forward pass's arithmetic: float32 as the model is, or bfloat16 autocast (``'bf16'``)."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


_BATCH_NORMS = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d, torch.nn.SyncBatchNorm)


def recompute_batch_norm_(model: torch.nn.Module, x: torch.Tensor, batch_size: int, world: World = SINGLE) -> None:
    """Set every batch norm's running statistics to their average over the batches of ``x``, weights unchanged.

    A forward pass in training mode without gradients, each norm averaging its
    batches' statistics with equal weight (``momentum=None``), then its momentum
    restored. The training loop calls it once, after the first epoch: PyTorch's
    running statistics start at mean 0 and variance 1 and follow the batches by
    a factor 0.1 per step, while the codes are of size η·|y| ≈ 1e-2 and grow
    quickly in the first epoch, so after it they still described neither, and
    evaluation sat at chance (docs/method.md §8). Training itself uses batch
    statistics and computes exactly what it did. ``x`` ``(N, ...)`` is split
    into ⌈N / batch_size⌉ batches of near-equal sizes; under data parallelism
    each rank runs its share and the statistics are the global batches'.
    """
    norms = [m for m in model.modules() if isinstance(m, _BATCH_NORMS) and m.track_running_stats]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    was_training = model.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
    model.train()
    try:
        with torch.no_grad(), batch_norm_over(world, model):
            for idx in torch.arange(len(x), device=x.device).tensor_split(math.ceil(len(x) / batch_size)):
                model(x[world.shard(idx)])
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)


class TrainState:
    """One run of the recipe as it goes: the model, its optimiser, the position reached, the epoch's running
    sums, the finiteness check and the world of ranks.

    :meth:`run` trains epochs ``pos.epoch`` onward; each epoch takes the
    batches of :func:`epoch_order` and trains them: per batch the task loss
    plus the model's regulariser (and ``extra_loss(model)``), backward, one
    finiteness test, gradient-norm clipping, an Adam step at the learning rate
    of the step schedule (:meth:`schedule`) and re-projection.
    The first epoch ends with :func:`recompute_batch_norm_`. Three hooks say
    what a run keeps: :meth:`checkpoint` (every ``train.checkpoint_every``
    steps within an epoch), :meth:`measure` (adds to an epoch's record) and
    :meth:`finish` (an epoch's record, the position moved past it). Here they
    keep nothing but pass each record to ``on_epoch_end``, as :func:`fit`
    needs; :func:`train`'s run folder overrides them.
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, t: TrainConfig, task: str,
                 device: torch.device, *, world: World = SINGLE,
                 extra_loss: Callable[[torch.nn.Module], torch.Tensor] | None = None,
                 on_epoch_end: Callable[[dict], None] | None = None):
        self.model, self.optimizer, self.t, self.task, self.world = model, optimizer, t, task, world
        self.extra_loss, self.on_epoch_end = extra_loss, on_epoch_end
        self.named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.buffers = list(model.buffers())
        self.pos = _Position()
        self.sums = torch.zeros(2, dtype=torch.float32, device=device)  # running task loss, correct predictions
        self.check = _FiniteCheck(model, self.named)
        self.saved_step: int | None = None  # the step of the newest checkpoint kept
        self.prep, self.peak = None, 1.0  # the input scaling and the data's peak, for the progress bar's PSNR
        self.milestones: list[int] = []  # the learning-rate milestones, in optimiser steps (set by run)
        self.scheduler: torch.optim.lr_scheduler.LambdaLR | None = None  # sets the rate of the next step
        self.lr = t.lr  # the rate of the last step taken

    # ---------------------------------------------------------------- the hooks

    def checkpoint(self) -> None:
        """Keep the position reached (at the end of :meth:`finish` too, in a run folder); here nothing."""

    def measure(self, record: dict) -> None:
        """Add to the ``record`` of the epoch just trained, before the position moves past it; here nothing."""

    def stepped(self, loss: torch.Tensor) -> None:
        """Optimiser step ``pos.step`` is done, with the batch's task ``loss``; here nothing."""

    def finish(self, record: dict) -> None:
        """The epoch of ``record`` is done: pass it to ``on_epoch_end`` (on the rank that writes)."""
        if self.on_epoch_end is not None and self.world.writes:
            self.on_epoch_end(record)

    # ---------------------------------------------------------------- the loop

    def run(self, x: torch.Tensor, y: torch.Tensor | None) -> None:
        """Epochs ``pos.epoch`` onward on ``x`` ``(N, C, H, W)``, preprocessed, with labels ``y`` ``(N,)`` to
        classify or None to reconstruct."""
        t, pos = self.t, self.pos
        n_batches = math.ceil(len(x) / t.batch_size)
        self.milestones = sorted(t.milestone_steps(n_batches, pos.schedule_epochs(t.epochs)))
        self.scheduler = self.schedule(self.milestones, pos.step)
        shown = t.progress and self.world.writes
        # away from a terminal the bar draws nothing: a line every 30 s instead (lgn.train.progress)
        lines = ProgressLines(t.epochs * n_batches, n_batches, t.epochs, first_step=pos.epoch * n_batches + pos.batch) \
            if shown and not sys.stderr.isatty() else None
        for epoch in range(pos.epoch, t.epochs):
            bar = _progress(n_batches, f"epoch {epoch + 1}/{t.epochs}", shown)
            bar.update(pos.batch)
            self._epoch(x, y, list(epoch_order(len(x), t.seed, epoch).to(x.device).split(t.batch_size)), bar,
                        lines)
            bar.close()
            self._flush()
            if epoch == 0:
                start = time.perf_counter()
                recompute_batch_norm_(self.model, x, t.batch_size, self.world)
                pos.seconds += time.perf_counter() - start
            record = self._record(self.lr)
            self.measure(record)
            pos.metrics.append(record)
            pos.epoch, pos.batch, pos.seen, pos.skipped, pos.seconds = epoch + 1, 0, 0, 0, 0.0
            self.sums.zero_()
            self.finish(record)

    def schedule(self, milestones: list[int], done: int) -> torch.optim.lr_scheduler.LambdaLR:
        """Set the optimiser's learning rate to the step schedule's after ``done`` steps, by torch's LambdaLR.

        The rate is lr·γ^(number of ``milestones`` m ≤ ``done``), the milestones
        in optimiser steps (:meth:`TrainConfig.milestone_steps`, sorted). It
        steps with the optimiser. Not MultiStepLR, which multiplies the
        optimiser's current rate at each milestone: where γ is not a power of
        two its rates differ from lr·γ^n in the last bits (for γ in {0.1, 0.2,
        0.3, 0.33, 0.7, 0.9, 0.95}, from 253 to 412 of 1,935 epoch rates each,
        over five base rates, seven epoch counts and three milestone lists;
        none for 0.5 and 0.25), and a resumed run would have to trust the rate
        saved in its checkpoint or replay every step (which makes torch warn
        that the schedule stepped before the optimiser). LambdaLR's rate is a
        function of the position alone, so it is placed at ``done`` directly,
        as torch places a resumed schedule (``last_epoch``), and a checkpoint
        holds nothing of it.
        """
        for group in self.optimizer.param_groups:
            group["initial_lr"] = self.t.lr
        return torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda k: self.t.lr_factor(k, milestones),
                                                 last_epoch=done - 1)

    def _epoch(self, x: torch.Tensor, y: torch.Tensor | None, batches: list[torch.Tensor], bar,
               lines: ProgressLines | None = None) -> None:
        """Batches ``pos.batch`` onward of one epoch, each ``(B,)`` indices into ``x`` and ``y``.

        ``bar`` shows the running loss and accuracy, or the latest batch's PSNR
        on the raw scale; ``lines``, away from a terminal, a line every 30 s.
        """
        pos = self.pos
        self.model.train()
        start = time.perf_counter()
        for b in range(pos.batch, len(batches)):
            output, xb, yb = self._batch(x, y, batches[b])
            if self.t.checkpoint_every is not None and pos.step % self.t.checkpoint_every == 0 \
                    and pos.batch < len(batches):
                now = time.perf_counter()
                pos.seconds += now - start
                start = now
                self.checkpoint()
            if not bar.disable and (b % 5 == 4 or pos.batch == len(batches)):
                bar.set_postfix(self._shown(output, xb, yb), refresh=False)
            bar.update()
            if lines is not None:
                lines.update(len(batches[b]))
        pos.seconds += time.perf_counter() - start

    def _batch(self, x: torch.Tensor, y: torch.Tensor | None, idx: torch.Tensor):
        """Train the global batch ``idx`` ``(B,)``: its step, or its skip; (output, inputs, labels) of this
        rank's share."""
        local = self.world.shard(idx)
        xb = x[local]
        yb = None if y is None else y[local]
        saved_buffers = [v.clone() for v in self.buffers] if self.t.on_nan == "skip" else None
        self.lr = self.optimizer.param_groups[0]["lr"]
        output, loss, total = self._forward_backward(xb, yb, len(local) / len(idx))
        grads = [(n, p.grad) for n, p in self.named if p.grad is not None]
        correct = (output.detach().argmax(1) == yb).sum() if yb is not None else None
        if self.world.distributed:
            loss, total, correct = self._all_reduce(grads, loss, total, correct)
        fault = self.check.check(loss, total, grads)
        self.pos.batch += 1
        self.pos.step += 1
        if fault is None:
            self._step(len(idx), loss, correct)
            self.scheduler.step()
        else:
            self._skip(fault, saved_buffers)
            # the schedule moves with the position, placed anew: stepping it before the optimiser has ever
            # stepped would make torch warn
            self.scheduler = self.schedule(self.milestones, self.pos.step)
        return output, xb, yb

    def _forward_backward(self, xb: torch.Tensor, yb: torch.Tensor | None, share: float):
        """The forward pass, the losses and their gradients; (output, task loss, total loss).

        Under data parallelism the task loss is this rank's ``share`` of the
        global batch's mean, and the regulariser counts on rank 0 only.
        """
        with batch_norm_over(self.world, self.model), _precision(self.t.precision, xb.device):
            output = self.model(xb)
        if output.dtype == torch.bfloat16:  # from autocast: the task loss in float32
            output = output.float()
        loss = task_loss(output, xb, yb, self.task)
        if self.world.distributed:
            loss = loss * share
        self.optimizer.zero_grad(set_to_none=True)
        regularizer = self.model.regularization()
        if self.extra_loss is not None:
            regularizer = regularizer + self.extra_loss(self.model)
        total = loss + (regularizer if self.world.rank == 0 else 0.0 * regularizer)  # counted once
        total.backward()
        return output, loss, total

    def _all_reduce(self, grads: list[tuple[str, torch.Tensor]], loss: torch.Tensor, total: torch.Tensor,
                    correct: torch.Tensor | None):
        """Sum the gradients, losses and correct count over the ranks, by one collective; (loss, total, correct)."""
        reduced = [g for _, g in grads] + [loss.detach().reshape(1), total.detach().reshape(1)]
        counts = [correct.to(loss.dtype).reshape(1)] if correct is not None else []
        self.world.all_reduce_(reduced + counts)
        return reduced[-2][0], reduced[-1][0], None if correct is None else counts[0][0].long()

    def _step(self, n: int, loss: torch.Tensor, correct: torch.Tensor | None) -> None:
        """Clip, step, re-project, and add the batch of ``n`` examples to the running sums."""
        if self.t.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_([p for _, p in self.named], self.t.grad_clip)
        self.optimizer.step()
        self.model.project_()
        self.check.after_step(self.pos.step)
        self.pos.in_a_row = 0
        self.pos.seen += n
        self.sums[0] += loss.detach() * n
        if correct is not None:
            self.sums[1] += correct
        self.stepped(loss)

    def _skip(self, fault: tuple[str, str], saved_buffers: list[torch.Tensor] | None) -> None:
        """Skip the batch of a non-finite ``fault`` (``(kind, name)``), restoring the buffers, or stop the run."""
        kind, name = fault
        pos = self.pos
        if kind == "parameter" or self.t.on_nan == "stop":
            raise NonFiniteError(_fault_message(kind, name, self.check.pending_step if kind == "parameter"
                                                else pos.step, pos.epoch + 1, pos.batch, self.saved_step))
        torch._foreach_copy_(self.buffers, saved_buffers)
        pos.skipped += 1
        pos.in_a_row += 1
        if pos.in_a_row >= MAX_SKIPPED_IN_A_ROW:
            raise NonFiniteError(_fault_message(kind, name, pos.step, pos.epoch + 1, pos.batch, self.saved_step,
                                                f", the {pos.in_a_row}th batch skipped in a row"))

    def _flush(self) -> None:
        """Stop the run if the last step left a non-finite parameter (before a checkpoint or an evaluation)."""
        bad = self.check.flush()
        if bad is not None:
            raise NonFiniteError(_fault_message("parameter", bad, self.check.pending_step, self.pos.epoch + 1,
                                                self.pos.batch, self.saved_step))

    def _shown(self, output: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor | None) -> dict[str, str]:
        """The progress bar's figures: the running loss, and the running accuracy or the batch's PSNR."""
        shown = {"loss": f"{float(self.sums[0]) / max(self.pos.seen, 1):.4f}"}
        if yb is not None:
            shown["acc"] = f"{float(self.sums[1]) / max(self.pos.seen, 1):.3f}"
        elif self.prep is not None:
            value = psnr(self.prep.invert(output.detach()), self.prep.invert(xb), self.peak).mean()
            shown["psnr"] = f"{float(value):.2f}"
        return shown

    def _record(self, lr: float) -> dict:
        """The record of the epoch at ``pos`` (its last step at rate ``lr``), from the running sums."""
        loss_sum, correct = (float(v) for v in self.sums.tolist())  # complete: waits for the device
        seen = max(self.pos.seen, 1)
        record = {"epoch": self.pos.epoch + 1, "step": self.pos.step, "lr": lr, "train_loss": loss_sum / seen}
        if self.task == "classify":
            record["train_acc"] = int(correct) / seen
        if self.t.on_nan == "skip":
            record["skipped_batches"] = self.pos.skipped
        return record


def fit(model: torch.nn.Module, x_train: torch.Tensor, y_train: torch.Tensor | None = None,
        config: TrainConfig | None = None, *, task: str = "classify",
        extra_loss: Callable[[torch.nn.Module], torch.Tensor] | None = None,
        on_epoch_end: Callable[[dict], None] | None = None) -> list[dict]:
    """Train ``model`` in memory by the recipe of :func:`train`, without a run folder; the epochs' records.

    The same loop (:class:`TrainState`), schedule, batch order, clipping,
    finiteness checks and re-projection as :func:`train`, on already
    preprocessed ``x_train`` ``(N, C, H, W)`` (labels ``(N,)`` to classify,
    None to reconstruct), on the model's device. ``model`` needs
    ``regularization()`` and ``project_()`` (an :class:`lgn.models.LGN` has
    both). ``extra_loss(model)`` is added to every step's loss. Each record
    holds ``epoch``, ``step``, ``lr``, ``train_loss`` (the task loss) and, to
    classify, ``train_acc``; it is passed to ``on_epoch_end``.
    """
    t = config or TrainConfig()
    if task not in ("classify", "reconstruct"):
        raise ValueError(f"task must be 'classify' or 'reconstruct', got {task!r}")
    if (y_train is None) != (task == "reconstruct"):
        raise ValueError(f"task {task!r} needs {'labels' if task == 'classify' else 'no labels'}, got "
                         f"{'none' if y_train is None else 'labels'}")
    trained = [p for p in model.parameters() if p.requires_grad]
    state = TrainState(model, torch.optim.Adam(trained, lr=t.lr, eps=t.adam_eps), t, task, x_train.device,
                       extra_loss=extra_loss, on_epoch_end=on_epoch_end)
    state.run(x_train, y_train)
    return state.pos.metrics


class _RunFolder(TrainState):
    """The :class:`TrainState` of :func:`train`: its hooks keep the run in the folder ``out`` (rank 0 writes).

    A checkpoint at every epoch end and every ``train.checkpoint_every``
    steps, alternating between the two slots; after each epoch the test
    split's evaluation, the model, the metrics line, the best epoch's weights
    when it is the best so far (:data:`BEST_BY`), ``run.json``, TensorBoard
    scalars and a log line. Every checkpoint holds the best epoch's weights
    too, so that a resumed run writes ``model-best.safetensors`` again from
    them, whatever an interruption left in the file.
    """

    def __init__(self, config: RunConfig, model: torch.nn.Module, device: torch.device, world: World, out: Path,
                 *, on_epoch_end: Callable[[dict], None] | None, log: Callable[[str], None] | None,
                 warn: Callable[[str], None] | None):
        t = config.train
        super().__init__(model, torch.optim.Adam(model.parameters(), lr=t.lr, eps=t.adam_eps), t,
                         config.model.task, device, world=world, on_epoch_end=on_epoch_end)
        self.config, self.out, self.device, self.log, self.warn = config, out, device, log, warn
        self.slot = CHECKPOINT_SLOTS[0]  # the slot the next checkpoint goes to
        self.test: tuple[torch.Tensor, torch.Tensor | None] | None = None  # the test split, preprocessed
        self.writer = None  # TensorBoard's SummaryWriter, with train.tensorboard
        self.epoch_seconds: list[float] = []  # wall seconds of each epoch of this process, for the time left
        self.epoch_started = 0.0
        self.init_from: dict | None = None  # run.json's record of the run whose weights this one started from
        self.best_from = 1  # the first epoch the best is chosen from (later for a run checkpointed before lgn
        #                     kept the best)
        self.best: dict[str, torch.Tensor] | None = None  # the best epoch's weights, on the CPU (rank 0)

    def start(self, resume: bool, n_batches: int, data_sha256: str, *, extend: bool = False) -> None:
        """Continue from the newest intact checkpoint (with ``resume``; to more epochs with ``extend``), else
        start from ``train.init_from``'s
        weights where set and clear the run's files; then every rank takes rank 0's model, optimiser and
        position. ``data_sha256`` (:func:`_data_digest`) goes into every checkpoint, and a resume onto other
        data is refused."""
        world, out = self.world, self.out
        self.data_sha256 = data_sha256
        found = None
        if world.writes and resume:
            found = load_checkpoint(out, self.model, self.optimizer,
                                    check=functools.partial(_check_resumable, config=self.config, model=self.model,
                                                            n_batches=n_batches, out=out, data_sha256=data_sha256,
                                                            extend=extend))
        if found is not None:
            self._continue(found, n_batches)
        elif world.writes:
            if resume and self.warn and never_completed(out):
                self.warn(f"{out}: {NEVER_COMPLETED}; starting afresh")
            if self.t.init_from is not None:
                self.init_from = _warm_start(self.model, self.t.init_from, self.config.model)
            clear_run_files(out, CHECKPOINT_FILES)
        if world.distributed:
            state = world.broadcast((self.model.state_dict(), self.optimizer.state_dict(), self.pos, self.sums)
                                    if world.writes else None)
            self.model.load_state_dict(state[0])
            self.optimizer.load_state_dict(state[1])
            self.pos, self.sums = state[2], state[3].to(self.device)
            world.setting_up = False

    def _continue(self, found: Checkpoint, n_batches: int) -> None:
        """Take the position and sums of the checkpoint ``found`` (model and optimiser are loaded already),
        in epochs of ``n_batches``."""
        for line in found.warnings if self.warn else []:
            self.warn(line)
        if self.warn and found.state.get("lr_milestones_in") != "steps":
            before, changed = _epoch_placed(self.t, n_batches, found.step)
            if changed is not None:
                self.warn(f"{self.out} was checkpointed before the learning-rate milestones were kept out of the "
                          f"first epoch (steps {before} then); it continues with them at steps "
                          f"{sorted(self.t.milestone_steps(n_batches))}, so its rate differs from step {changed} on")
        if self.warn and found.threads != torch.get_num_threads():
            self.warn(f"{self.out} was trained with {found.threads} CPU threads and this process uses "
                      f"{torch.get_num_threads()}: the resumed run will differ slightly from an uninterrupted one "
                      f"(bit-identical needs the same count, e.g. OMP_NUM_THREADS={found.threads})")
        self.pos = _Position(epoch=found.epoch, batch=found.batch, step=found.step,
                             **{k: v for k, v in found.state.items() if k in _Position.__dataclass_fields__})
        self.sums.copy_(found.tensors["sums"])
        self.slot, self.saved_step = next_slot(found.slot), found.step
        self.init_from = found.state.get("init_from")
        self.best_from = found.state.get("best_from", found.epoch + 1)  # absent: checkpointed before lgn kept it
        self.best = {k[len("best/"):]: v for k, v in found.tensors.items() if k.startswith("best/")} or None
        if self.best is not None:  # the file again, from the checkpoint: an interruption may have left a later one
            save_model(self.model, self.out, weights=BEST_WEIGHTS_FILE, state=self.best)
        before = _epochs_of(found.config)
        if before != self.t.epochs:  # _check_resumable let only a larger count through
            self.pos.extended.append({"from_epochs": before, "to_epochs": self.t.epochs, "step": found.step})
        if self.log:
            self.log(self._resuming(n_batches, before))

    def _resuming(self, n_batches: int, before: int) -> str:
        """The line saying where the run resumes (``before``: the epochs its checkpoint was set to), or that it
        has nothing left to train; for an extension, the rate its new epochs train at."""
        pos, t = self.pos, self.t
        if pos.epoch == t.epochs:
            return (f"{self.out} has finished its {t.epochs} epochs: nothing to train; to extend it, resume with "
                    f"more epochs (--epochs above {t.epochs})")
        line = (f"resuming {self.out} in epoch {pos.epoch + 1} of {t.epochs}, after batch {pos.batch} of "
                f"{n_batches}" if pos.batch else f"resuming {self.out} after epoch {pos.epoch} of {t.epochs}")
        if before == t.epochs:
            return line
        first = pos.schedule_epochs(t.epochs)
        end = t.lr * t.lr_factor(first * n_batches, sorted(t.milestone_steps(n_batches, first)))
        return (f"{line}, extended from {before} epochs at step {pos.step}: the learning-rate schedule of its "
                f"first {first} epochs is kept, and epochs {first + 1}-{t.epochs} train at its final rate {end:g}")

    def prepare(self, dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Fit the input scaling on the training split, write the run's first files and open TensorBoard;
        the training split scaled, on the device, and its labels (None to reconstruct)."""
        d, device = self.config.data, self.device
        prep = fit_preprocessing(dataset.x_train, zca=d.zca, zca_epsilon=d.zca_epsilon)
        x_train, x_test = prep(dataset.x_train).to(device), prep(dataset.x_test).to(device)
        y_train, y_test = (None, None) if self.task == "reconstruct" else (dataset.y_train.to(device),
                                                                            dataset.y_test.to(device))
        if self.world.writes:
            self.out.mkdir(parents=True, exist_ok=True)
            write_config(self.out, self.config.to_dict())
            save_preprocessing(prep, self.out)
            write_metrics(self.out, self.pos.metrics)
            write_run_record(self.out, self.run_record())
        self.prep, self.peak, self.test = prep.to(device), dataset.value_range, (x_test, y_test)
        if self.t.tensorboard and self.world.writes:
            self.writer = _summary_writer_class(self.out)(log_dir=str(self.out / TENSORBOARD_DIR))
        return x_train, y_train

    def run(self, x: torch.Tensor, y: torch.Tensor | None) -> None:
        """:meth:`TrainState.run`, first saying if the schedule is degenerate (once set-up has succeeded)."""
        line = self.t.schedule_warning(math.ceil(len(x) / self.t.batch_size), self.pos.schedule_epochs(self.t.epochs))
        if line and self.warn:
            self.warn(line)
        self.epoch_started = time.perf_counter()  # the pace of this process's epochs
        try:
            super().run(x, y)
        finally:
            if self.writer is not None:
                self.writer.close()

    def stepped(self, loss: torch.Tensor) -> None:
        """With TensorBoard, the step's loss and learning rate (lgn.train.board)."""
        if self.writer is not None:
            log_step(self.writer, self.pos.step, loss.item(), self.optimizer.param_groups[0]["lr"])

    def checkpoint(self) -> None:
        """Write the position reached into the next slot, never with a non-finite parameter."""
        self._flush()
        if self.world.writes:
            pos = self.pos
            best = {f"best/{k}": v for k, v in (self.best or {}).items()}
            save_checkpoint(self.out, self.model, self.optimizer, Checkpoint(
                epoch=pos.epoch, step=pos.step, config=self.config.to_dict(), batch=pos.batch,
                state={**pos.state(), "lr_milestones_in": "steps", "data_sha256": self.data_sha256,
                       "init_from": self.init_from, "best_from": self.best_from},
                tensors={"sums": self.sums, **best}, slot=self.slot))
            self.slot = next_slot(self.slot)
        self.saved_step = self.pos.step

    def measure(self, record: dict) -> None:
        """Add the test split's scores and the epoch's times (rank 0 evaluates)."""
        if not self.world.writes:
            return
        start = time.perf_counter()
        x_test, y_test = self.test
        test = evaluate(self.model, x_test, y_test, task=self.task, batch_size=self.t.eval_batch_size,
                        preprocessing=self.prep, peak=self.peak)
        bad = {k: v for k, v in test.items() if not math.isfinite(v)}
        if bad:  # metrics.jsonl holds strict JSON, and a NaN score is no result
            key, value = next(iter(bad.items()))
            raise NonFiniteError(f"non-finite test_{key} ({value}) in the evaluation after epoch "
                                 f"{record['epoch']}: the data's values are too large to compute it in "
                                 f"float32; " + _kept(self.saved_step))
        record.update({f"test_{k}": v for k, v in test.items()})
        record.update(train_seconds=self.pos.seconds, eval_seconds=time.perf_counter() - start)

    def best_epoch(self) -> int | None:
        """The epoch (1-based) of the highest :data:`BEST_BY` metric among the completed epochs from
        ``best_from`` on, the first of equals; None before one."""
        metric = BEST_BY[self.task]
        candidates = self.pos.metrics[self.best_from - 1:]
        return max(candidates, key=lambda r: r[metric])["epoch"] if candidates else None

    def run_record(self) -> dict:
        """What ``run.json`` holds (:mod:`lgn.runs.records`): the run's start, extensions and best epoch."""
        epoch = self.best_epoch()
        best = None if epoch is None else {
            "epoch": epoch, "metric": BEST_BY[self.task], "split": "test",
            "value": self.pos.metrics[epoch - 1][BEST_BY[self.task]], "file": BEST_WEIGHTS_FILE,
            "chosen_from_epochs": [self.best_from, self.pos.epoch]}
        return {"init_from": self.init_from, "extended": self.pos.extended, "best": best}

    def finish(self, record: dict) -> None:
        """The epoch's model, metrics line, best weights (if it is the best so far), checkpoint and ``run.json``,
        its TensorBoard entries and log line."""
        if self.world.writes:
            save_model(self.model, self.out)
            append_metrics(self.out, record)
            if self.best_epoch() == record["epoch"]:
                self.best = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
                save_model(self.model, self.out, weights=BEST_WEIGHTS_FILE)
        self.checkpoint()
        if self.world.writes:
            write_run_record(self.out, self.run_record())
        if self.writer is not None:
            log_epoch(self.writer, record["epoch"], record, self.model)
        now = time.perf_counter()
        self.epoch_seconds.append(now - self.epoch_started)  # training, evaluation and writing
        self.epoch_started = now
        if self.log:
            self.log(_summary(record, self.t.epochs, seconds_left(self.epoch_seconds, self.t.epochs - record["epoch"])))
        super().finish(record)


def _epochs_of(config: dict) -> int:
    """``train.epochs`` of a saved config (its default where a run saved before the key existed)."""
    return config.get("train", {}).get("epochs", TrainConfig.epochs)


def _check_resumable(found: Checkpoint, *, config: RunConfig, model: torch.nn.Module, n_batches: int, out: Path,
                     data_sha256: str, extend: bool) -> None:
    """The test a checkpoint of ``out`` must pass to be resumed under ``config`` (epochs of ``n_batches``)
    on training data of digest ``data_sha256``, into ``model``.

    Settings that differ (except :data:`MUTABLE_ON_RESUME`, and, with ``extend``,
    ``train.epochs`` grown), or training data other than the checkpoint's (a
    checkpoint written before digests were recorded has none to compare), raise
    ``ValueError``; a position or state that cannot have come from such a run
    raises :class:`CheckpointError` naming the field.
    """
    t = config.train
    before = _epochs_of(found.config)
    if extend and t.epochs < before:
        raise ValueError(f"cannot resume {out} with {t.epochs} epochs: it is set to {before}, and a run is "
                         f"extended, never shortened: give --epochs above {before}")
    changed = _changes(found.config, config.to_dict(), MUTABLE_ON_RESUME + (("train.epochs",) if extend else ()))
    if changed:
        hint = ("; only train.epochs may change, to extend the run" if extend and before != t.epochs
                else "; to extend the run to more epochs, pass extend=True" if not extend and t.epochs > before
                else "")
        raise ValueError(f"cannot resume {out}: its settings differ in {'; '.join(changed)}{hint}")
    saved = found.state.get("data_sha256", data_sha256)
    if type(saved) is not str:
        raise CheckpointError("state.data_sha256", f"must be a SHA-256 in hex, got {saved!r}"[:200])
    if saved != data_sha256:
        raise ValueError(f"cannot resume {out}: the training data of {config.data.name[:200]} changed since the run "
                         f"began (SHA-256 {data_sha256[:16]}..., the run's {saved[:16]}...); give the run its "
                         f"own data back, or start it over with --force")
    if found.epoch > t.epochs:
        raise CheckpointError("epoch", f"must be in 0..{t.epochs} (train.epochs), got {found.epoch}")
    if found.batch >= n_batches or found.epoch == t.epochs and found.batch:
        raise CheckpointError("batch", f"must be in 0..{n_batches - 1} (the batches of an epoch), "
                                       f"got {found.batch}")
    if found.step != found.epoch * n_batches + found.batch:
        raise CheckpointError("step", f"must be epoch·{n_batches} + batch = "
                                      f"{found.epoch * n_batches + found.batch}, got {found.step}")
    _check_state(found, t.batch_size, n_batches)
    sums = found.tensors.get("sums")
    if sums is None or sums.shape != (2,) or sums.dtype != torch.float32 or not bool(sums.isfinite().all()):
        raise CheckpointError("extra/sums", "must be 2 finite float32 values")
    _check_record_state(found, before)
    _check_best(found, model)


def _check_record_state(found: Checkpoint, epochs: int) -> None:
    """What a checkpoint keeps for ``run.json``, against its position and its ``epochs`` (``train.epochs``):
    the extensions, the run it started from, the first epoch the best is chosen from."""
    state = found.state
    extended = state.get("extended", [])
    if not isinstance(extended, list):
        raise CheckpointError("state.extended", f"must be a list, got {type(extended).__name__}")
    to, step = None, 0
    for i, entry in enumerate(extended):
        where = f"state.extended[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"from_epochs", "to_epochs", "step"} \
                or any(type(v) is not int for v in entry.values()):
            raise CheckpointError(where, "must be {from_epochs, to_epochs, step}, integers")
        if not 1 <= entry["from_epochs"] < entry["to_epochs"] or to not in (None, entry["from_epochs"]) \
                or not step <= entry["step"] <= found.step:
            raise CheckpointError(where, f"must extend the run from where the previous extension left it, at a "
                                         f"step in {step}..{found.step}, got {entry!r}"[:200])
        to, step = entry["to_epochs"], entry["step"]
    if to not in (None, epochs):
        raise CheckpointError("state.extended", f"must end at the run's {epochs} epochs, got {to}")
    init_from = state.get("init_from")
    if init_from is not None and (not isinstance(init_from, dict)
                                  or any(type(v) not in (str, list) for v in init_from.values())):
        raise CheckpointError("state.init_from", "must be none or the record of a run folder")
    best_from = state.get("best_from", found.epoch + 1)
    if type(best_from) is not int or not 1 <= best_from <= found.epoch + 1:
        raise CheckpointError("state.best_from", f"must be an integer in 1..{found.epoch + 1}, got {best_from!r}"[:200])


def _check_best(found: Checkpoint, model: torch.nn.Module) -> None:
    """The best epoch's weights a checkpoint holds (``extra/best/KEY``): ``model``'s keys, shapes and dtypes,
    finite; there exactly when an epoch has been chosen from (``state.best_from`` ≤ ``epoch``)."""
    best = {k[len("best/"):]: v for k, v in found.tensors.items() if k.startswith("best/")}
    chosen = found.state.get("best_from", found.epoch + 1) <= found.epoch
    if not chosen:
        if best:
            raise CheckpointError("extra/best/", "must be absent before an epoch is complete")
        return
    expected = model.state_dict()
    missing = sorted(set(expected) ^ set(best))
    if missing:
        raise CheckpointError(f"extra/best/{missing[0]}", "must be the model's tensors, no more, no fewer")
    named = {f"extra/best/{key}": value for key, value in best.items()}
    for key, value in expected.items():
        check_tensor(named, f"extra/best/{key}", value.shape, value.dtype)


def _data_digest(dataset: Dataset) -> str:
    """SHA-256 of the training split as the model sees it before scaling: images (and labels), their
    shapes and dtypes; about a second for CIFAR-10's 600 MB, once a run."""
    digest = hashlib.sha256()
    for array in (dataset.x_train, dataset.y_train):
        if array is not None:
            array = array.detach().contiguous().cpu()
            digest.update(f"{tuple(array.shape)} {array.dtype};".encode())
            digest.update(array.view(torch.uint8).numpy() if array.numel() else b"")
    return digest.hexdigest()


def _check_state(found: Checkpoint, batch_size: int, n_batches: int) -> None:
    """The loop's state in a checkpoint (:meth:`_Position.state`) against its position, field by field."""
    state = found.state
    if state.get("lr_milestones_in", "steps") != "steps":  # absent before milestones were placed in steps
        raise CheckpointError("state.lr_milestones_in", f"must be 'steps', got {state['lr_milestones_in']!r}"[:200])
    limits = {"seen": found.batch * batch_size, "skipped": found.batch, "in_a_row": found.step}
    for key, high in limits.items():
        value = state.get(key)
        if type(value) is not int or not 0 <= value <= high:
            raise CheckpointError(f"state.{key}", f"must be an integer in 0..{high}, got {value!r}"[:200])
    seconds = state.get("seconds")
    if type(seconds) not in (int, float) or not 0 <= seconds < math.inf:
        raise CheckpointError("state.seconds", f"must be a non-negative number, got {seconds!r}"[:200])
    metrics = state.get("metrics")
    if not isinstance(metrics, list) or len(metrics) != found.epoch:
        raise CheckpointError("state.metrics", f"must be a list of {found.epoch} epoch records")
    for i, record in enumerate(metrics):
        if not isinstance(record, dict) or record.get("epoch") != i + 1 or any(
                type(v) not in (int, float) or not math.isfinite(v) for v in record.values()):
            raise CheckpointError(f"state.metrics[{i}]", f"must be the finite record of epoch {i + 1}")
        _check_record(record, f"state.metrics[{i}]", n_batches)
    if found.optimizer_steps is not None:  # Adam steps on every batch but the skipped ones
        taken = found.step - sum(int(r.get("skipped_batches", 0)) for r in metrics) - state["skipped"]
        if found.optimizer_steps != taken:
            raise CheckpointError("optimizer/", f"holds the state of {found.optimizer_steps} optimiser steps, "
                                                f"but the position says {taken}")


def _epoch_placed(t: TrainConfig, n_batches: int, step: int) -> tuple[list[int], int | None]:
    """Where the milestones were, in steps, before they were kept out of the first epoch (each at the start of
    epoch ⌊f·epochs⌋, also epoch 0), and the first step from ``step`` on whose rate differs now (None if none
    does: only a one-epoch run's)."""
    before, now = sorted(int(f * t.epochs) * n_batches for f in t.lr_milestones), sorted(t.milestone_steps(n_batches))
    ends = {step, *before, *now}  # the rates of both are constant between these
    changed = [q for q in sorted(ends) if step <= q < t.epochs * n_batches
               and bisect.bisect_right(before, q) != bisect.bisect_right(now, q)]
    return before, changed[0] if changed else None


def _check_record(record: dict, where: str, n_batches: int) -> None:
    """One epoch's finite metrics record against what a run can compute: accuracies in [0, 1], losses,
    times and the learning rate not negative, the step at the epoch's end, whole skipped batches."""
    epoch = record["epoch"]
    for key, value in record.items():
        if key.endswith("_acc") and not 0 <= value <= 1:
            raise CheckpointError(f"{where}.{key}", f"must be an accuracy in [0, 1], got {value!r}")
        if key.endswith(("_loss", "_seconds")) or key == "lr":
            if value < 0:
                raise CheckpointError(f"{where}.{key}", f"must not be negative, got {value!r}")
    if "step" in record and record["step"] != epoch * n_batches:
        raise CheckpointError(f"{where}.step", f"must be epoch·{n_batches} = {epoch * n_batches} "
                                               f"(the batches of {epoch} epochs), got {record['step']!r}")
    skipped = record.get("skipped_batches", 0)
    if type(skipped) is not int or not 0 <= skipped <= n_batches:
        raise CheckpointError(f"{where}.skipped_batches", f"must be an integer in 0..{n_batches}, got {skipped!r}")


def _warm_start(model: torch.nn.Module, source: str, config: ModelConfig) -> dict:
    """Load the weights of the run folder ``source`` (its ``model.safetensors``, the last epoch's) into
    ``model``, this run's, of ``config``; the record of where they came from, for ``run.json``.

    Refused in one line naming the first tensor that does not fit, and the
    model settings that differ. Settings that leave every tensor's shape as it
    is (the regulariser's weight, say) may differ; the record lists them.
    """
    folder = Path(source)
    if not (folder / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"cannot start from {source} (train.init_from): it holds no {WEIGHTS_FILE}, so it "
                                f"is no run folder of lgn train")
    data = (folder / WEIGHTS_FILE).read_bytes()
    loaded = load_model(folder)  # safetensors and model.json, each checked
    theirs, ours = loaded.state_dict(), model.state_dict()
    ours_settings = config.to_dict()
    settings = [f"model.{key} {value!r} → {ours_settings.get(key)!r}"
                for key, value in loaded.config.to_dict().items() if ours_settings.get(key) != value]
    misfit = next((f"{key} is missing there" for key in ours if key not in theirs), None) or next(
        (f"{key} is not in this model" for key in theirs if key not in ours), None) or next(
        (f"{key} has shape {tuple(theirs[key].shape)} there and {tuple(ours[key].shape)} here"
         for key in ours if theirs[key].shape != ours[key].shape), None)
    if misfit is not None:
        differ = f" (model settings that differ: {', '.join(settings)})" if settings else ""
        raise ValueError(f"cannot start from {source} (train.init_from): its weights do not fit this model: "
                         f"{misfit}{differ}")
    model.load_state_dict(theirs)
    return {"run": str(folder.resolve()), "weights": WEIGHTS_FILE, "sha256": hashlib.sha256(data).hexdigest(),
            "model_settings_changed": settings}


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def train(settings: dict, out: str | Path, *, resume: bool = False, force: bool = False, extend: bool = False,
          log: Callable[[str], None] | None = print,
          on_epoch_end: Callable[[dict], None] | None = None,
          warn: Callable[[str], None] | None = _warn) -> TrainResult:
    """Train as ``settings`` say (a nested dict, see :mod:`lgn.train.config`) into the run folder ``out``.

    ``resume`` continues the newest intact checkpoint in ``out`` (or starts
    afresh if it has none), reusing ``out``'s saved config as the base of
    ``settings``; with ``extend`` too, a ``train.epochs`` above the run's
    extends it (its learning-rate schedule kept: README, "Extend, warm-start, best epoch"), where
    without it every changed setting is refused (a caller that needs the run
    its settings describe, as ``lgn reproduce`` does, is never handed an
    extended one). ``force`` overwrites the run files of a non-empty ``out``.
    ``log`` receives one line per epoch; ``on_epoch_end`` each epoch's metrics
    record once it and the checkpoint are saved; ``warn`` a line when a
    damaged checkpoint is passed over (default: stderr).

    Under ``torchrun`` (``WORLD_SIZE`` > 1) the ranks train data-parallel
    (:mod:`lgn.train.distributed`); only rank 0 writes, logs and returns the
    metrics.
    """
    world, device_name = from_environment(settings.get("train", {}).get("device", "cpu"))
    try:
        with contextlib.ExitStack() as stack:
            out = Path(out)
            if world.writes:  # one writer per run folder, from before anything in it is read
                out = stack.enter_context(lock_run_dir(check_run_dir(out, resume=resume, force=force)))
            hooks = dict(log=log if world.writes else None, on_epoch_end=on_epoch_end,
                         warn=warn if world.writes else None)
            return _train(settings, out, resume=resume, extend=extend, hooks=hooks, world=world,
                          device_name=device_name)
    except Exception as e:
        world.fail(e)  # an error of rank 0's set-up (a refused run folder, a damaged checkpoint) stops all ranks
        raise
    finally:
        world.close()


def _train(settings: dict, out: Path, *, resume: bool, extend: bool, hooks: dict, world: World,
           device_name: str) -> TrainResult:
    """:func:`train` in its locked run folder; ``hooks``: the :class:`_RunFolder`'s ``log``, ``on_epoch_end``
    and ``warn``."""
    config, dataset, device = _resolve(settings, out, resume=resume, world=world, device_name=device_name)
    torch.manual_seed(config.train.seed)
    check_model_fits(config.model, copies=4, batch=config.train.batch_size)  # weights, gradients, Adam's
    # two moments, and a step's activations
    state = _RunFolder(config, build_model(config.model).to(device), device, world, out, **hooks)
    state.start(resume, math.ceil(len(dataset.x_train) / config.train.batch_size),
                _data_digest(dataset) if world.writes else "", extend=extend)
    state.run(*state.prepare(dataset))
    return TrainResult(out, config, state.pos.metrics if world.writes else [])


def _resolve(settings: dict, out: Path, *, resume: bool, world: World,
             device_name: str) -> tuple[RunConfig, Dataset, torch.device]:
    """The run's settings resolved, once: (config, dataset, device).

    On resume the run folder's saved config is the base of ``settings``; rank
    0's settings are every rank's. Each section is parsed once: ``train`` (the
    device checked and the TensorBoard extra looked for before the data
    loads), ``data`` (the dataset loaded) and ``model`` (fitted to the data).
    """
    if world.writes and resume:
        saved = read_config(out)
        if saved is not None:  # the run's own config is the base of what the caller sets
            settings = _merge(check_settings(saved, str(out / CONFIG_FILE)), settings)
    settings = world.broadcast(settings)
    if not settings.get("data", {}).get("name"):
        raise ValueError("no dataset: give --dataset NAME (or data.name in the config)")
    t = TrainConfig(**settings.get("train", {}))
    device = resolve_device(device_name if world.distributed else t.device)
    if t.tensorboard and world.writes:
        _summary_writer_class(out)
    d = DataConfig(**settings.get("data", {}))
    dataset = get_dataset(d.name, data_dir=d.data_dir, seed=t.seed, **d.options).subset(d.train_subset,
                                                                                         d.test_subset)
    return RunConfig(model=resolve_model(settings.get("model", {}), dataset), train=t, data=d), dataset, device
