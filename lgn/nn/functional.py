"""The operations of the unfolded network, fast on CPU and exact.

:func:`analysis` (conv) and :func:`synthesis` (its adjoint) are autograd
functions whose backward passes are each other. Every layer of the unfolded
network needs one convolution from C to F channels (fast in every library) and
one from F to C (the transposed convolution, slow on CPU when C is 1 or 3: its
kernels vectorise over the few output channels). On CPU the F-to-C direction is
a strided convolution with more output channels (:func:`_transposed_conv`).
:func:`fista_step` is one whole layer as one autograd function, with the
addition and ReLU fused into oneDNN's convolution.

Activations are channels-last: oneDNN then reads and writes them as they are,
where a channels-first F-channel tensor is reordered to a blocked layout and
back around every convolution. PyTorch's batch norm of a channels-last tensor
on CPU sums in float32 (three digits lost) and is slow, so :func:`batch_norm`
takes its per-channel sums by matrix products (and absorbs FISTA's momentum),
and :func:`adaptive_avg_pool` pools by one.

All of this is for the CPU in full precision (:func:`fused`). On other devices (CUDA) the same
functions are plain PyTorch operations that autograd differentiates: there the
library's convolutions are fast in both directions, and a step's time is the
host's, launching kernels, so the fewest Python-level calls win. Under
``torch.autocast`` on CPU (``train.precision = "bf16"``) they are the plain
operations too, which autocast runs in its lower precision. The exception
is :func:`synchronized_batch_norm`'s batch norm, the same function everywhere
(its sums in float32 under autocast).

Under :func:`synchronized_batch_norm` (data-parallel training), training-mode
batch norm takes its statistics over the batches of every rank of a
``torch.distributed`` group, exactly as one process holding the whole batch.
"""

from __future__ import annotations

import contextlib
import functools
import math

import torch
import torch.nn.functional as F

__all__ = ["output_size", "fused", "channels_last", "activation_layout", "analysis", "synthesis", "fista_step",
           "batch_norm", "adaptive_avg_pool", "synchronized_batch_norm", "CollectiveError"]

# oneDNN's convolution with a fused addition and activation, as Inductor uses it
# (absent from builds without mkldnn; _conv falls back to separate ops).
_FUSED_CONV = getattr(torch.ops.mkldnn, "_convolution_pointwise", None) if torch.backends.mkldnn.is_available() else None

# The transposed convolution on CPU computes blocks of r × r output pixels with
# the least r giving C·r² >= this many output channels: an AVX-512 vector holds
# 16, and 12 measured best for C = 1 (r = 4) and C = 3 (r = 2).
_VECTOR_CHANNELS = 12


def output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """Spatial size of ``conv2d`` output: ⌊(size + 2·padding − kernel) / stride⌋ + 1."""
    return (size + 2 * padding - kernel_size) // stride + 1


