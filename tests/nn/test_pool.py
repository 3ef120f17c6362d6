"""Orbit pooling: exact invariance of the pooled layers and models, against explicit matrix powers."""

import numpy as np
import pytest
import torch

from lgn.groups import operators
from lgn.groups.generators import cyclic_rotation_block
from lgn.models import build_model
from lgn.nn import GroupConv2d, GroupLinear
from lgn.nn.pool import orbit_pool
from lgn.testing import assert_invariant


def _orthogonal_order4(n: int) -> np.ndarray:
    """A dense orthogonal matrix of order 4, like the groups lgn discover returns: Q·R·Qᵀ."""
    q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((n, n)))
    return q @ cyclic_rotation_block(n, 4) @ q.T


GROUPS = {  # order-4 maps of 6×6 images, flattened row-major
    "perm4": operators.cyclic_permutation(36, 4, seed=2),
    "rot90": operators.rotation(6, 90),
    "found-like": _orthogonal_order4(36),
}


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.mark.parametrize("mode", ["max", "mean"])
@pytest.mark.parametrize("name", list(GROUPS))
def test_pooled_group_linear_is_exactly_invariant(tmp_path, float64, name, mode):
    t = GROUPS[name]
    np.save(tmp_path / "t.npy", t)
    layer = GroupLinear(36, 5, 4, bias=True, generator=f"file:{tmp_path / 't.npy'}", orbit_pool=mode)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(7, 36)
    y = layer(x)
    assert y.shape == (7, 5)
    # an independent computation: explicit powers of T, each orbit pooled by hand
    base = layer.bank.base.detach().reshape(5, 36).numpy()
    responses = np.stack([x.numpy() @ (np.linalg.matrix_power(t, i) @ base.T) for i in range(4)])  # (p, N, K)
    pooled = responses.max(0) if mode == "max" else responses.mean(0)
    np.testing.assert_allclose(y.detach().numpy(), pooled + layer.bias.detach().numpy(), atol=1e-10)
    assert assert_invariant(layer, t, x, atol=1e-10) < 1e-10
    assert assert_invariant(layer, np.linalg.matrix_power(t, 3), x, atol=1e-10) < 1e-10


def test_without_pooling_or_with_another_group_the_check_fails(float64):
    t = GROUPS["perm4"]
    x = torch.randn(4, 36)
    with pytest.raises(AssertionError, match="GroupLinear invariance: max deviation"):
        assert_invariant(GroupLinear(36, 5, 4, generator=t), t, x, atol=1e-6)
    with pytest.raises(AssertionError):
        assert_invariant(GroupLinear(36, 5, 4, generator=t, orbit_pool="max"), GROUPS["rot90"], x, atol=1e-6)


@pytest.mark.parametrize("mode", ["max", "mean"])
def test_pooled_layers_export_to_plain_modules_with_the_same_outputs(float64, mode):
    lin = GroupLinear(36, 3, 4, bias=True, generator=GROUPS["perm4"], orbit_pool=mode)
    conv = GroupConv2d(2, 3, 4, 3, padding=1, bias=True, generator="fixed:rot90", orbit_pool=mode)
    with torch.no_grad():
        lin.bias.normal_()
        conv.bias.normal_()
    x, img = torch.randn(5, 36), torch.randn(2, 2, 8, 8)
    assert conv(img).shape == (2, 3, 8, 8) and conv.bias.shape == (3,)
    for layer, inp in ((lin, x), (conv, img)):
        plain = layer.export()
        assert not any(isinstance(m, (GroupLinear, GroupConv2d)) for m in plain.modules())
        torch.testing.assert_close(plain(inp), layer(inp), atol=1e-12, rtol=0)


def test_orbit_pool_against_a_hand_worked_case():
    y = torch.tensor([[1.0, 2.0, 5.0, 0.0, 3.0, 4.0]])  # K = 2, p = 3, power-major: orbit 0 is 1, 5, 3
    assert torch.equal(orbit_pool(y, 2, 3, "max", dim=-1), torch.tensor([[5.0, 4.0]]))
    assert torch.equal(orbit_pool(y, 2, 3, "mean", dim=-1), torch.tensor([[3.0, 2.0]]))
    with pytest.raises(ValueError, match="orbit_pool must be one of max, mean or None, got 'sum'"):
        GroupLinear(4, 1, 2, orbit_pool="sum")


def test_pooled_conv_with_global_pooling_is_invariant_to_the_image_rotation(float64):
    conv = GroupConv2d(1, 3, 4, 4, padding=1, generator="fixed:rot90", orbit_pool="max")

    def features(x):
        return conv(x).mean(dim=(-2, -1))  # global spatial pooling: (batch, K)

    x = torch.randn(3, 1, 12, 12)
    assert (features(torch.rot90(x, 1, (-2, -1))) - features(x)).abs().max() < 1e-10
    # pooling over the orbit alone leaves a rotated map, not the same one
    assert (conv(torch.rot90(x, 1, (-2, -1))) - conv(x)).abs().max() > 1e-3


def test_unfolded_model_with_orbit_pooling_is_invariant_with_global_pooling_only(float64):
    model = build_model(image_size=12, n_layers=3, generator="fixed:rot90", orbit_pool="max", pool_size=1)
    assert not model.encoder.norms and model.encoder.thresholds[0].shape == (1, 5, 1, 1)
    assert assert_invariant(model, "rot90", atol=1e-10) < 1e-10
    assert assert_invariant(model.export(), "rot90", atol=1e-10) < 1e-10
    x = torch.randn(4, 1, 12, 12)
    torch.testing.assert_close(model.export()(x), model(x), atol=1e-12, rtol=0)
    spatial = build_model(image_size=12, n_layers=3, generator="fixed:rot90", orbit_pool="max", pool_size=3)
    with pytest.raises(AssertionError):  # a 3×3 pooled map feeds the head position by position
        assert_invariant(spatial, "rot90", x, atol=1e-6)


def test_group_mlp_on_a_found_group_is_invariant_and_the_plain_mlp_is_not(tmp_path, float64):
    t = _orthogonal_order4(64)
    np.save(tmp_path / "found.npy", t)
    found = build_model(architecture="mlp", image_size=8, n_groups=6, group_size=4, generator=f"file:{tmp_path}/found.npy",
                        orbit_pool="max")
    assert assert_invariant(found, t, atol=1e-10) < 1e-10
    exported = found.export()
    x = torch.randn(5, 1, 8, 8)
    torch.testing.assert_close(exported(x), found(x), atol=1e-12, rtol=0)
    plain = build_model(architecture="mlp", image_size=8, n_groups=6, group_size=4, generator="independent")
    with pytest.raises(AssertionError):
        assert_invariant(plain, t, x, atol=1e-6)
    n_found = sum(p.numel() for p in found.parameters() if p.requires_grad)
    assert n_found == 6 * 64 + 6 + (6 * 24 + 24) + (24 * 10 + 10)  # base rows, pooled bias, head
    assert sum(p.numel() for p in exported.parameters()) == 24 * 64 + 6 + (6 * 24 + 24) + (24 * 10 + 10)


def test_config_refuses_orbit_pooling_where_it_has_no_meaning():
    with pytest.raises(ValueError, match="orbit_pool needs task 'classify' and architecture 'lgn' or 'mlp'"):
        build_model(architecture="cnn", orbit_pool="max")
    with pytest.raises(ValueError, match="orbit_pool needs task 'classify'"):
        build_model(task="reconstruct", orbit_pool="mean")
    with pytest.raises(ValueError, match="orbit_pool must be one of max, mean or none, got 'min'"):
        build_model(orbit_pool="min")
