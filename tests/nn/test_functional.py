"""The functional forms of the orbit layers against explicit matrix powers and a dense computation."""

import pytest
import torch
import torch.nn.functional as F

from lgn.nn import GroupConv2d, GroupLinear
from lgn.nn.functional import group_conv2d, group_linear, orbit_filters


def _explicit_filters(A: torch.Tensor, B: torch.Tensor, p: int) -> torch.Tensor:
    """``(p·K, C, *filter)``: filter i·K + g is A_g**i (by torch.linalg.matrix_power) on each block of B_g."""
    K, blocks, d, _ = A.shape
    out = []
    for i in range(p):
        for g in range(K):
            power = torch.linalg.matrix_power(A[g], i)  # (C', d, d)
            out.append((power @ B[g].reshape(blocks, d, 1)).reshape(B.shape[1:]))
    return torch.stack(out)


def _dense_conv(x, w, stride, padding, bias):
    """conv2d as one product with the unfolded input: out[n, f, l] = Σ_j w[f, j]·cols[n, j, l] + bias[f]."""
    N, _, H, W = x.shape
    k = w.shape[-1]
    cols = F.unfold(x, k, padding=padding, stride=stride)  # (N, C·k·k, L)
    out = torch.einsum("fj,njl->nfl", w.reshape(w.shape[0], -1), cols) + bias[None, :, None]
    h = (H + 2 * padding - k) // stride + 1
    return out.reshape(N, w.shape[0], h, -1)


@pytest.mark.parametrize("joint", [False, True])
@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1)])
def test_group_conv2d_is_the_convolution_with_the_explicit_orbit(joint, stride, padding):
    torch.manual_seed(0)
    K, C, k, p = 3, 2, 3, 4
    A = torch.randn(K, 1 if joint else C, C * k * k if joint else k * k, C * k * k if joint else k * k,
                    dtype=torch.float64) / 3
    B = torch.randn(K, C, k, k, dtype=torch.float64)
    bias = torch.randn(p * K, dtype=torch.float64)
    x = torch.randn(2, C, 9, 8, dtype=torch.float64)
    w = _explicit_filters(A, B, p)
    torch.testing.assert_close(orbit_filters(A, B, p), w, rtol=0, atol=1e-12)
    got = group_conv2d(x, A, B, p, stride=stride, padding=padding, bias=bias)
    torch.testing.assert_close(got, _dense_conv(x, w, stride, padding, bias), rtol=0, atol=1e-12)


@pytest.mark.parametrize("joint", [False, True])
def test_group_linear_is_the_product_with_the_explicit_orbit(joint):
    torch.manual_seed(1)
    K, C, n, p = 2, 3, 5, 3
    A = torch.randn(K, 1 if joint else C, C * n if joint else n, C * n if joint else n, dtype=torch.float64) / 2
    B = torch.randn(K, C, n, dtype=torch.float64)
    bias = torch.randn(p * K, dtype=torch.float64)
    x = torch.randn(4, C * n, dtype=torch.float64)
    rows = _explicit_filters(A, B, p).reshape(p * K, C * n)
    expected = torch.einsum("bj,fj->bf", x, rows) + bias
    torch.testing.assert_close(group_linear(x, A, B, p, bias), expected, rtol=0, atol=1e-12)


def test_layers_compute_their_functional_form_exactly():
    torch.manual_seed(2)
    conv = GroupConv2d(3, 2, 4, 5, stride=2, padding=1, bias=True, generator="cyclic")
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(2, 3, 13, 13)
    assert torch.equal(conv(x), group_conv2d(x, conv.generators(), conv.bank.base, 4, stride=2, padding=1,
                                             bias=conv.bias))
    lin = GroupLinear(12, 3, 2, in_channels=2, action="joint", bias=True)
    z = torch.randn(5, 12)
    assert torch.equal(lin(z), group_linear(z, lin.generators(), lin.bank.base, 2, lin.bias))


def test_orbit_filters_names_mismatched_shapes():
    with pytest.raises(ValueError, match=r"generators must be \(K=2, C', d, d\) with C'·d = 18 .*got \(2, 2, 8, 8\)"):
        orbit_filters(torch.randn(2, 2, 8, 8), torch.randn(2, 2, 3, 3), 4)
