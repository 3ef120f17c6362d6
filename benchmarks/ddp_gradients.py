"""Would ``DistributedDataParallel`` do the data-parallel gradient sum better than lgn's one all-reduce?

``python -m torch.distributed.run --standalone --nproc_per_node=2 -m benchmarks.ddp_gradients
[--shape mnist|cifar|tiny] [--rounds N] [--steps S]`` (gloo on CPU; one thread per process is the caller's
choice, e.g. ``OMP_NUM_THREADS=1``). Each rank holds half of a global batch of 128 and takes lgn's training
step without the optimiser (so every step computes the same gradients), in three ways:

- ``hand``: what ``lgn/train/loop.py`` does: backward, then one all-reduce of the gradients together
  with the loss, the regularised loss and the correct count;
- ``ddp``: ``DistributedDataParallel`` with a comm hook that sums (its default averages; lgn's loss is
  each rank's share of the global mean), then one all-reduce of the three numbers;
- ``ddp-find-unused``: the same with ``find_unused_parameters=True`` and the regulariser computed inside
  the wrapped forward, which is what a model whose annealed generators have frozen needs (their
  logits get no gradient; plain ``ddp`` then fails at the next step, shown last).

It prints the median time of a step per variant over rounds that alternate the variants (order flipped each
round), whether the gradients equal the hand-written ones bit for bit, the latency of one gloo all-reduce
of 3 values and of the model's gradients, and what plain ``ddp`` does with a frozen ``select`` generator.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lgn.models import build_model
from lgn.train.distributed import batch_norm_over, from_environment

SHAPES = {  # build_model settings and the image size
    "mnist": ({}, 28),
    "cifar": ({"in_channels": 3, "image_size": 32}, 32),
    "tiny": ({"n_layers": 2, "n_groups": 2, "group_size": 2, "kernel_size": 3, "image_size": 10}, 10),
}
VARIANTS = ("hand", "ddp", "ddp-find-unused")


def sum_hook(state, bucket):
    """DDP's all-reduce of a bucket without its division by the world size."""
    return dist.all_reduce(bucket.buffer(), async_op=True).get_future().then(lambda f: f.value()[0])


class Objective(nn.Module):
    """The model's output and its regulariser from one forward, so that DDP sees every parameter used."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x), self.model.regularization()


def wrap(module: nn.Module, find_unused: bool) -> DistributedDataParallel:
    # broadcast_buffers=False: the batch norms' statistics are synchronised by lgn itself (deprecated in
    # torch 2.13 in favour of forward_sync_buffers, which torch 2.4 lacks)
    ddp = DistributedDataParallel(module, broadcast_buffers=False, find_unused_parameters=find_unused)
    ddp.register_comm_hook(None, sum_hook)
    return ddp


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", choices=sorted(SHAPES), default="mnist")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--steps", type=int, default=10, help="steps per variant and round")
    args = p.parse_args(argv)
    world, _ = from_environment("cpu")
    if world.size != 2:
        raise SystemExit("run under torchrun with --nproc_per_node=2")
    settings, size = SHAPES[args.shape]
    torch.manual_seed(0)
    model = build_model(**settings)
    g = torch.Generator().manual_seed(1 + world.rank)
    x = torch.randn(64, model.config.in_channels, size, size, generator=g)  # this rank's half of 128
    y = torch.randint(0, model.config.num_classes, (64,), generator=g)
    ddp, ddp_find = wrap(model, False), wrap(Objective(model), True)

    def step(variant: str) -> list[torch.Tensor]:
        with batch_norm_over(world, model):
            if variant == "ddp-find-unused":
                out, reg = ddp_find(x)
            else:
                out = (ddp if variant == "ddp" else model)(x)
                reg = model.regularization()
        loss = F.cross_entropy(out, y) * 0.5  # this rank's share of the global mean
        total = loss + (reg if world.rank == 0 else 0.0 * reg)  # the regulariser counted once
        model.zero_grad(set_to_none=True)
        total.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        correct = (out.detach().argmax(1) == y).sum().to(loss.dtype).reshape(1)
        numbers = [loss.detach().reshape(1), total.detach().reshape(1), correct]
        world.all_reduce_((grads if variant == "hand" else []) + numbers)  # DDP summed the gradients in backward
        return [g.clone() for g in grads]

    first = {v: step(v) for v in VARIANTS}  # a warm-up (DDP builds its buckets), and gradients to compare
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        for v in VARIANTS if r % 2 == 0 else VARIANTS[::-1]:
            dist.barrier()
            start = time.perf_counter()
            for _ in range(args.steps):
                step(v)
            times[v].append((time.perf_counter() - start) / args.steps * 1e3)
    latency = {}
    for n in (3, sum(t.numel() for t in first["hand"])):
        t, rounds = torch.randn(n), []
        for _ in range(args.rounds):
            dist.barrier()
            start = time.perf_counter()
            for _ in range(50):
                dist.all_reduce(t)
            rounds.append((time.perf_counter() - start) / 50 * 1e6)
        latency[n] = rounds
    frozen = _frozen_selection(world)
    if world.writes:
        print(f"{args.shape}: ms per step, median of {args.rounds} rounds of {args.steps} steps (range):")
        for v in VARIANTS:
            print(f"  {v:16s} {statistics.median(times[v]):8.2f} ({min(times[v]):.2f}-{max(times[v]):.2f})")
        for v in VARIANTS[1:]:
            same = all(torch.equal(a, b) for a, b in zip(first["hand"], first[v]))
            print(f"  gradients of {v}: bit-identical to hand {same}")
        for n, rounds in latency.items():
            print(f"one all-reduce of {n} float32 values: median {statistics.median(rounds):.0f} µs "
                  f"(range {min(rounds):.0f}-{max(rounds):.0f})")
        print(f"ddp with a frozen 'select' generator: {frozen}")
    world.close()


def _frozen_selection(world) -> str:
    """Two steps of plain DDP on a model whose annealed generators have frozen: what happens."""
    torch.manual_seed(0)
    model = build_model(generator="select", n_layers=2, n_groups=2, group_size=4, kernel_size=4, image_size=10)
    for bank in model.encoder.banks:
        bank.generator.step.fill_(bank.generator.steps)  # the annealing is over: the logits get no gradient
    ddp = wrap(model, False)
    x, y = torch.randn(8, 1, 10, 10), torch.randint(0, 10, (8,))
    for i in range(2):
        try:
            (F.cross_entropy(ddp(x), y) + model.regularization()).backward()
        except RuntimeError as e:
            return f"step {i + 1} fails: {str(e).splitlines()[0][:90]}..."
    return "trains"


if __name__ == "__main__":
    main()
