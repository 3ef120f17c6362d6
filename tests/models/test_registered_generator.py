"""A generator of the user's own, registered by name, builds and trains as a built-in one does."""

import pytest
import torch
from torch import nn

import lgn
from lgn.groups import Generator, register_generator, registry
from lgn.models import ModelConfig
from lgn.train import TrainConfig, fit


class Diagonal(Generator):
    """A = diag(exp(θ)): a learned scaling of each filter value, invertible for every θ."""

    def __init__(self, n_groups, n_blocks, dim, init=0.1):
        super().__init__(n_groups, n_blocks, dim)
        self.log_scale = nn.Parameter(init * torch.randn(n_groups, n_blocks, dim))

    def matrix(self):  # (n_groups, n_blocks, dim, dim)
        return torch.diag_embed(self.log_scale.exp())


@pytest.fixture
def diagonal(monkeypatch):
    monkeypatch.setattr(registry, "_NAMES", dict(registry._NAMES))  # the registration ends with the test
    register_generator("diagonal", lambda shape, *, init=0.1: Diagonal(shape.n_groups, shape.n_blocks, shape.dim,
                                                                        init))
    return "diagonal"


def test_unregistered_name_is_refused_by_the_config_listing_the_choices():
    with pytest.raises(ValueError, match=r"^generator must be one of free, .*fixed:rot90, .*independent, "
                                         r"got 'diagonal'$"):
        ModelConfig(generator="diagonal")


def test_registered_generator_builds_a_model_that_trains_one_step(diagonal):
    torch.manual_seed(0)
    model = lgn.build_model(generator=diagonal, n_layers=2, n_groups=3, group_size=3, kernel_size=3,
                            image_size=8, num_classes=2)
    assert ModelConfig(generator=diagonal).generator_options() == {}  # no regularizer: its factory takes none
    bank = model.encoder.banks[0]
    before = bank.generator.log_scale.detach().clone()
    # the filters are the orbit under A = diag(exp(θ)): filter i·K + g is exp(i·θ_g) ⊙ B_g
    expected = torch.cat([(i * before).exp().reshape(3, 1, 3, 3) * bank.base.detach() for i in range(3)])
    torch.testing.assert_close(bank(), expected)

    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 2, (16,))
    records = fit(model, x, y, TrainConfig(epochs=1, batch_size=16, progress=False))
    assert [r["step"] for r in records] == [1]
    after = bank.generator.log_scale.detach()
    assert not torch.equal(after, before)  # the optimiser moved θ
    a = model.generators()  # (L, K, C', d, d)
    assert a.shape == (2, 3, 1, 9, 9)
    torch.testing.assert_close(a[0], torch.diag_embed(after.exp()), rtol=0, atol=0)


def test_registered_generator_in_a_layer_with_its_options(diagonal):
    conv = lgn.GroupConv2d(2, n_groups=3, group_size=2, kernel_size=3, generator=diagonal,
                           generator_options={"init": 0.0})
    assert isinstance(conv.bank.generator, Diagonal)
    torch.testing.assert_close(conv.generators(), torch.eye(9).expand(3, 2, 9, 9))  # θ = 0: A = I
    with pytest.raises(ValueError, match="has no option"):
        lgn.GroupConv2d(2, 3, 2, 3, generator=diagonal, generator_options={"regularizer": "none"})
