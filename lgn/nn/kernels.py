"""The CPU kernels behind :mod:`lgn.nn.functional`: the same values, computed the way oneDNN is fast.

:mod:`lgn.nn.functional` states each operation in plain PyTorch; on the CPU in
full precision (:func:`fused`, the one switch) it calls these instead. Each
exists for a reason measured on the paper's shapes (docs/performance.md):

- :func:`analysis` and :func:`synthesis` are autograd functions whose backward
  passes are each other. Every layer of the unfolded network needs one
  convolution from C to F channels (fast in every library) and one from F to C,
  the transposed convolution, slow on CPU when C is 1 or 3 (its kernels
  vectorise over the few output channels): ``conv_transpose2d`` is 3–6× slower
  than :func:`_transposed_conv`, which computes it as a strided convolution
  with more output channels (1.8× faster than a channels-last
  ``conv_transpose2d`` at C = 3, 3.3× than a channels-first one).
- :func:`fista_step` is one whole layer as one autograd function, with the
  addition and ReLU fused into oneDNN's convolution, and a backward pass that
  saves only the residual, the code and the output.
- Activations are channels-last: oneDNN then reads and writes them as they
  are, where a channels-first F-channel tensor is reordered to a blocked layout
  and back around every convolution.
- :func:`adaptive_avg_pool` pools by one matrix product per image, reading the
  channels-last activations in place (PyTorch's pooling backward copies them
  twice). The batch norm of :mod:`lgn.nn.batchnorm` takes its sums the same way.

Together the training step runs 2.4× (MNIST shape) and 1.9× (CIFAR shape) the
speed of the straightforward implementation on one core (docs/performance.md).
Off the CPU (CUDA), a step's time is the host's, launching kernels, and the
plain operations, fewest Python-level calls, win; under ``torch.autocast`` on
CPU (``train.precision = "bf16"``) the plain operations run in autocast's lower
precision, which these float32 kernels would not.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

__all__ = ["fused", "channels_last", "analysis", "synthesis", "fista_step", "adaptive_avg_pool"]


# oneDNN's convolution with a fused addition and activation, as Inductor uses it
# (absent from builds without mkldnn; _conv falls back to separate ops).
_FUSED_CONV = getattr(torch.ops.mkldnn, "_convolution_pointwise", None) if torch.backends.mkldnn.is_available() else None

# The transposed convolution on CPU computes blocks of r × r output pixels with
# the least r giving C·r² >= this many output channels: an AVX-512 vector holds
# 16, and 12 measured best for C = 1 (r = 4) and C = 3 (r = 2).
_VECTOR_CHANNELS = 12


def fused(x: torch.Tensor) -> bool:
    """The switch: whether :mod:`lgn.nn.functional` and :mod:`lgn.nn.batchnorm` run these kernels for ``x``.

    True on the CPU in full precision; off the CPU, and under ``torch.autocast``
    (whose lower precision these float32 kernels would not run), they take the
    plain PyTorch operations.
    """
    return x.device.type == "cpu" and not torch.is_autocast_enabled("cpu")


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` ``(N, C, H, W)`` stored channels-last, also for C = 1 (where ``contiguous`` keeps NCHW strides)."""
    N, C, H, W = x.shape  # batch, channels, height, width
    if x.stride() == (H * W * C, 1, W * C, C):
        return x
    return torch.empty_strided(x.shape, (H * W * C, 1, W * C, C), dtype=x.dtype, device=x.device).copy_(x)


