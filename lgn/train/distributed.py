"""Data-parallel training on several processes with ``torch.distributed`` (gloo on CPU, NCCL on CUDA).

Launched by ``torchrun`` (or ``lgn train --nproc N``), each process reads its
rank from the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``/``MASTER_PORT``). Every global batch is split across the
ranks in a fixed way; each rank's loss is its share of the global mean, the
regulariser is counted on rank 0 only, and the gradients (with the loss and the
correct-prediction count) are summed by one all-reduce, so every rank takes
the same step as one process would. Batch normalisation takes its statistics
over the global batch (:func:`batch_norm_over`: the :class:`World` is the
``group`` of the model's :class:`lgn.nn.batchnorm.BatchNorm2d` modules).
Only rank 0 writes files; it evaluates, and it sends its model, optimiser and
position to the others at the start (so a resumed run needs the run folder on
rank 0's machine only).

The gradients are summed by that one all-reduce rather than by
``DistributedDataParallel``: measured, DDP was no faster at these models' sizes
(their gradients fit its first bucket, so nothing overlaps the backward pass,
and it needs a second collective for the loss), while it would need
``find_unused_parameters`` and the regulariser inside a wrapped forward for
annealed generators that freeze, and buffers left to our batch norm. The
numbers are in docs/performance.md ("Data-parallel gradients").
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from lgn.nn.batchnorm import BatchNorm2d

__all__ = ["World", "SINGLE", "from_environment", "batch_norm_over", "TIMEOUT_SECONDS", "PeerError",
           "CollectiveError"]

# how long a collective may wait for a rank before the job fails (LGN_DIST_TIMEOUT overrides)
TIMEOUT_SECONDS = 600


class PeerError(ValueError):
    """Rank 0 stopped with an error (which it reports); raised on the other ranks instead of waiting for it."""


class CollectiveError(RuntimeError):
    """A collective operation failed: another process of the group stopped (its error is the one to report)."""

    @classmethod
    def of(cls, error: BaseException) -> "CollectiveError":
        return cls(f"another process stopped during a collective: {str(error).splitlines()[0][:200]}")


class _Failure:
    def __init__(self, message: str):
        self.message = message


class World:
    """The ranks of a data-parallel run: one process (``SINGLE``) or a ``torch.distributed`` group."""

    def __init__(self, rank: int = 0, size: int = 1, local_rank: int = 0, owns_group: bool = False):
        self.rank, self.size, self.local_rank = rank, size, local_rank
        self.owns_group = owns_group  # whether lgn initialised the process group (and so may destroy it)
        self.setting_up = True  # until rank 0 has sent its start state: the others then wait in a broadcast
        self.left = False  # set-up failed on rank 0 (sent to, or received from, it): the ranks are leaving

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def writes(self) -> bool:
        """Whether this rank writes files and logs (rank 0)."""
        return self.rank == 0

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's part of the global batch ``idx`` ``(B,)``: contiguous, sizes differing by at most one."""
        return idx.tensor_split(self.size)[self.rank] if self.distributed else idx

    def all_reduce_(self, tensors: list[torch.Tensor]) -> None:
        """Sum each tensor over the ranks, in place, by one collective over a flat buffer."""
        if not self.distributed or not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        try:
            dist.all_reduce(flat)
        except RuntimeError as e:  # gloo's or NCCL's error when another rank died
            raise CollectiveError.of(e) from None
        torch._foreach_copy_(tensors, [v.view_as(t) for v, t in zip(flat.split([t.numel() for t in tensors]),
                                                                         tensors)])

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank (pickled between our own processes only).

        Raises :class:`PeerError` on the other ranks where rank 0 sent :meth:`fail` instead.
        """
        if not self.distributed:
            return obj
        box = [obj if self.rank == 0 else None]
        try:
            dist.broadcast_object_list(box, src=0)
        except RuntimeError as e:
            raise CollectiveError.of(e) from None
        if isinstance(box[0], _Failure):
            self.left = True
            raise PeerError(f"rank 0 stopped: {box[0].message}")
        return box[0]

    def fail(self, error: BaseException) -> None:
        """On rank 0, before raising ``error`` during set-up: make the others' next :meth:`broadcast` raise it too.

        Without this they would wait in that collective until rank 0's exit
        breaks it, and fail there with a traceback of their own.
        """
        if not self.distributed or self.rank != 0 or not self.setting_up:
            return
        self.left = True
        try:
            dist.broadcast_object_list([_Failure(str(error) or type(error).__name__)], src=0)
        except Exception:  # the others are gone already: rank 0's own error is what matters
            pass

    def close(self) -> None:
        """Destroy the process group if :func:`from_environment` initialised it; a caller's own group stays.

        After a set-up failure (:meth:`fail` on rank 0, :class:`PeerError` on the others) the group is
        left as it is: every rank is on its way out, and tearing gloo down while a peer exits
        aborted the process now and then ("terminate called without an active exception").
        """
        if self.owns_group and dist.is_initialized() and not self.left:
            dist.destroy_process_group()
        self.owns_group = False


SINGLE = World()


def from_environment(device: str) -> tuple[World, str]:
    """The world torchrun describes in the environment, initialised, and this rank's device.

    Without ``WORLD_SIZE`` > 1 it is :data:`SINGLE` and ``device`` unchanged.
    With CUDA, rank r uses ``cuda:LOCAL_RANK`` and NCCL; on CPU, gloo.
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return SINGLE, device
    if not dist.is_available():
        raise ValueError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    timeout = timedelta(seconds=float(os.environ.get("LGN_DIST_TIMEOUT", TIMEOUT_SECONDS)))
    if device.startswith("cuda"):
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
        backend = "nccl"
    else:
        backend = "gloo"
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group(backend=backend, timeout=timeout)
    if dist.get_world_size() != size or dist.get_rank() != rank:
        found = f"the process group ({dist.get_rank()} of {dist.get_world_size()}) does not match " \
                f"RANK={rank}, WORLD_SIZE={size}"
        if owns_group:
            dist.destroy_process_group()
        raise ValueError(found)
    return World(rank, size, local_rank, owns_group), device


@contextlib.contextmanager
def batch_norm_over(world: World, model: nn.Module):
    """Within this block, the training-mode batch norms of ``model`` take their statistics over the global
    batch of ``world``'s ranks (each :class:`~lgn.nn.batchnorm.BatchNorm2d` sums through
    :meth:`World.all_reduce_`); a no-op for one process."""
    if not world.distributed:
        yield
        return
    norms = [m for m in model.modules() if isinstance(m, BatchNorm2d)]
    for norm in norms:
        norm.group = world
    try:
        yield
    finally:
        for norm in norms:
            norm.group = None