def fused(x: torch.Tensor) -> bool:
    """Whether the functions below take their fused CPU path for ``x`` (elsewhere, plain PyTorch operations).

    Under ``torch.autocast`` they take the plain operations, which autocast runs in its lower precision.
    """
    return x.device.type == "cpu" and not torch.is_autocast_enabled("cpu")


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` ``(N, C, H, W)`` stored channels-last, also for C = 1 (where ``contiguous`` keeps NCHW strides)."""
    N, C, H, W = x.shape  # batch, channels, height, width
    if x.stride() == (H * W * C, 1, W * C, C):
        return x
    return torch.empty_strided(x.shape, (H * W * C, 1, W * C, C), dtype=x.dtype, device=x.device).copy_(x)


def activation_layout(x: torch.Tensor) -> torch.Tensor:
    """``x`` in the memory layout these functions read activations in: channels-last on the fused path,
    as it is elsewhere."""
    return channels_last(x) if fused(x) else x


def analysis(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int,
             bias: torch.Tensor | None = None) -> torch.Tensor:
    """``conv2d``: ``(N, C, H, W)`` with weight ``(F, C, k, k)`` → ``(N, F, h_out, w_out)``.

    ``bias`` ``(F,)`` is added to every output position.
    """
    if not fused(x):
        return F.conv2d(x, weight, bias, stride=stride, padding=padding)
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
    k = weight.shape[-1]
    extra = [n - ((m - 1) * stride - 2 * padding + k) for n, m in zip(size, u.shape[-2:])]
    if not all(0 <= e < stride for e in extra):  # a size analysis does not map to u's: rare, plain ops
        full = F.conv_transpose2d(u, weight, stride=stride)  # uncropped: row Y of the output is row Y + padding
        H, W = size
        full = F.pad(full, (0, max(0, W + padding - full.shape[-1]), 0, max(0, H + padding - full.shape[-2])))
        return full[..., padding:padding + H, padding:padding + W]
    if not fused(u):
        return F.conv_transpose2d(u, weight, stride=stride, padding=padding, output_padding=extra)
    return _Synthesis.apply(channels_last(u), weight, stride, padding, tuple(size))


def fista_step(y: torch.Tensor, u: torch.Tensor | None, weight: torch.Tensor, eta: float, bias: torch.Tensor,
               stride: int, padding: int) -> torch.Tensor:
    """One unfolded proximal-gradient step: relu(u + η·analysis(y − synthesis(u)) + bias).

    ``y`` ``(N, C, H, W)``, ``u`` ``(N, F, h, w)`` or None for u = 0, ``weight``
    ``(F, C, k, k)``, ``bias`` ``(F,)`` → ``(N, F, h, w)`` (channels-last on the fused path). The
    same as composing :func:`synthesis` and :func:`analysis`, but in one autograd
    function: the addition and the ReLU run inside the convolution on CPU, the
    backward pass adds the two gradients of ``u`` inside a convolution too, and
    it saves only the residual, ``u`` and the output. Not twice differentiable.
    Off the fused path, the composition itself (twice differentiable there).
    """
    if not fused(y):
        r = y if u is None else y - synthesis(u, weight, stride, padding, (y.shape[-2], y.shape[-1]))
        z = F.conv2d(r, weight * eta, bias, stride=stride, padding=padding)
        return (z if u is None else z.add_(u)).relu_()
    return _FistaStep.apply(channels_last(y), None if u is None else channels_last(u), weight, bias,
                            float(eta), stride, padding)


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


_SYNC_GROUP = None  # the torch.distributed group whose ranks' batches batch norm normalises together


@contextlib.contextmanager
def synchronized_batch_norm(group):
    """Within this block, training-mode :func:`batch_norm` uses the statistics of the batches of all ranks of
    ``group`` (a ``torch.distributed`` process group): per-channel sums are all-reduced forward and backward,
    and the running statistics are updated alike on every rank. Parameter gradients stay per rank, to be
    summed with the others'."""
    global _SYNC_GROUP
    previous, _SYNC_GROUP = _SYNC_GROUP, group
    try:
        yield
    finally:
        _SYNC_GROUP = previous


class CollectiveError(RuntimeError):
    """A collective operation failed: another process of the group stopped (its error is the one to report)."""

    @classmethod
    def of(cls, error: BaseException) -> "CollectiveError":
        return cls(f"another process stopped during a collective: {str(error).splitlines()[0][:200]}")


def _all_reduce(*tensors: torch.Tensor, group) -> list[torch.Tensor]:
    """The sums over ``group`` of 1-D ``tensors``, by one collective; :class:`CollectiveError` if it fails."""
    import torch.distributed as dist

    flat = torch.cat(tensors)
    try:
        dist.all_reduce(flat, group=group)
    except RuntimeError as e:  # gloo's or NCCL's error when another process died
        raise CollectiveError.of(e) from None
    return list(flat.split([t.numel() for t in tensors]))


def batch_norm(x: torch.Tensor, norm: torch.nn.BatchNorm2d, toward: torch.Tensor | None = None,
               weight: float = 0.0) -> torch.Tensor:
    """``norm(x)``, or ``norm(torch.lerp(x, toward, weight))``, updating ``norm``'s running statistics alike.

    ``x`` and ``toward`` are ``(N, C, H, W)``; ``weight`` < 1 (FISTA's momentum
    u + β·(u − u_prev) is ``weight`` = −β). In training mode on CPU the
    per-channel sums over the N·H·W positions are matrix products of each image,
    summed over the batch, and the backward pass returns both gradients of the
    interpolation from the same two passes (:class:`_BatchNorm`).
    """
    group = _SYNC_GROUP if norm.training else None
    if group is not None and torch.is_autocast_enabled(x.device.type):  # the synchronised sums in float32
        x, toward = x.float(), None if toward is None else toward.float()
    if not (norm.training and (fused(x) or group is not None)):
        return norm(x if toward is None else torch.lerp(x, toward, weight))
    if toward is not None:
        toward = channels_last(toward)
    t = 0.0 if toward is None else float(weight)
    out, mean, var, count = _BatchNorm.apply(channels_last(x), toward, t, norm.weight, norm.bias, norm.eps, group)
    if norm.track_running_stats:
        with torch.no_grad():
            norm.num_batches_tracked.add_(1)
            factor = 1.0 / float(norm.num_batches_tracked) if norm.momentum is None else norm.momentum
            count = int(count)
            norm.running_mean.lerp_(mean, factor)
            norm.running_var.lerp_(var * (count / max(count - 1, 1)), factor)
    return out


def _channel_sums(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ a and Σ a·b per channel of channels-last ``(N, C, H, W)`` tensors, each ``(C,)``.

    Matrix products read the tensors in place: Σ a as sums of each row of each
    image (W terms in float32, then a cascaded sum of the N·H partial sums: float32
    over whole images lost a digit), Σ a·b as the diagonal of each image's
    C × C product Aᵀ·B (C² multiply-adds per position, cheap at C = K·p ≈ 20 and
    faster than a product pass), added over the batch.
    """
    N, C, H, W = a.shape  # batch, channels, height, width
    rows = a.permute(0, 2, 3, 1).reshape(N * H, W, C)  # views: channels-last
    total = torch.matmul(a.new_ones(1, W), rows).sum(0)[0]  # (C,)
    a3 = a.permute(0, 2, 3, 1).reshape(N, H * W, C)
    b3 = b.permute(0, 2, 3, 1).reshape(N, H * W, C)
    products = torch.matmul(a3.transpose(1, 2), b3).sum(0).diagonal()  # (C,)
    return total, products


class _BatchNorm(torch.autograd.Function):
    """Training-mode batch norm of m = lerp(x, toward, t) (or of x), channels-last.

    Returns (output, batch mean, biased variance, count). Backward: ∂L/∂m = s·g + b·m + c
    per channel, so ∂L/∂x = (1 − t)·∂L/∂m is two passes with the factor folded
    into s, b and c, and ∂L/∂toward = t/(1 − t)·∂L/∂x one more. With a
    process ``group`` the sums and the count are over all its ranks (forward
    and backward); the gradients of weight and bias stay this rank's part.
    """

    @staticmethod
    def forward(ctx, x, toward, t, weight, bias, eps, group):
        m = x if toward is None else torch.lerp(x, toward, t)
        count = m.numel() // m.shape[1]  # N·H·W
        total, squares = _channel_sums(m, m)
        if group is not None:
            total, squares, n = _all_reduce(total, squares, total.new_tensor([count]), group=group)
            count = int(n.item())
        mean = total / count
        var = (squares / count - mean * mean).clamp_min(0)
        out = F.batch_norm(m, mean, var, weight, bias, training=False, eps=eps)
        ctx.save_for_backward(m, weight, mean, var)
        ctx.t, ctx.eps, ctx.has_bias, ctx.has_toward = t, eps, bias is not None, toward is not None
        ctx.group, ctx.count = group, count
        count = torch.tensor(count)
        ctx.mark_non_differentiable(mean, var, count)
        return out, mean, var, count

    @staticmethod
    def backward(ctx, grad, _grad_mean, _grad_var, _grad_count):
        m, weight, mean, var = ctx.saved_tensors
        grad = channels_last(grad)
        C = m.shape[1]
        count = ctx.count
        invstd = torch.rsqrt(var + ctx.eps)
        local_sum, local_m_sum = _channel_sums(grad, m)
        grad_sum, grad_m_sum = (local_sum, local_m_sum) if ctx.group is None else \
            _all_reduce(local_sum, local_m_sum, group=ctx.group)
        grad_mhat_sum = (grad_m_sum - mean * grad_sum) * invstd  # Σ g·m̂
        scale = invstd if weight is None else weight * invstd
        # ∂L/∂m = scale·(g − Σg/M − m̂·Σ(g·m̂)/M) = scale·g + b·m + c; times (1 − t) for x
        b = -scale * invstd * grad_mhat_sum / count
        c = -scale * grad_sum / count - b * mean
        keep = 1.0 - ctx.t
        grad_x = torch.addcmul((c * keep).view(1, C, 1, 1), m, (b * keep).view(1, C, 1, 1))
        grad_x.addcmul_(grad, (scale * keep).view(1, C, 1, 1))
        grad_toward = grad_x * (ctx.t / keep) if ctx.has_toward and ctx.needs_input_grad[1] else None
        if ctx.group is not None:  # this rank's part of the gradients of weight and bias
            grad_mhat_sum, grad_sum = (local_m_sum - mean * local_sum) * invstd, local_sum
        grad_w = grad_mhat_sum if weight is not None and ctx.needs_input_grad[3] else None
        grad_b = grad_sum if ctx.has_bias and ctx.needs_input_grad[4] else None
        return grad_x, grad_toward, None, grad_w, grad_b, None, None


def adaptive_avg_pool(x: torch.Tensor, size: int) -> torch.Tensor:
    """``F.adaptive_avg_pool2d(x, size)`` as one matrix product per image: ``(N, C, H, W)`` → ``(N, C, size, size)``.

    Output (i, j) averages rows ⌊i·H/size⌋ … ⌈(i+1)·H/size⌉ − 1 and likewise columns.
    On a channels-last ``x`` this reads the activations in place, and its
    gradient is channels-last too (PyTorch's pooling backward copies them twice).
    Off the fused path, ``F.adaptive_avg_pool2d`` itself.
    """
    if not fused(x):
        return F.adaptive_avg_pool2d(x, size)
    N, C, H, W = x.shape  # batch, channels, height, width
    x3 = channels_last(x).permute(0, 2, 3, 1).reshape(N, H * W, C)  # a view
    out = torch.matmul(_pooling_weights(H, W, size, x.dtype, x.device), x3)  # (N, size·size, C)
    return out.view(N, size, size, C).permute(0, 3, 1, 2)


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
