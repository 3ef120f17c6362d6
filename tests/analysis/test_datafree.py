"""The data-free path: Adam on the regulariser alone, exactly as training would take the generators without data."""

import numpy as np
import pytest
import torch

from lgn.analysis import data_free_generators, generator_cosines
from lgn.models import ModelConfig, build_model
from lgn.train import TrainConfig

TINY = dict(image_size=12, n_layers=2, n_groups=2, group_size=4, kernel_size=3)


def _model(**overrides):
    torch.manual_seed(0)
    return build_model(ModelConfig(task="reconstruct", **{**TINY, **overrides}))


def test_equals_adam_on_the_whole_models_regulariser_step_by_step():
    t = TrainConfig(epochs=4, lr=0.01, grad_clip=2.0)
    got = data_free_generators(_model(), t, steps_per_epoch=5)
    model = _model()  # the independent computation: the training step on the whole model, without a task loss
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=t.lr, eps=t.adam_eps)
    for rate in [0.01, 0.01, 0.005, 0.00125]:  # halved at epochs 2, 3 and 3: 1/2, 3/4 and 7/8 of 4, floored
        for group in optimizer.param_groups:
            group["lr"] = rate
        for _ in range(5):
            optimizer.zero_grad(set_to_none=True)
            model.regularization().backward()
            torch.nn.utils.clip_grad_norm_(params, t.grad_clip)
            optimizer.step()
            model.project_()
    want = model.generators().detach().double().numpy()
    assert got.shape == want.shape == (2, 2, 1, 9, 9)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_leaves_the_model_alone_and_keeps_the_projection():
    model = _model(reg_weight=1.0)
    before = model.generators().detach().clone()
    a = data_free_generators(model, TrainConfig(epochs=2, lr=0.01), steps_per_epoch=50)
    assert torch.equal(model.generators(), before)  # trained on a copy
    np.testing.assert_allclose(np.linalg.norm(a, axis=(-2, -1)), 1.0, rtol=1e-5)  # the projection: unit norm
    assert generator_cosines(a, before.double().numpy()).max() < 0.999  # and they moved


def test_refuses_generators_that_are_not_free():
    with pytest.raises(ValueError, match="free generators"):
        data_free_generators(_model(generator="cyclic"), TrainConfig(epochs=1), steps_per_epoch=1)
    with pytest.raises(ValueError, match="positive integer"):
        data_free_generators(_model(), TrainConfig(epochs=1), steps_per_epoch=0)


def test_generator_cosines_pair_by_position():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, 3, 1, 4, 4))
    b = a.copy()
    b[0, 1, 0] *= -3.0  # the opposite direction
    b[1, 2, 0] = 0.0    # nothing to compare
    c = generator_cosines(a, b)
    assert c.shape == (2, 3, 1)
    assert c[0, 1, 0] == pytest.approx(-1.0) and c[1, 2, 0] == 0.0
    assert np.delete(c.ravel(), [1, 5]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one shape"):
        generator_cosines(a, b[:1])
