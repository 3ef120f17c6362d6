"""Model-wide re-projection and regulariser, and the layers' own, for any nn.Module holding lgn layers."""

import pytest
import torch
from torch import nn

import lgn
from lgn.nn import FilterBank, GroupConv2d, GroupLinear, OrbitBank


def _net(generator="free"):
    return nn.Sequential(GroupConv2d(1, 2, 3, 3, padding=1, generator=generator), nn.ReLU(),
                         nn.Sequential(GroupConv2d(6, 2, 2, 3, generator=generator)), nn.Flatten(),
                         GroupLinear(4 * 4 * 4, 2, 2, in_channels=4, generator=generator))


def _bases(net):
    return [m for m in net.modules() if isinstance(m, (OrbitBank, FilterBank))]


def test_project_reaches_every_nested_bank():
    net = _net()
    with torch.no_grad():
        for bank in _bases(net):
            bank.base.mul_(3.0)
            bank.generator.weight.mul_(2.0)
    assert lgn.nn.project_(net) is net
    for bank in _bases(net):
        norms = bank.base.flatten(2).norm(dim=-1)
        torch.testing.assert_close(norms, torch.ones_like(norms))
        torch.testing.assert_close(bank.generator.weight.flatten(2).norm(dim=-1),
                                   torch.ones(bank.generator.weight.shape[:2]))


def test_regularization_sums_each_bank_once_with_its_weight():
    net = _net()
    layers = [m for m in net.modules() if isinstance(m, (GroupConv2d, GroupLinear))]
    expected = sum(layer.regularization() for layer in layers)
    assert float(expected.detach()) > 0
    torch.testing.assert_close(lgn.nn.regularization(net), expected)
    torch.testing.assert_close(lgn.nn.regularization(net, weight=1e-4), 1e-4 * expected)


def test_the_lgn_model_uses_the_same_helpers():
    model = lgn.build_model(n_layers=2, n_groups=2, reg_weight=0.5)
    torch.testing.assert_close(model.regularization(), 0.5 * model.encoder.regularization())
    plain = nn.Linear(3, 2)
    assert float(lgn.nn.regularization(plain)) == 0.0 and lgn.nn.project_(plain) is plain
    with pytest.raises(TypeError, match="nn.Module"):
        lgn.nn.project_(torch.zeros(3))


@pytest.mark.parametrize("layer", [lambda g: GroupConv2d(3, 2, 4, 3, generator=g),
                                   lambda g: GroupLinear(18, 2, 4, in_channels=2, generator=g)])
def test_independent_layers_have_the_same_filter_count_and_no_group(layer):
    free, independent = layer("free"), layer("independent")
    assert isinstance(independent.bank, FilterBank)
    assert independent.weight.shape == free.weight.shape
    assert float(independent.regularization()) == 0.0
    with torch.no_grad():
        independent.bank.weight.mul_(4.0)
    independent.project_()
    norms = independent.bank.weight.flatten(2).norm(dim=-1)
    torch.testing.assert_close(norms, torch.ones_like(norms))
    x = torch.randn(2, 3, 5, 5) if isinstance(independent, GroupConv2d) else torch.randn(2, 18)
    assert torch.equal(independent.export()(x), independent(x).detach())
