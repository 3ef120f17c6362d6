"""Training-mode batch norm as the unfolded network uses it: of FISTA's momentum term, optionally over several processes.

:func:`batch_norm` normalises ``lerp(x, toward, weight)`` (FISTA's momentum
u + β·(u − u_prev)) and updates the module's running statistics. On the CPU in
full precision (:func:`lgn.nn.kernels.fused`) it takes its per-channel sums by
matrix products of channels-last activations, in one autograd function
(:class:`_BatchNorm`): PyTorch's batch norm of a channels-last tensor on CPU sums
in float32 (three digits lost) and is slow. Elsewhere it is ``nn.BatchNorm2d``
itself.

With a ``group`` (data-parallel training), the statistics are those of the
batches of all its processes, exactly as one process holding the whole batch:
the sums are added over the group forward and backward, by the group's own
``all_reduce_``. The group is carried by the module, :class:`BatchNorm2d`, and
set by whoever runs the processes (:mod:`lgn.train.distributed`); this module
imports nothing of ``torch.distributed``.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from lgn.nn import kernels
from lgn.nn.kernels import channels_last

__all__ = ["BatchNorm2d", "batch_norm", "Group"]


class Group(Protocol):
    """The processes whose batches are normalised together (e.g. :class:`lgn.train.distributed.World`)."""

    def all_reduce_(self, tensors: list[torch.Tensor]) -> None:
        """Replace each tensor by its sum over the processes."""


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` (same parameters, buffers and state dict) whose forward takes FISTA's momentum term.

    ``norm(x, toward, weight)`` normalises ``lerp(x, toward, weight)`` by
    :func:`batch_norm`; ``group`` (None: this process alone) is set by the
    trainer of a data-parallel run for the steps it takes.
    """

    def __init__(self, num_features: int, **kwargs):
        super().__init__(num_features, **kwargs)
        self.group: Group | None = None

    def forward(self, x: torch.Tensor, toward: torch.Tensor | None = None, weight: float = 0.0) -> torch.Tensor:
        return batch_norm(x, self, toward, weight, self.group)


def batch_norm(x: torch.Tensor, norm: nn.BatchNorm2d, toward: torch.Tensor | None = None, weight: float = 0.0,
               group: Group | None = None) -> torch.Tensor:
    """``norm(x)``, or ``norm(torch.lerp(x, toward, weight))``, updating ``norm``'s running statistics alike.

    ``x`` and ``toward`` are ``(N, C, H, W)``; ``weight`` < 1 (FISTA's momentum
    u + β·(u − u_prev) is ``weight`` = −β). In training mode on CPU the
    per-channel sums over the N·H·W positions are matrix products of each image,
    summed over the batch, and the backward pass returns both gradients of the
    interpolation from the same two passes (:class:`_BatchNorm`). In training
    mode with a ``group``, the statistics are those of the whole group's batch,
    on every device (the same autograd function; its sums in float32 under
    autocast).
    """
    group = group if norm.training else None
    if group is not None and torch.is_autocast_enabled(x.device.type):  # the synchronised sums in float32
        x, toward = x.float(), None if toward is None else toward.float()
    if not (norm.training and (kernels.fused(x) or group is not None)):
        return nn.BatchNorm2d.forward(norm, x if toward is None else torch.lerp(x, toward, weight))
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
            n = total.new_tensor([count])
            group.all_reduce_([total, squares, n])
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
        grad_sum, grad_m_sum = local_sum, local_m_sum
        if ctx.group is not None:  # the sums over the group; the local ones stay for weight and bias
            grad_sum, grad_m_sum = local_sum.clone(), local_m_sum.clone()
            ctx.group.all_reduce_([grad_sum, grad_m_sum])
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
