import numpy as np
import pytest
import torch

from lgn.groups import CyclicGenerator, FixedGenerator, operators
from lgn.nn import FilterBank, GroupConv2d, GroupLinear, OrbitBank
from lgn.nn.functional import analysis, synthesis
from lgn.testing import assert_conv_equivariant, assert_linear_equivariant


@pytest.mark.parametrize("action", ["channel", "joint"])
def test_orbit_bank_is_power_major_orbit(action):
    bank = OrbitBank(3, 2, 4, (3, 3), "free", action).double()
    w = bank()
    assert w.shape == (8, 3, 3, 3)
    a = bank.generator.matrix().detach()
    b = bank.base.detach()
    for i in range(4):
        for g in range(2):
            if action == "channel":
                expected = torch.stack([torch.linalg.matrix_power(a[g, c], i) @ b[g, c].reshape(9)
                                        for c in range(3)]).reshape(3, 3, 3)
            else:
                expected = (torch.linalg.matrix_power(a[g, 0], i) @ b[g].reshape(27)).reshape(3, 3, 3)
            torch.testing.assert_close(w[i * 2 + g], expected, rtol=0, atol=1e-12)


def test_orbit_bank_projection_gives_unit_kernels():
    bank = OrbitBank(2, 3, 2, (4, 4))
    with torch.no_grad():
        bank.base.mul_(5)
    bank.project_()
    torch.testing.assert_close(bank.base.flatten(2).norm(dim=-1), torch.ones(3, 2))


def test_orbit_bank_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_groups"):
        OrbitBank(1, 0, 2, (3, 3))
    with pytest.raises(ValueError, match="group_size"):
        OrbitBank(1, 2, 0, (3, 3))
    with pytest.raises(ValueError, match="action"):
        OrbitBank(1, 2, 2, (3, 3), action="both")
    with pytest.raises(ValueError, match="shape"):
        OrbitBank(1, 2, 2, (3, 3), generator=FixedGenerator(torch.eye(4), 2, 1))


def _dense_conv_matrix(weight, size, stride, padding):
    """Dense M with analysis(x).flatten() = M @ x.flatten(), built pixel by pixel."""
    F_, C, k, _ = weight.shape
    H, W = size
    h_out = (H + 2 * padding - k) // stride + 1
    w_out = (W + 2 * padding - k) // stride + 1
    m = np.zeros((F_ * h_out * w_out, C * H * W))
    wt = weight.numpy()
    for f in range(F_):
        for i in range(h_out):
            for j in range(w_out):
                row = (f * h_out + i) * w_out + j
                for c in range(C):
                    for a in range(k):
                        for b in range(k):
                            r, q = i * stride - padding + a, j * stride - padding + b
                            if 0 <= r < H and 0 <= q < W:
                                m[row, (c * H + r) * W + q] += wt[f, c, a, b]
    return m, (h_out, w_out)


@pytest.mark.parametrize("size,stride,k", [((7, 7), 1, 3), ((9, 8), 2, 4), ((10, 10), 2, 3), ((11, 9), 3, 4)])
def test_analysis_and_synthesis_match_dense_matrix(size, stride, k):
    weight = torch.randn(3, 2, k, k, dtype=torch.float64)
    m, (h, w) = _dense_conv_matrix(weight, size, stride, stride)
    x = torch.randn(2, 2, *size, dtype=torch.float64)
    u = torch.randn(2, 3, h, w, dtype=torch.float64)
    out = analysis(x, weight, stride, stride)
    np.testing.assert_allclose(out.reshape(2, -1).numpy(), x.reshape(2, -1).numpy() @ m.T, atol=1e-10)
    back = synthesis(u, weight, stride, stride, size)
    assert back.shape == (2, 2, *size)
    np.testing.assert_allclose(back.reshape(2, -1).numpy(), u.reshape(2, -1).numpy() @ m, atol=1e-10)


def test_group_conv_export_matches():
    conv = GroupConv2d(3, 2, 4, 5, stride=2, padding=1, bias=True).double()
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(2, 3, 17, 17, dtype=torch.float64)
    plain = conv.export()
    assert type(plain) is torch.nn.Conv2d
    torch.testing.assert_close(plain(x), conv(x), rtol=0, atol=1e-12)


def test_group_linear_export_matches():
    lin = GroupLinear(18, 3, 2, in_channels=2, bias=True, action="joint").double()
    x = torch.randn(5, 18, dtype=torch.float64)
    plain = lin.export()
    assert type(plain) is torch.nn.Linear
    torch.testing.assert_close(plain(x), lin(x), rtol=0, atol=1e-12)


