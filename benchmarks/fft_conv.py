"""Could FFT convolution beat oneDNN's direct convolution at the training step's shapes?

``python -m benchmarks.fft_conv [--rounds N]`` takes the three kinds of
convolution of a training step of the paper's classifier (k = 6, stride 1,
padding 1, F = 20 filters, batch 128) at MNIST shape (1×28×28) and CIFAR shape
(3×32×32):

- analysis: ``conv2d`` C → F channels;
- synthesis: its adjoint, ``conv_transpose2d`` F → C channels;
- the weight gradient of the analysis convolution.

For each it checks an FFT implementation (``torch.fft.rfft2`` / ``irfft2``,
the channel sums as one complex batched matrix product per frequency) against
PyTorch's convolution to ``TOLERANCE`` of the largest value in float32, then times the convolution
the step runs (the library's own functions, channels-last) and the FFT one,
alternating round by round with the order flipped each round, on one thread in
thread CPU time (``time.thread_time``: on a shared machine the load of other
processes moves wall time several-fold, CPU time much less). It prints per
shape the medians, their ratio with the per-round range, and the bound on the
step's 20 convolutions (7 analyses, 6 syntheses, 7 weight gradients) if each
kind ran in the faster of the two. Last, the floor of any FFT scheme, however
much it shares transforms between convolutions: one forward and one inverse
transform of a 20-channel code timed alone, times the 7 of each a step needs.

The FFT side is given what favours it: channels-first inputs (what
``rfft2`` reads best) and no fused addition or ReLU on either side. The FFT size
per axis is the least 2^a·3^b·5^c that holds the padded image, so that the
circular correlation's valid part is the linear one.

Arithmetic at CIFAR shape: direct analysis is 2·N·F·C·k²·h² = 465 MFLOP; FFT
analysis is N·C forward transforms, N·F inverse ones (2560 of 36×36, about
34 kFLOP each at 2.5·n·log₂n: 86 MFLOP) and 4·N·C·F real multiply-adds per
frequency (36·19 of them: 42 MFLOP). Fewer operations, but the transforms of
the F-channel side run several times slower than the convolution.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from benchmarks.cpu_time import one_thread_rounds, thread_seconds
from lgn.bench.measure import BATCH, SHAPES
from lgn.nn.functional import output_size
from lgn.nn.kernels import _conv, _transposed_conv, _weight_grad, channels_last

FILTERS, KERNEL, STRIDE, PADDING = 20, 6, 1, 1  # the paper's classifier (lgn.bench.measure)
TOLERANCE = 1e-4  # max abs difference from PyTorch's convolution over its largest absolute value, float32
STEP_COUNTS = {"analysis": 7, "synthesis": 6, "weight gradient": 7}  # the step's 6L − 4 convolutions, L = 4
# A step kept in the frequency domain wherever it is linear still crosses over at every ReLU and batch norm:
# forward, layer 0 inverts its convolution and layers 1…L−1 transform the momentum term and invert the
# convolution; backward, every layer transforms its ReLU's gradient and layers 1…L−1 invert ∂L/∂u. The
# C-channel transforms are C/F of these.
TRANSFORMS_PER_STEP = 7  # forward transforms of a code, and as many inverse ones, at L = 4


def fft_size(n: int) -> int:
    """The least 2^a·3^b·5^c ≥ ``n``."""
    m = n
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def _spectra_product(a: torch.Tensor, b: torch.Tensor, conj_b: bool) -> torch.Tensor:
    """Σ_j a[i, j]·b[j, l] (b conjugated if ``conj_b``) at every frequency.

    ``a`` ``(I, J, S, R)``, ``b`` ``(J, L, S, R)`` complex → ``(I, L, S, R)``: one batched complex matrix
    product over the S·R frequencies, or for J ≤ 4 J products of whole spectra (measured faster at J = 1
    and 3, and their output is contiguous).
    """
    I, J, S, R = a.shape
    L = b.shape[1]
    if conj_b:
        b = b.conj()
    if J <= 4:  # the analysis (J = C): J multiply-adds per output, written in the order irfft2 reads best
        out = a[:, 0, None] * b[0]
        for j in range(1, J):
            out.addcmul_(a[:, j, None], b[j])
        return out
    a_f = a.permute(2, 3, 0, 1).reshape(S * R, I, J)
    b_f = b.permute(2, 3, 0, 1).reshape(S * R, J, L)
    return torch.bmm(a_f, b_f.resolve_conj()).view(S, R, I, L).permute(2, 3, 0, 1)


def fft_analysis(x: torch.Tensor, weight: torch.Tensor, padding: int) -> torch.Tensor:
    """``conv2d(x, weight, padding=padding)`` (stride 1) by FFT: ``(N, C, H, W)`` → ``(N, F, h, w)``."""
    N, C, H, W = x.shape  # batch, channels, height, width
    k = weight.shape[-1]
    P, Q = H + 2 * padding, W + 2 * padding
    S = (fft_size(P), fft_size(Q))
    xs = torch.fft.rfft2(F.pad(x, [padding] * 4), s=S)  # (N, C, S0, S1/2 + 1)
    ws = torch.fft.rfft2(weight, s=S)  # (F, C, …)
    # correlation: X·conj(Ŵ); with S ≥ P no valid output wraps
    out = torch.fft.irfft2(_spectra_product(xs, ws.transpose(0, 1), conj_b=True), s=S)
    return out[..., :P - k + 1, :Q - k + 1]


def fft_synthesis(u: torch.Tensor, weight: torch.Tensor, padding: int, size: tuple[int, int]) -> torch.Tensor:
    """``conv_transpose2d(u, weight, padding=padding)`` (stride 1) by FFT: ``(N, F, h, w)`` → ``(N, C, H, W)``."""
    h, w = u.shape[-2:]
    k = weight.shape[-1]
    P, Q = h + k - 1, w + k - 1  # the full convolution, = the padded input
    S = (fft_size(P), fft_size(Q))
    us = torch.fft.rfft2(u, s=S)  # (N, F, …)
    ws = torch.fft.rfft2(weight, s=S)  # (F, C, …)
    out = torch.fft.irfft2(_spectra_product(us, ws, conj_b=False), s=S)
    H, W = size
    return out[..., padding:padding + H, padding:padding + W]


def fft_weight_grad(x: torch.Tensor, grad_out: torch.Tensor, padding: int, kernel_size: int) -> torch.Tensor:
    """The gradient of ``conv2d(x, weight, padding=padding)`` (stride 1) for ``weight`` given ``grad_out``, by FFT.

    ``x`` ``(N, C, H, W)``, ``grad_out`` ``(N, F, h, w)`` → ``(F, C, k, k)``: Σ_n the correlation of x's
    channels with grad_out's, at lags 0 … k − 1.
    """
    N, C, H, W = x.shape
    P, Q = H + 2 * padding, W + 2 * padding
    S = (fft_size(P), fft_size(Q))
    xs = torch.fft.rfft2(F.pad(x, [padding] * 4), s=S)  # (N, C, …)
    gs = torch.fft.rfft2(grad_out, s=S)  # (N, F, …)
    # Σ_n conj(Ĝ)·X̂, as the conjugate of Σ_n Ĝ·conj(X̂)
    out = torch.fft.irfft2(_spectra_product(gs.transpose(0, 1), xs, conj_b=True).conj(), s=S)  # (F, C, …)
    return out[..., :kernel_size, :kernel_size]


def operands(channels: int, size: int, dtype=torch.float32, seed: int = 0):
    """Input, code and weight of one layer at a shape: ``(N, C, H, W)``, ``(N, F, h, h)``, ``(F, C, k, k)``."""
    g = torch.Generator().manual_seed(seed)
    h = output_size(size, KERNEL, STRIDE, PADDING)
    x = torch.randn(BATCH, channels, size, size, generator=g, dtype=dtype)
    u = torch.randn(BATCH, FILTERS, h, h, generator=g, dtype=dtype).relu()
    w = torch.randn(FILTERS, channels, KERNEL, KERNEL, generator=g, dtype=dtype) / KERNEL
    return x, u, w


def pairs(x: torch.Tensor, u: torch.Tensor, w: torch.Tensor) -> dict[str, tuple]:
    """Per kind of convolution: (the step's direct one, the FFT one, PyTorch's reference), each a no-argument
    function. The direct ones take channels-last operands, as in the step; the FFT ones channels-first."""
    size = (x.shape[-2], x.shape[-1])
    x_cl, u_cl = channels_last(x), channels_last(u)
    x, u = x.contiguous(), u.contiguous()

    def reference_weight_grad():
        w_ = w.detach().requires_grad_()
        F.conv2d(x, w_, padding=PADDING).backward(u)
        return w_.grad

    extra = size[0] - ((u.shape[-1] - 1) * STRIDE - 2 * PADDING + KERNEL)
    return {
        "analysis": (lambda: _conv(x_cl, w, None, STRIDE, PADDING),
                     lambda: fft_analysis(x, w, PADDING),
                     lambda: F.conv2d(x, w, padding=PADDING)),
        "synthesis": (lambda: _transposed_conv(u_cl, w, STRIDE, PADDING, size),
                      lambda: fft_synthesis(u, w, PADDING, size),
                      lambda: F.conv_transpose2d(u, w, padding=PADDING, output_padding=extra)),
        "weight gradient": (lambda: _weight_grad(x_cl, w, u_cl, STRIDE, PADDING, False)[0],
                            lambda: fft_weight_grad(x, u, PADDING, KERNEL),
                            reference_weight_grad),
    }


def max_errors(channels: int, size: int, dtype=torch.float32) -> dict[str, float]:
    """Per kind of convolution, the largest absolute difference of the FFT one from PyTorch's, over the largest
    absolute value of PyTorch's (the weight gradient sums N·h² products: its values are in the hundreds)."""
    out = {}
    for name, (_, fft, reference) in pairs(*operands(channels, size, dtype)).items():
        expected, got = reference(), fft()
        if got.shape != expected.shape:
            raise ValueError(f"{name}: FFT shape {tuple(got.shape)}, expected {tuple(expected.shape)}")
        out[name] = ((got - expected).abs().max() / expected.abs().max()).item()
    return out