def analysis(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int,
             bias: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`lgn.nn.functional.analysis` on channels-last activations; its backward is :func:`synthesis`."""
    return _Analysis.apply(channels_last(x), weight, bias, stride, padding)


def synthesis(u: torch.Tensor, weight: torch.Tensor, stride: int, padding: int,
              size: tuple[int, int]) -> torch.Tensor:
    """:func:`lgn.nn.functional.synthesis` as a phase convolution (:func:`_transposed_conv`); backward by
    :func:`analysis`. ``size`` must be one that :func:`analysis` maps to ``u``'s."""
    return _Synthesis.apply(channels_last(u), weight, stride, padding, tuple(size))


def fista_step(y: torch.Tensor, u: torch.Tensor | None, weight: torch.Tensor, eta: float, bias: torch.Tensor,
               stride: int, padding: int) -> torch.Tensor:
    """:func:`lgn.nn.functional.fista_step` as one autograd function (:class:`_FistaStep`), channels-last."""
    return _FistaStep.apply(channels_last(y), None if u is None else channels_last(u), weight, bias,
                            float(eta), stride, padding)


def adaptive_avg_pool(x: torch.Tensor, size: int) -> torch.Tensor:
    """``F.adaptive_avg_pool2d(x, size)`` as one matrix product per image: ``(N, C, H, W)`` → ``(N, C, size, size)``.

    Output (i, j) averages rows ⌊i·H/size⌋ … ⌈(i+1)·H/size⌉ − 1 and likewise columns.
    On a channels-last ``x`` this reads the activations in place, and its
    gradient is channels-last too.
    """
    N, C, H, W = x.shape  # batch, channels, height, width
    x3 = channels_last(x).permute(0, 2, 3, 1).reshape(N, H * W, C)  # a view
    out = torch.matmul(_pooling_weights(H, W, size, x.dtype, x.device), x3)  # (N, size·size, C)
    return out.view(N, size, size, C).permute(0, 3, 1, 2)


def _conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int, padding: int,
          add: torch.Tensor | None = None, relu: bool = False) -> torch.Tensor:
    """``conv2d(x, weight, bias)``, plus ``add``, then ReLU if ``relu``: one oneDNN call for float32 on CPU."""
    if (add is not None or relu) and x.dtype == torch.float32 and _FUSED_CONV is not None:
        args = ([padding, padding], [stride, stride], [1, 1], 1)
        if add is None:
            return _FUSED_CONV(x, weight, bias, *args, "relu", [], "")
        return _FUSED_CONV.binary(x, add, weight, bias, *args, "add", None, "relu" if relu else None, [], None)
    out = F.conv2d(x, weight, bias, stride=stride, padding=padding)
    if add is not None:
        out = out.add_(add)
    return out.relu_() if relu else out


def _weight_grad(x, weight, grad_out, stride, padding, with_bias):
    """Gradients of ``analysis(x, weight)`` for the weight (and bias) given ``grad_out``."""
    _, grad_w, grad_b = torch.ops.aten.convolution_backward(
        grad_out, x, weight, [weight.shape[0]] if with_bias else None, [stride, stride],
        [padding, padding], [1, 1], False, [0, 0], 1, [False, True, with_bias])
    return grad_w, grad_b


def _cached_constant(build):
    """``build`` cached (by its arguments) and run outside inference mode: the constant tensors it returns
    are saved for backward passes, which a cached inference tensor could never be."""
    return functools.lru_cache(maxsize=32)(torch.inference_mode(False)(build))


def _phase_filters(weight: torch.Tensor, stride: int, padding: int, phases: int) -> tuple[torch.Tensor, int]:
    """The transposed convolution as a strided convolution with ``phases``² outputs per pixel.

    Output row Y = phases·Y' + d of the transposed convolution (Y counted from
    −padding) sums W[a]·u[y] over stride·y + a = Y + padding. With phases = m·stride
    that is y = m·Y' + j for j = (d + padding − a) / stride, so phase d is an
    ordinary convolution of u with stride m whose tap t = j − j_min holds
    W[d + padding − stride·j] (zero where that is not a tap). Returns the filters
    ``(phases²·C, F, T, T)``, channels ordered (dy, dx, c) (see :func:`_transposed_conv`),
    and ``j_min`` (the code is read from row j_min on).
    """
    F_, C, k, _ = weight.shape  # filters, channels, kernel, kernel
    select, j_min = _phase_selection(k, stride, padding, phases, weight.dtype, weight.device)
    T = select.shape[-1]
    filters = (weight.reshape(F_ * C, k * k) @ select.reshape(k * k, -1)).view(F_, C, phases, phases, T, T)
    filters = filters.permute(2, 3, 1, 0, 4, 5).reshape(phases * phases * C, F_, T, T)
    return filters, j_min


