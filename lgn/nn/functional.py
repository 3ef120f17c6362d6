"""The two convolutions of the unfolded network: analysis (conv) and synthesis (its adjoint).

Both are autograd functions whose backward passes are each other: the gradient of
analysis with respect to its input is a synthesis, and the gradient of synthesis
with respect to its input is an analysis. Every layer of the unfolded network
therefore needs one convolution from C to F channels (fast in every library) and
one from F to C (the transposed convolution, slow on CPU when C is 1 or 3). On CPU
the F-to-C direction is computed as a strided convolution with more output
channels (:func:`_transposed_conv`) instead of ``conv_transpose2d``.

Activations are channels-last: oneDNN then reads and writes them as they are,
where a channels-first F-channel tensor is reordered to a blocked layout and
back around every convolution. PyTorch's batch norm of a channels-last tensor
on CPU sums in float32 (three digits lost) and is slow, so :func:`batch_norm`
takes its per-channel sums by matrix products instead.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["output_size", "channels_last", "analysis", "synthesis", "batch_norm"]

# The transposed convolution on CPU computes blocks of r × r output pixels with
# the least r giving C·r² >= this many output channels: an AVX-512 vector holds
# 16, and 12 measured best for C = 1 (r = 4) and C = 3 (r = 2).
_VECTOR_CHANNELS = 12


def output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """Spatial size of ``conv2d`` output: ⌊(size + 2·padding − kernel) / stride⌋ + 1."""
    return (size + 2 * padding - kernel_size) // stride + 1


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` ``(N, C, H, W)`` stored channels-last, also for C = 1 (where ``contiguous`` keeps NCHW strides)."""
    N, C, H, W = x.shape  # batch, channels, height, width
    if x.stride() == (H * W * C, 1, W * C, C):
        return x
    return torch.empty_strided(x.shape, (H * W * C, 1, W * C, C), dtype=x.dtype, device=x.device).copy_(x)


def analysis(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int,
             bias: torch.Tensor | None = None) -> torch.Tensor:
    """``conv2d``: ``(N, C, H, W)`` with weight ``(F, C, k, k)`` → ``(N, F, h_out, w_out)``.

    ``bias`` ``(F,)`` is added to every output position.
    """
    return _Analysis.apply(channels_last(x), weight, bias, stride, padding)


def synthesis(
    u: torch.Tensor, weight: torch.Tensor, stride: int, padding: int, size: tuple[int, int]
) -> torch.Tensor:
    """The adjoint of :func:`analysis` for inputs of spatial ``size`` = (H, W).

    ``(N, F, h_out, w_out)`` → ``(N, C, H, W)``. Equals ``conv_transpose2d`` with
    output padding H − ((h_out − 1)·stride − 2·padding + k), and also covers output
    paddings of ``stride`` or more, which ``conv_transpose2d`` refuses: the full
    transposed convolution is cropped to the input window and rows and columns
    the convolution never reads are zero.
    """
    return _Synthesis.apply(channels_last(u), weight, stride, padding, tuple(size))


def _weight_grad(x, weight, grad_out, stride, padding, with_bias):
    """Gradients of ``analysis(x, weight)`` for the weight (and bias) given ``grad_out``."""
    _, grad_w, grad_b = torch.ops.aten.convolution_backward(
        grad_out, x, weight, [weight.shape[0]] if with_bias else None, [stride, stride],
        [padding, padding], [1, 1], False, [0, 0], 1, [False, True, with_bias])
    return grad_w, grad_b


