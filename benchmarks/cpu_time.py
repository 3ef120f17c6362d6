"""Training steps timed in thread CPU time on one thread: ratios that hold on a machine other processes load.

``python -m benchmarks.cpu_time [--rounds N]`` runs everything on one thread
and times it with ``time.thread_time``, which counts only the CPU time this
thread got: on a shared machine the wall time of a step moves with the load of
other processes (several-fold), its CPU time much less. At MNIST and CIFAR
shape it prints

- the training step of the baseline, ours in float32 and ours under bfloat16
  autocast (``train.precision = "bf16"``), alternating round by round on the same
  batches with the order flipped each round: median step times, the ratios of the
  medians and the per-round range of the ratios;
- the step's convolutions one by one (the analysis convolution with its fused
  addition and ReLU, the phase convolution of synthesis, the weight gradient) and
  the analysis convolution written as ``unfold`` + one GEMM, in GFLOP/s, against an
  fp32 1024² GEMM on the same thread; and the step's 6L − 4 convolutions' FLOPs
  over its time as a fraction of that GEMM (what ``lgn bench`` reports as the
  GEMM fraction, there on all threads and in wall time).

One thread measures the work, not how well it spreads over cores.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from lgn.bench.measure import GRAD_CLIP, SHAPES, build_pair, make_batches, train_step, training_flops
from lgn.nn.functional import output_size
from lgn.nn.kernels import _conv, _transposed_conv, _weight_grad, channels_last
from lgn.memory import keep_freed_memory


def thread_seconds(fn, reps: int = 15, warmup: int = 3) -> float:
    """Median thread CPU seconds of ``fn()``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.thread_time()
        fn()
        times.append(time.thread_time() - start)
    return statistics.median(times)


def bf16_step(model, optimizer, x, y) -> None:
    """The step of ``train_step`` with the forward pass under bfloat16 autocast, as ``train.precision = 'bf16'``."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    loss = F.cross_entropy(out.float(), y) + model.regularization()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
    optimizer.step()
    model.project_()


def steps(shape: str, rounds: int) -> dict[str, list[float]]:
    """Thread CPU seconds of each round's step of the baseline, ours and ours in bf16, interleaved."""
    channels, size = SHAPES[shape]
    base, ours = build_pair(channels, size, torch.device("cpu"))
    batches = make_batches(channels, size, torch.device("cpu"))
    models = {"baseline": base, "ours": ours, "ours-bf16": copy.deepcopy(ours)}
    optimizers = {name: torch.optim.Adam(m.parameters(), lr=0.01) for name, m in models.items()}
    times = {name: [] for name in models}
    for i in range(rounds + 2):  # two rounds of warm-up
        for name in (list(models) if i % 2 == 0 else list(models)[::-1]):
            step = bf16_step if name == "ours-bf16" else train_step
            start = time.thread_time()
            step(models[name], optimizers[name], *batches[i % len(batches)])
            if i >= 2:
                times[name].append(time.thread_time() - start)
    return times


def convolutions(shape: str) -> str:
    """GFLOP/s of the step's kinds of convolution at ``shape``, and of unfold + GEMM."""
    channels, size = SHAPES[shape]
    N, F_, k, s, pad = 128, 20, 6, 1, 1  # batch, filters, kernel, stride, padding of the paper's classifier
    h = output_size(size, k, s, pad)
    flops = 2 * N * F_ * channels * k * k * h * h
    x = channels_last(torch.randn(N, channels, size, size))
    u = channels_last(torch.randn(N, F_, h, h)).relu()
    w, bias = torch.randn(F_, channels, k, k), torch.randn(F_)
    x_first = x.contiguous()

    def unfolded():
        return (w.reshape(F_, -1) @ F.unfold(x_first, k, padding=pad)).view(N, F_, h, h)

    rates = {"analysis (conv + add + ReLU)": lambda: _conv(x, w, bias, s, pad, add=u, relu=True),
             "analysis as unfold + GEMM": unfolded,
             "synthesis (phase conv, useful FLOPs)": lambda: _transposed_conv(u, w, s, pad, (size, size)),
             "weight gradient": lambda: _weight_grad(x, w, u, s, pad, True)}
    return "; ".join(f"{name} {flops / thread_seconds(fn) / 1e9:.1f}" for name, fn in rates.items())


def one_thread_rounds(description: str, default: int) -> int:
    """The ``--rounds`` of a one-thread benchmark's command line, with the process set up to measure:
    one thread, and freed memory kept mapped as ``lgn train`` keeps it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=default)
    rounds = parser.parse_args().rounds
    torch.set_num_threads(1)
    keep_freed_memory()
    return rounds


def main() -> None:
    rounds = one_thread_rounds(__doc__.splitlines()[0], 10)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    gemm = 2 * 1024 ** 3 / thread_seconds(lambda: a @ b) / 1e9
    print(f"fp32 GEMM 1024², one thread: {gemm:.1f} GFLOP/s (thread CPU time)")
    for shape in SHAPES:
        times = steps(shape, rounds)
        median = {name: statistics.median(t) for name, t in times.items()}

        def ratio(a: str, b: str) -> str:
            per_round = [x / y for x, y in zip(times[a], times[b])]
            return f"{median[a] / median[b]:.2f} ({min(per_round):.2f}-{max(per_round):.2f})"

        _, ours = build_pair(*SHAPES[shape], torch.device("cpu"))
        fraction = training_flops(ours, SHAPES[shape][1]) / median["ours"] / 1e9 / gemm
        print(f"{shape}: step " + ", ".join(f"{n} {1e3 * t:.1f} ms" for n, t in median.items())
              + f"; baseline/ours {ratio('baseline', 'ours')}, baseline/ours-bf16 {ratio('baseline', 'ours-bf16')}, "
              f"ours/ours-bf16 {ratio('ours', 'ours-bf16')}; GEMM fraction of our step {fraction:.2f}", flush=True)
        print(f"{shape}: GFLOP/s " + convolutions(shape), flush=True)


if __name__ == "__main__":
    main()