def timed(fn) -> float:
    start = time.thread_time()
    fn()
    return time.thread_time() - start


def compare(direct, fft, rounds: int) -> tuple[list[float], list[float]]:
    """Thread CPU seconds of each round's direct and FFT convolution, alternating, order flipped each round."""
    times = {"direct": [], "fft": []}
    fns = {"direct": direct, "fft": fft}
    for i in range(rounds + 2):  # two rounds of warm-up
        for name in (("direct", "fft") if i % 2 == 0 else ("fft", "direct")):
            t = timed(fns[name])
            if i >= 2:
                times[name].append(t)
    return times["direct"], times["fft"]


def transform_seconds(channels: int, size: int, reps: int = 15) -> tuple[float, float]:
    """Median thread CPU seconds of one ``rfft2`` and one ``irfft2`` of the code ``(N, F, h, h)`` at the FFT size."""
    _, u, _ = operands(channels, size)
    S = (fft_size(size + 2 * PADDING),) * 2
    spectrum = torch.fft.rfft2(u, s=S)
    return (thread_seconds(lambda: torch.fft.rfft2(u, s=S), reps),
            thread_seconds(lambda: torch.fft.irfft2(spectrum, s=S), reps))


def main() -> None:
    rounds = one_thread_rounds(__doc__.splitlines()[0], 15)
    print(f"FFT backend: {'MKL' if torch.backends.mkl.is_available() else 'pocketfft'}; one thread, thread CPU ms")
    for shape, (channels, size) in SHAPES.items():
        errors = max_errors(channels, size)
        bad = {n: e for n, e in errors.items() if e > TOLERANCE}
        if bad:
            raise SystemExit(f"{shape}: FFT convolution differs from PyTorch's by more than {TOLERANCE}: {bad}")
        step = {"direct": 0.0, "fft": 0.0, "best": 0.0}
        for name, (direct, fft, _) in pairs(*operands(channels, size)).items():
            d, f = compare(direct, fft, rounds)
            md, mf = statistics.median(d), statistics.median(f)
            per_round = [a / b for a, b in zip(f, d)]
            n = STEP_COUNTS[name]
            step["direct"] += n * md
            step["fft"] += n * mf
            step["best"] += n * min(md, mf)
            print(f"{shape} {name}: direct {1e3 * md:.2f} ms, FFT {1e3 * mf:.2f} ms, FFT/direct {mf / md:.2f} "
                  f"({min(per_round):.2f}-{max(per_round):.2f}); relative error {errors[name]:.1e}", flush=True)
        print(f"{shape}: the step's {sum(STEP_COUNTS.values())} convolutions: direct {1e3 * step['direct']:.1f} ms, "
              f"FFT {1e3 * step['fft']:.1f} ms, the faster of each kind {1e3 * step['best']:.1f} ms", flush=True)
        forward, inverse = transform_seconds(channels, size)
        floor = TRANSFORMS_PER_STEP * (forward + inverse)
        print(f"{shape}: one transform of the code: rfft2 {1e3 * forward:.2f} ms, irfft2 {1e3 * inverse:.2f} ms; "
              f"{TRANSFORMS_PER_STEP} of each, the least a step in the frequency domain needs: {1e3 * floor:.1f} ms",
              flush=True)


if __name__ == "__main__":
    main()
