"""Code energy per orbit power on models whose answer is known."""

import numpy as np
import pytest
import torch

import lgn
from lgn.analysis import code_energy
from lgn.groups import FixedGenerator


def _model(matrix, p=4, k=3):
    torch.manual_seed(0)
    model = lgn.build_model(n_layers=1, n_groups=2, group_size=p, kernel_size=k, image_size=8, generator="free",
                            regularizer="none")
    bank = model.encoder.banks[0]
    bank.generator = FixedGenerator(torch.as_tensor(matrix, dtype=torch.float32), 2, 1)
    with torch.no_grad():
        model.encoder.thresholds[0].fill_(0.0)  # every response above 0 passes
    return model


def test_zero_generator_leaves_all_energy_to_power_0():
    model = _model(np.zeros((9, 9)))
    x = torch.randn(20, 1, 8, 8)
    fractions = code_energy(model, x, batch_size=7)
    assert fractions.shape == (4,)
    np.testing.assert_allclose(fractions, [1, 0, 0, 0], atol=1e-12)


def test_identity_generator_shares_energy_equally():
    model = _model(np.eye(9), p=3)
    fractions = code_energy(model, torch.randn(10, 1, 8, 8))
    np.testing.assert_allclose(fractions, [1 / 3] * 3, atol=1e-6)


def test_an_order_2_flip_on_mirrored_data_shares_equally():
    """A left-right flip generator on data made of images and their mirrors: the responses of b and of the
    flipped b are the same multiset, so each power carries half."""
    from lgn.groups import operators

    model = _model(operators.flip(3, "x"), p=2)
    x = torch.randn(16, 1, 8, 8)
    x = torch.cat([x, x.flip(-1)])
    fractions = code_energy(model, x)
    np.testing.assert_allclose(fractions, [0.5, 0.5], atol=1e-5)
    assert model.training  # left as it was


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        code_energy(_model(np.eye(9)), torch.randn(2, 1, 8, 8), batch_size=0)