def _linear_groups(k):
    n = k * k
    return {
        "shift": operators.shift(k, 1, 0),
        "rotation": operators.rotation(k, 90),
        "flip": operators.flip(k, "y"),
        "permutation": operators.cyclic_permutation(n, 3, seed=3),
        "trivial": operators.identity(k),
    }


@pytest.mark.parametrize("name,order", [("shift", 4), ("rotation", 4), ("flip", 2), ("permutation", 3),
                                        ("trivial", 1)])
@pytest.mark.parametrize("channels", [1, 2])
def test_group_linear_equivariance_over_groups(name, order, channels):
    m = _linear_groups(4)[name]
    gen = FixedGenerator(m, 3, channels)
    lin = GroupLinear(16 * channels, 3, order, in_channels=channels, generator=gen).double()
    assert assert_linear_equivariant(lin, torch.randn(6, 16 * channels, dtype=torch.float64), atol=1e-10) < 1e-10


def test_group_linear_equivariance_with_learned_exact_group():
    lin = GroupLinear(9, 2, 5, generator=CyclicGenerator(2, 1, 9, 5)).double()
    assert_linear_equivariant(lin, atol=1e-9)


def test_equivariance_check_fails_for_a_non_group():
    lin = GroupLinear(9, 2, 4, generator="free").double()
    with pytest.raises(AssertionError, match="deviation"):
        assert_linear_equivariant(lin, atol=1e-6)


@pytest.mark.parametrize("op,order", [("rot90", 4), ("flip-x", 2), ("flip-y", 2), ("transpose", 2)])
def test_group_conv_equivariance(op, order):
    conv = GroupConv2d(2, 3, order, 5, padding=2, generator=f"fixed:{op}").double()
    x = torch.randn(3, 2, 11, 11, dtype=torch.float64)
    assert assert_conv_equivariant(conv, op, x, atol=1e-10) < 1e-10


def test_conv_equivariance_check_detects_a_wrong_group():
    conv = GroupConv2d(1, 2, 4, 3, padding=1, generator="fixed:rot90").double()
    with pytest.raises(AssertionError):
        assert_conv_equivariant(conv, "flip-x", atol=1e-6)


@pytest.mark.parametrize("x,error,match", [
    (torch.randn(3, 28, 28), ValueError, r"expected shape \(batch, 1, height, width\)"),
    (torch.randn(2, 3, 28, 28), ValueError, "3 channels instead of 1"),
    (torch.randint(0, 5, (2, 1, 8, 8)), TypeError, "floating-point"),
    (torch.randn(2, 1, 8, 8, dtype=torch.float64), TypeError, "float32"),
    (np.zeros((2, 1, 8, 8), dtype=np.float32), TypeError, "torch.Tensor"),
    (torch.randn(2, 1, 2, 2), ValueError, "at least"),
])
def test_group_conv_bad_input(x, error, match):
    conv = GroupConv2d(1, 2, 2, 5)
    with pytest.raises(error, match=match):
        conv(x)


def test_group_linear_bad_input():
    lin = GroupLinear(16, 2, 2)
    with pytest.raises(ValueError, match=r"\(\.\.\., 16\)"):
        lin(torch.randn(3, 15))
    with pytest.raises(ValueError, match="multiple"):
        GroupLinear(15, 2, 2, in_channels=2)


def test_filter_bank_checks_weight_shape():
    with pytest.raises(ValueError, match="shape"):
        FilterBank(4, 1, (3, 3), weight=torch.randn(4, 1, 2, 2))


_LAYERS = {
    "conv": lambda gen: GroupConv2d(3, 2, 4, 3, padding=1, bias=True, generator=gen),
    "linear": lambda gen: GroupLinear(18, 3, 2, in_channels=2, bias=True, generator=gen),
}


@pytest.mark.parametrize("layer", sorted(_LAYERS))
@pytest.mark.parametrize("generator", ["free", "cyclic", "permute", "fixed:identity", "independent"])
def test_reset_parameters_draws_as_construction_does(layer, generator):
    if generator == "fixed:identity" and layer == "linear":
        generator = "free"  # a pixel operator needs square kernels
    torch.manual_seed(5)
    fresh = _LAYERS[layer](generator)
    torch.manual_seed(6)
    reset = _LAYERS[layer](generator)
    with torch.no_grad():
        for p in reset.parameters():
            p.add_(1.0)  # away from any initial value, bias included
    torch.manual_seed(5)
    reset.reset_parameters()
    assert fresh.state_dict().keys() == reset.state_dict().keys()
    for key, value in fresh.state_dict().items():
        assert torch.equal(reset.state_dict()[key], value), key


