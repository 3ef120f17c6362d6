"""A conv net of your own design with group layers, trained with an ordinary PyTorch loop.

Two GroupConv2d layers (each filter bank an orbit B, A·B, ..., A^(p-1)·B of a
learned generator A) inside an ordinary nn.Sequential, trained on mnist5k with
Adam. The two lgn-specific lines are the regulariser added to the loss and
the re-projection after each optimiser step:

    python examples/group_convnet.py            # a minute or two on a laptop CPU
    python examples/group_convnet.py --steps 50 --generator cyclic
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn

import lgn
from lgn.data import fit_preprocessing, get_dataset


def make_net(generator: str) -> nn.Sequential:
    """28×28 digits → 10 logits: two group convolutions, batch norm, pooling, a linear head."""
    return nn.Sequential(
        lgn.GroupConv2d(1, n_groups=4, group_size=4, kernel_size=5, padding=2, generator=generator),  # 16 maps
        nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),                                               # 14×14
        lgn.GroupConv2d(16, n_groups=8, group_size=4, kernel_size=3, padding=1, generator=generator),  # 32 maps
        nn.BatchNorm2d(32), nn.ReLU(), nn.AdaptiveAvgPool2d(4),                                       # 4×4
        nn.Flatten(), nn.Linear(32 * 16, 10),
    )


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=600, help="optimiser steps (default 600, about 19 epochs)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--generator", default="free", choices=lgn.nn.generator_choices(), metavar="NAME",
                   help="a registered generator (free, cyclic, fixed:NAME, ...) or independent")
    p.add_argument("--reg-weight", type=float, default=1e-4, help="weight of the generators' regulariser")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    data = get_dataset("mnist5k")
    prep = fit_preprocessing(data.x_train)  # standardise with the training split's statistics
    x_train, x_test = prep(data.x_train), prep(data.x_test)
    net = make_net(args.generator)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    net.train()
    order = torch.randperm(len(x_train))
    for step in range(args.steps):
        start = (step * args.batch_size) % len(x_train)
        if start < args.batch_size:
            order = torch.randperm(len(x_train))
        idx = order[start:start + args.batch_size]
        loss = F.cross_entropy(net(x_train[idx]), data.y_train[idx])
        loss = loss + lgn.nn.regularization(net, weight=args.reg_weight)  # keeps each generator invertible
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        lgn.nn.project_(net)  # unit-norm base filters and generators, as the paper's recipe
        if (step + 1) % 100 == 0:
            print(f"step {step + 1}: loss {loss.item():.4f}")  # .item(): float() of a tensor with grad warns

    net.eval()
    with torch.no_grad():
        accuracy = float((net(x_test).argmax(1) == data.y_test).float().mean())
    print(f"test accuracy {accuracy:.4f} after {args.steps} steps")
    generators = net[0].generators()  # None for independent filters
    if generators is not None:
        print(f"layer 0 learned {tuple(generators.shape[:2])} generators of size {tuple(generators.shape[2:])}")
    return accuracy


if __name__ == "__main__":
    main()
