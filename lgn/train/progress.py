"""How far a run is, for a person watching: its pace, and the time it still needs.

On a terminal a run draws tqdm's bar. Away from one (a batch job, a pipe, ``nohup``) a bar
draws nothing, and a 100-epoch run would be silent for hours between its epoch lines:
:class:`ProgressLines` prints a line to stderr every ``every`` seconds instead (step,
images per second, time left).

The time left is the pace of the epochs after the first times the epochs left
(:func:`seconds_left`): the first epoch of a process pays for warming up (allocator,
kernels chosen, batch-norm statistics recomputed after it), and was the slower one in
docs/performance.md's two-epoch Fashion-MNIST runs (21.6 s against 17.0 s, 22.5 against
16.3 s), so counting it made every estimate of a long run too long.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

__all__ = ["ProgressLines", "seconds_left", "duration"]


def duration(seconds: float) -> str:
    """``seconds`` as ``'42 s'``, ``'7.5 min'`` or ``'2.3 h'``."""
    if seconds < 100:
        return f"{seconds:.0f} s"
    if seconds < 6000:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def seconds_left(epoch_seconds: list[float], epochs_left: int) -> float | None:
    """The seconds ``epochs_left`` more epochs should take, from the durations of this process's epochs so
    far (oldest first): their mean, leaving out the first once there is another. None before any epoch."""
    if not epoch_seconds:
        return None
    paced = epoch_seconds[1:] or epoch_seconds
    return sum(paced) / len(paced) * epochs_left


class ProgressLines:
    """A line to ``stream`` every ``every`` seconds while training, for a run away from a terminal.

    ``lgn train [12.5 min]: step 1,280/3,200 (epoch 3/8), 412 images/s, 5.6 min left``. Call
    :meth:`update` after every optimiser step with the images it took. The pace of the epochs after the
    first counts for the time left (see :func:`seconds_left`); within the first epoch, its own pace.
    """

    def __init__(self, total_steps: int, steps_per_epoch: int, epochs: int, *, first_step: int = 0,
                 every: float = 30.0, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.total, self.per_epoch, self.epochs = total_steps, steps_per_epoch, epochs
        self.every, self.stream, self.clock = every, stream, clock
        self.step = self.first_step = first_step
        self.start = self.last_line = self.epoch_start = clock()
        self.images = 0
        self.epoch_seconds: list[float] = []  # durations of this process's whole epochs

    def update(self, images: int) -> None:
        """One optimiser step of ``images`` images is done."""
        self.step += 1
        self.images += images
        now = self.clock()
        if self.step % self.per_epoch == 0:
            self.epoch_seconds.append(now - self.epoch_start)
            self.epoch_start = now
        if now - self.last_line >= self.every:
            self.last_line = now
            print(self.line(now), file=self.stream or sys.stderr, flush=True)

    def line(self, now: float) -> str:
        """The progress line at time ``now``."""
        elapsed, done = now - self.start, self.step - self.first_step
        steps_left = self.total - self.step
        if self.epoch_seconds:  # the epochs after this process's first, once there is one
            per_step = seconds_left(self.epoch_seconds, 1) / self.per_epoch
        else:  # within the first: its own pace so far
            per_step = elapsed / done if done else None
        left = "" if per_step is None else f", {duration(per_step * steps_left)} left"
        epoch = min(self.step // self.per_epoch + 1, self.epochs)
        rate = self.images / elapsed if elapsed > 0 else 0.0
        return (f"lgn train [{duration(elapsed)}]: step {self.step:,}/{self.total:,} (epoch {epoch}/{self.epochs}), "
                f"{rate:,.0f} images/s{left}")