def test_reset_parameters_of_a_generator_without_one_is_refused():
    from lgn.groups import Generator

    class Scale(Generator):
        def __init__(self):
            super().__init__(2, 1, 9)
            self.s = torch.nn.Parameter(torch.ones(()))

        def matrix(self):
            return self.s * torch.eye(9).expand(2, 1, 9, 9)

    conv = GroupConv2d(1, 2, 3, 3, generator=Scale())
    with pytest.raises(NotImplementedError, match="Scale does not define reset_parameters"):
        conv.reset_parameters()


def test_generators_accessor_gives_the_layers_matrices():
    conv = GroupConv2d(2, 3, 4, 3, generator="fixed:rot90")
    a = conv.generators()
    assert a.shape == (3, 2, 9, 9)  # (n_groups, n_blocks = in_channels, dim, dim)
    rot = torch.as_tensor(operators.rotation(3, 90), dtype=a.dtype)
    assert torch.equal(a, rot.expand(3, 2, 9, 9))
    joint = GroupLinear(18, 3, 2, in_channels=2, action="joint")
    assert joint.generators().shape == (3, 1, 18, 18)
    assert torch.equal(joint.generators(), joint.bank.generator.weight)
    assert GroupConv2d(2, 3, 4, 3, generator="independent").generators() is None


def test_layers_describe_themselves():
    conv = GroupConv2d(3, 4, 2, 5, stride=2, padding=2, generator="cyclic")
    assert repr(conv).splitlines()[1].strip() == \
        "3, n_groups=4, group_size=2, kernel_size=(5, 5), stride=(2, 2), padding=(2, 2), dilation=(1, 1), bias=False"
    assert "CyclicGenerator(n_groups=4, n_blocks=3, dim=25, order=2)" in repr(conv)
    lin = GroupLinear(12, 2, 3, in_channels=3, bias=True, generator="independent")
    assert repr(lin).splitlines()[1].strip() == "in_features=12, n_groups=2, group_size=3, in_channels=3, bias=True"
    assert "FilterBank(n_filters=6, in_channels=3, filter_shape=(4,))" in repr(lin)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's own, as for nn.Conv2d
@pytest.mark.parametrize("geometry", [
    dict(kernel_size=(3, 5), stride=(1, 2), padding=(1, 0)),
    dict(kernel_size=3, padding="same", dilation=2),
    dict(kernel_size=(4, 2), padding="same"),           # even kernels: torch pads one more on the far side
    dict(kernel_size=3, stride=2, padding="valid", dilation=(2, 1)),
    dict(kernel_size=[2, 3], padding=[2, 1], dilation=[1, 3]),
])
def test_conv_geometry_is_torch_s(geometry):
    """Tuples, 'same', 'valid' and dilation give what nn.Conv2d gives with the same weights."""
    torch.manual_seed(0)
    conv = GroupConv2d(2, 3, 2, bias=True, **geometry).double()
    torch.nn.init.normal_(conv.bias)
    plain = torch.nn.Conv2d(2, 6, **geometry).double()
    with torch.no_grad():
        plain.weight.copy_(conv.weight)
        plain.bias.copy_(conv.bias)
    x = torch.randn(2, 2, 11, 12, dtype=torch.float64)
    torch.testing.assert_close(conv(x), plain(x), rtol=0, atol=1e-12)
    torch.testing.assert_close(conv.export()(x), plain(x), rtol=0, atol=1e-12)
    assert conv.export().padding == plain.padding and conv.export().dilation == plain.dilation


def test_conv_geometry_is_checked_and_the_bias_is_off_by_default():
    assert GroupConv2d(1, 2, 2, 3).bias is None and torch.nn.Conv2d(1, 4, 3).bias is not None
    with pytest.raises(ValueError, match=r"kernel_size must be a positive integer or a pair of them, got \(3, 0\)"):
        GroupConv2d(1, 2, 2, (3, 0))
    with pytest.raises(ValueError, match="dilation must be a positive integer or a pair of them, got 0"):
        GroupConv2d(1, 2, 2, 3, dilation=0)
    with pytest.raises(ValueError, match="padding must be a non-negative integer or a pair of them, got -1"):
        GroupConv2d(1, 2, 2, 3, padding=-1)
    with pytest.raises(ValueError, match="padding must be an integer, a pair of them, 'same' or 'valid', got 'full'"):
        GroupConv2d(1, 2, 2, 3, padding="full")
    with pytest.raises(ValueError, match=r"padding='same' needs stride 1 .*, got stride=\(2, 2\)"):
        GroupConv2d(1, 2, 2, 3, stride=2, padding="same")
    conv = GroupConv2d(1, 2, 2, (3, 5), dilation=(1, 2))  # extent 3 × 9
    with pytest.raises(ValueError, match=r"images must be at least 3×9 for this kernel, got \(12, 8\)"):
        conv(torch.randn(1, 1, 12, 8))
    assert conv(torch.randn(1, 1, 3, 9)).shape == (1, 4, 1, 1)