def _phase_filters(weight: torch.Tensor, stride: int, padding: int, phases: int) -> tuple[torch.Tensor, int]:
    """The transposed convolution as a strided convolution with ``phases``² outputs per pixel.

    Output row Y = phases·Y' + d of the transposed convolution (Y counted from
    −padding) sums W[a]·u[y] over stride·y + a = Y + padding. With phases = m·stride
    that is y = m·Y' + j for j = (d + padding − a) / stride, so phase d is an
    ordinary convolution of u with stride m whose tap t = j − j_min holds
    W[d + padding − stride·j] (zero where that is not a tap). Returns the filters
    ``(C·phases², F, T, T)``, channels ordered (c, dy, dx) for ``pixel_shuffle``,
    and ``j_min`` (the code is read from row j_min on).
    """
    F_, C, k, _ = weight.shape  # filters, channels, kernel, kernel
    j_min = -((k - 1 - padding) // stride)
    j_max = (phases - 1 + padding) // stride
    T = j_max - j_min + 1
    d = torch.arange(phases, device=weight.device)[:, None]
    t = torch.arange(T, device=weight.device)[None, :]
    tap = d + padding - stride * (t + j_min)  # (phases, T): kernel row of phase d, tap t
    tap = torch.where((tap >= 0) & (tap < k), tap, k)  # k indexes the zero row appended below
    padded = F.pad(weight, (0, 1, 0, 1))  # (F, C, k + 1, k + 1)
    filters = padded[:, :, tap[:, :, None, None], tap[None, None, :, :]]  # (F, C, r, T, r, T)
    filters = filters.permute(1, 2, 4, 0, 3, 5).reshape(C * phases * phases, F_, T, T)
    return filters, j_min


def _transposed_conv(u: torch.Tensor, weight: torch.Tensor, stride: int, padding: int,
                     size: tuple[int, int]) -> torch.Tensor:
    """The transposed convolution of :func:`synthesis`, without autograd.

    On CPU, convolutions vectorise over output channels, and a transposed
    convolution to C = 1 or 3 channels uses a fraction of each vector (about 6×
    slower than the forward convolution at C = 1). So each output pixel block of
    phases × phases is computed at once: a strided convolution with C·phases²
    output channels (:func:`_phase_filters`), then ``pixel_shuffle``. It does
    up to (1 + (phases − 1)/k)² times the multiply-adds and runs several times
    faster. Elsewhere this is the library's transposed convolution.
    """
    N, F_, h, w = u.shape  # batch, filters, code height, code width
    C, k = weight.shape[1], weight.shape[-1]
    H, W = size
    if u.device.type != "cpu":
        return torch.ops.aten.convolution_backward(
            u, u.new_empty(1).expand(N, C, H, W), weight, None, [stride, stride], [padding, padding],
            [1, 1], False, [0, 0], 1, [True, False, False])[0]
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
    blocks = F.conv2d(u, filters, stride=m, padding=pads)  # (N, C·r·r, Hb, Wb)
    out = F.pixel_shuffle(blocks, phases)  # (N, C, r·Hb, r·Wb)
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


def batch_norm(x: torch.Tensor, norm: torch.nn.BatchNorm2d) -> torch.Tensor:
    """``norm(x)`` for ``x`` ``(N, C, H, W)``, updating ``norm``'s running statistics alike.

    In training mode on CPU the per-channel sums over the N·H·W positions are
    matrix products of each image and summed over the batch (:class:`_BatchNorm`).
    """
    if not (norm.training and x.device.type == "cpu"):
        return norm(x)
    out, mean, var = _BatchNorm.apply(channels_last(x), norm.weight, norm.bias, norm.eps)
    if norm.track_running_stats:
        with torch.no_grad():
            norm.num_batches_tracked.add_(1)
            factor = 1.0 / float(norm.num_batches_tracked) if norm.momentum is None else norm.momentum
            count = x.numel() // x.shape[1]
            norm.running_mean.lerp_(mean, factor)
            norm.running_var.lerp_(var * (count / max(count - 1, 1)), factor)
    return out


def _channel_sums(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ a and Σ a·b per channel of channels-last ``(N, C, H, W)`` tensors, each ``(C,)``.

    Each image's sums are matrix products (the C × C product Aᵀ·B, of which the
    diagonal is kept, costs C² multiply-adds per position: cheap at C = K·p ≈ 20
    and faster than a separate product pass); the N partial sums are then added.
    """
    N, C, H, W = a.shape  # batch, channels, height, width
    a3 = a.permute(0, 2, 3, 1).reshape(N, H * W, C)  # a view: channels-last
    b3 = b.permute(0, 2, 3, 1).reshape(N, H * W, C)
    ones = a.new_ones(1, H * W)
    total = torch.matmul(ones, a3).sum(0)[0]  # (C,)
    products = torch.matmul(a3.transpose(1, 2), b3).sum(0).diagonal()  # (C,)
    return total, products


class _BatchNorm(torch.autograd.Function):
    """Training-mode batch norm of a channels-last tensor; returns (output, batch mean, biased variance)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        count = x.numel() // x.shape[1]  # N·H·W
        total, squares = _channel_sums(x, x)
        mean = total / count
        var = (squares / count - mean * mean).clamp_min(0)
        out = F.batch_norm(x, mean, var, weight, bias, training=False, eps=eps)
        ctx.save_for_backward(x, weight, mean, var)
        ctx.eps, ctx.has_bias = eps, bias is not None
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    def backward(ctx, grad, _grad_mean, _grad_var):
        x, weight, mean, var = ctx.saved_tensors
        grad = channels_last(grad)
        C = x.shape[1]
        count = x.numel() // C
        invstd = torch.rsqrt(var + ctx.eps)
        grad_sum, grad_x_sum = _channel_sums(grad, x)
        grad_xhat_sum = (grad_x_sum - mean * grad_sum) * invstd  # Σ g·x̂
        scale = invstd if weight is None else weight * invstd
        # grad_x = scale·(g − Σg/M − x̂·Σ(g·x̂)/M) = scale·g + b·x + c
        b = -scale * invstd * grad_xhat_sum / count
        c = -scale * grad_sum / count - b * mean
        grad_x = torch.addcmul(c.view(1, C, 1, 1), x, b.view(1, C, 1, 1))
        grad_x.addcmul_(grad, scale.view(1, C, 1, 1))
        grad_w = grad_xhat_sum if weight is not None and ctx.needs_input_grad[1] else None
        grad_b = grad_sum if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b, None