@_cached_constant
def _phase_selection(k: int, stride: int, padding: int, phases: int, dtype: torch.dtype,
                     device: torch.device) -> tuple[torch.Tensor, int]:
    """The 0/1 map from kernel taps (a, b) to phase filter taps: ``(k, k, phases, phases, T, T)``, and j_min."""
    j_min = -((k - 1 - padding) // stride)
    T = (phases - 1 + padding) // stride - j_min + 1
    d = torch.arange(phases)[:, None]
    t = torch.arange(T)[None, :]
    tap = d + padding - stride * (t + j_min)  # (phases, T): kernel row of phase d, tap t
    rows = torch.nn.functional.one_hot(tap.clamp(0, k - 1), k) * ((tap >= 0) & (tap < k))[..., None]  # (r, T, k)
    select = torch.einsum("dta,esb->abdets", rows, rows)  # (k, k, r, r, T, T)
    return select.to(dtype=dtype, device=device), j_min


def _transposed_conv(u: torch.Tensor, weight: torch.Tensor, stride: int, padding: int,
                     size: tuple[int, int]) -> torch.Tensor:
    """The transposed convolution of :func:`synthesis`, without autograd.

    On CPU, convolutions vectorise over output channels, and a transposed
    convolution to C = 1 or 3 channels uses a fraction of each vector (about 6×
    slower than the forward convolution at C = 1). So each output pixel block of
    phases × phases is computed at once: a strided convolution with C·phases²
    output channels (:func:`_phase_filters`), whose channels-last output holds
    each block's pixels as runs of phases·C values: one copy puts them in rows.
    (``pixel_shuffle``, from channels ordered (c, dy, dx), moves single values
    and took twice as long at C = 3.) It does
    up to (1 + (phases − 1)/k)² times the multiply-adds and runs several times
    faster.
    """
    N, F_, h, w = u.shape  # batch, filters, code height, code width
    C, k = weight.shape[1], weight.shape[-1]
    H, W = size
    phases = stride * math.ceil(math.ceil(math.sqrt(_VECTOR_CHANNELS / C)) / stride)
    m = phases // stride  # stride of the phase convolution
    filters, j_min = _phase_filters(weight, stride, padding, phases)
    T = filters.shape[-1]
    # Block Y' reads code rows m·Y' + j_min …; conv2d pads both sides alike, by
    # −j_min + m·δ, so skip δ leading blocks, δ the least that also pads the end enough.
    pads, skips = [], []
    for out_size, code_size in ((H, h), (W, w)):
        blocks = -(-out_size // phases)
        skip = max(0, -(-j_min // m))
        while m * (skip + blocks - 1) + T > code_size + 2 * (m * skip - j_min):
            skip += 1
        pads.append(m * skip - j_min)
        skips.append(skip * phases)
    blocks = F.conv2d(u, filters, stride=m, padding=pads)  # (N, r·r·C, Hb, Wb), channels-last
    Hb, Wb = blocks.shape[-2:]
    rows = blocks.permute(0, 2, 3, 1).reshape(N, Hb, Wb, phases, phases, C).transpose(2, 3)  # (N, Hb, dy, Wb, dx, C)
    out = rows.reshape(N, Hb * phases, Wb * phases, C).permute(0, 3, 1, 2)  # one copy: (N, C, r·Hb, r·Wb)
    return channels_last(out[:, :, skips[0]:skips[0] + H, skips[1]:skips[1] + W])


class _Analysis(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding, ctx.has_bias = stride, padding, bias is not None
        return F.conv2d(x, weight, bias, stride=stride, padding=padding)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        s, pad = ctx.stride, ctx.padding
        grad = channels_last(grad)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = synthesis(grad, weight, s, pad, (x.shape[-2], x.shape[-1]))
        if ctx.needs_input_grad[1] or (ctx.has_bias and ctx.needs_input_grad[2]):
            grad_w, grad_b = _weight_grad(x, weight, grad, s, pad, ctx.has_bias)
        return grad_x, grad_w, grad_b, None, None


class _Synthesis(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, weight, stride, padding, size):
        ctx.save_for_backward(u, weight)
        ctx.stride, ctx.padding = stride, padding
        return _transposed_conv(u, weight, stride, padding, size)

    @staticmethod
    def backward(ctx, grad):
        u, weight = ctx.saved_tensors
        s, pad = ctx.stride, ctx.padding
        grad = channels_last(grad)
        grad_u = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_u = analysis(grad, weight, s, pad)
        if ctx.needs_input_grad[1]:
            grad_w = _weight_grad(grad, weight, u, s, pad, False)[0]
        return grad_u, grad_w, None, None, None


class _FistaStep(torch.autograd.Function):
    """z = u + conv(r, η·W) + b with r = y − synthesis(u, W), out = relu(z); see :func:`fista_step`.

    Backward, with g_z = g·[out > 0] and ñ = −η·synthesis(g_z, W) = −∂L/∂r:
    ∂L/∂u = g_z + analysis(ñ, W), ∂L/∂y = −ñ, ∂L/∂b = Σ g_z and
    ∂L/∂W = η·wgrad(r, g_z) + wgrad(ñ, u), wgrad(x, g) being the weight gradient of conv2d(x, ·).
    """

    @staticmethod
    def forward(ctx, y, u, weight, bias, eta, stride, padding):
        size = (y.shape[-2], y.shape[-1])
        if u is None:
            r = y
            out = _conv(r, weight * eta, bias, stride, padding, relu=True)
        else:
            r = channels_last(y - _transposed_conv(u, weight, stride, padding, size))
            out = _conv(r, weight * eta, bias, stride, padding, add=u, relu=True)
        ctx.save_for_backward(r, u, weight, out)
        ctx.eta, ctx.stride, ctx.padding = eta, stride, padding
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        r, u, weight, out = ctx.saved_tensors
        eta, s, pad = ctx.eta, ctx.stride, ctx.padding
        grad_z = torch.ops.aten.threshold_backward(channels_last(grad), out, 0)
        grad_w, grad_b = _weight_grad(r, weight, grad_z, s, pad, True)
        grad_w = grad_w * eta
        grad_y = grad_u = None
        if u is not None:
            neg_grad_r = _transposed_conv(grad_z, weight * -eta, s, pad, (r.shape[-2], r.shape[-1]))
            grad_u = _conv(neg_grad_r, weight, None, s, pad, add=grad_z)
            grad_w = grad_w + _weight_grad(neg_grad_r, weight, u, s, pad, False)[0]
            if ctx.needs_input_grad[0]:
                grad_y = -neg_grad_r
        elif ctx.needs_input_grad[0]:
            grad_y = _transposed_conv(grad_z, weight * eta, s, pad, (r.shape[-2], r.shape[-1]))
        return grad_y, grad_u, grad_w, grad_b, None, None, None


@_cached_constant
def _pooling_weights(H: int, W: int, size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(size·size, H·W)``: row (i, j) averages the window of output (i, j) of adaptive average pooling."""

    def windows(n: int) -> torch.Tensor:  # (size, n): row i averages its window
        i = torch.arange(size)[:, None]
        j = torch.arange(n)[None, :]
        inside = ((j >= (i * n) // size) & (j < -((-(i + 1) * n) // size))).to(torch.float64)
        return inside / inside.sum(1, keepdim=True)

    weights = (windows(H)[:, None, :, None] * windows(W)[None, :, None, :]).reshape(size * size, H * W)
    return weights.to(dtype=dtype, device=device)
