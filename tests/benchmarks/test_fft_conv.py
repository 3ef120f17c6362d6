"""The FFT convolutions of benchmarks/fft_conv.py compute what PyTorch's convolutions do (nothing here is timed)."""

import pytest
import torch
import torch.nn.functional as F

from benchmarks.fft_conv import SHAPES, TOLERANCE, fft_analysis, fft_size, fft_synthesis, fft_weight_grad, max_errors


def test_fft_size_is_the_least_5_smooth_number_at_least_n():
    assert [fft_size(n) for n in (30, 31, 34, 37, 49)] == [30, 32, 36, 40, 50]


@pytest.mark.parametrize("channels, size, kernel, padding", [(1, 11, 6, 1), (3, 12, 6, 1), (2, 9, 3, 0), (3, 10, 5, 2)])
def test_fft_convolutions_match_pytorch_in_float64(channels, size, kernel, padding):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, channels, size, size, generator=g, dtype=torch.float64)
    w = torch.randn(5, channels, kernel, kernel, generator=g, dtype=torch.float64, requires_grad=True)
    out = F.conv2d(x, w, padding=padding)
    grad = torch.randn(out.shape, generator=g, dtype=torch.float64)
    out.backward(grad)
    extra = size - ((out.shape[-1] - 1) - 2 * padding + kernel)
    w = w.detach()
    torch.testing.assert_close(fft_analysis(x, w, padding), out.detach(), rtol=0, atol=1e-10)
    torch.testing.assert_close(fft_synthesis(grad, w, padding, (size, size)),
                               F.conv_transpose2d(grad, w, padding=padding, output_padding=extra), rtol=0, atol=1e-10)
    wgrad = w.clone().requires_grad_()
    F.conv2d(x, wgrad, padding=padding).backward(grad)
    torch.testing.assert_close(fft_weight_grad(x, grad, padding, kernel), wgrad.grad, rtol=0, atol=1e-10)


@pytest.mark.parametrize("shape", SHAPES)
def test_the_benchmarks_check_passes_at_the_steps_shapes_in_float32(shape):
    errors = max_errors(*SHAPES[shape])
    assert set(errors) == {"analysis", "synthesis", "weight gradient"}
    assert max(errors.values()) <= TOLERANCE, errors
