import math

import numpy as np
import pytest
import torch

from lgn import build_model
from lgn.nn.unfolded import momentum_weights


def _conv(x, w, pad):
    """Cross-correlation of x (C, H, W) with w (F, C, k, k), zero padding, stride 1, by loops."""
    F_, C, k, _ = w.shape
    H, W = x.shape[1:]
    xp = np.zeros((C, H + 2 * pad, W + 2 * pad))
    xp[:, pad:pad + H, pad:pad + W] = x
    h, ww = H + 2 * pad - k + 1, W + 2 * pad - k + 1
    out = np.zeros((F_, h, ww))
    for f in range(F_):
        for i in range(h):
            for j in range(ww):
                out[f, i, j] = np.sum(xp[:, i:i + k, j:j + k] * w[f])
    return out


def _conv_adjoint(u, w, pad, size):
    """The adjoint of _conv: scatter each code value back through its filter."""
    F_, C, k, _ = w.shape
    H, W = size
    xp = np.zeros((C, H + 2 * pad, W + 2 * pad))
    for f in range(F_):
        for i in range(u.shape[1]):
            for j in range(u.shape[2]):
                xp[:, i:i + k, j:j + k] += u[f, i, j] * w[f]
    return xp[:, pad:pad + H, pad:pad + W]


def test_momentum_weights_follow_fista():
    t, expected = 1.0, []
    for _ in range(5):
        t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
        expected.append((t - 1) / t_new)
        t = t_new
    assert momentum_weights(5) == pytest.approx(expected)
    assert momentum_weights(2)[0] == 0.0


def test_unfolded_update_by_hand_on_4x4():
    """The docs/method.md §4 iteration, written out with loops on a 1×1×4×4 image."""
    model = build_model(task="reconstruct", in_channels=1, image_size=4, n_layers=3, n_groups=1,
                        group_size=2, kernel_size=2, eta=0.3).double()
    with torch.no_grad():
        for lam in model.encoder.thresholds:
            lam.uniform_(0.0, 0.5)
    y = np.arange(16, dtype=np.float64).reshape(1, 4, 4) / 8.0 - 0.7
    weights = [w.detach().numpy() for w in model.encoder.filters()]
    lams = [lam.detach().numpy().reshape(-1, 1, 1) for lam in model.encoder.thresholds]
    eta, pad = 0.3, 1
    u_prev = np.zeros((2, 5, 5))
    u_mom = np.zeros((2, 5, 5))
    t = 1.0
    for w, lam in zip(weights, lams):
        r = y - _conv_adjoint(u_mom, w, pad, (4, 4))
        u_new = np.maximum(u_mom + eta * _conv(r, w, pad) - eta * lam, 0.0)
        t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
        u_mom = u_new + ((t - 1) / t_new) * (u_new - u_prev)
        u_prev, t = u_new, t_new
    code = model.encode(torch.from_numpy(y)[None]).detach().numpy()[0]
    assert np.abs(code).max() > 0.01  # the example is not trivially zero
    np.testing.assert_allclose(code, u_prev, rtol=0, atol=1e-12)
    d = model.head.dictionary.detach().numpy()
    recon = model(torch.from_numpy(y)[None]).detach().numpy()[0]
    np.testing.assert_allclose(recon, _conv_adjoint(u_prev, d, pad, (4, 4)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("task", ["classify", "reconstruct"])
@pytest.mark.parametrize("generator", ["free", "cyclic"])
def test_gradients_reach_generators_and_base_filters(task, generator):
    model = build_model(task=task, image_size=12, kernel_size=4, n_layers=3, generator=generator).double()
    x = torch.randn(4, 1, 12, 12, dtype=torch.float64)
    out = model(x)
    loss = out.square().mean() + model.regularization()
    loss.backward()
    for l, bank in enumerate(model.encoder.banks):
        for name, p in bank.named_parameters():
            assert p.grad is not None, f"layer {l} {name} got no gradient"
            assert torch.isfinite(p.grad).all()
            assert p.grad.abs().max() > 0, f"layer {l} {name} has an all-zero gradient"


def test_state_dict_is_the_same_in_train_and_eval_mode():
    model = build_model(image_size=12, kernel_size=4)
    model.train()
    model(torch.randn(8, 1, 12, 12))
    train_sd = model.state_dict()
    model.eval()
    model(torch.randn(8, 1, 12, 12))
    eval_sd = model.state_dict()
    assert list(train_sd) == list(eval_sd)
    for k in train_sd:
        torch.testing.assert_close(train_sd[k], eval_sd[k], rtol=0, atol=0)


@pytest.mark.parametrize("task", ["classify", "reconstruct"])
@pytest.mark.parametrize("generator", ["free", "cyclic", "fixed:rot90", "independent"])
def test_model_export_matches(task, generator):
    model = build_model(task=task, image_size=14, in_channels=3, generator=generator).double().eval()
    x = torch.randn(3, 3, 14, 14, dtype=torch.float64)
    exported = model.export()
    assert exported.generators() is None
    assert not any("generator" in k for k in exported.state_dict())
    torch.testing.assert_close(exported(x), model(x), rtol=0, atol=1e-10)


def test_joint_action_shapes():
    model = build_model(in_channels=3, image_size=16, action="joint")
    a = model.generators()
    assert a.shape == (4, 5, 1, 3 * 36, 3 * 36)
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_code_shape_follows_spec_padding():
    model = build_model(image_size=28, stride=2)
    code = model.encode(torch.randn(2, 1, 28, 28))
    h = (28 + 2 * 2 - 6) // 2 + 1
    assert code.shape == (2, 20, h, h)
    recon = build_model(task="reconstruct", image_size=28, stride=2)
    assert recon(torch.randn(2, 1, 28, 28)).shape == (2, 1, 28, 28)


@pytest.mark.parametrize("task", ["classify", "reconstruct"])
def test_reset_parameters_of_encoder_and_head_redraw_the_model_as_built(task):
    from lgn.models import LGN, ModelConfig

    config = ModelConfig(task=task, n_layers=3, image_size=12, generator="cyclic")
    torch.manual_seed(3)
    fresh = LGN(config)
    model = LGN(config)
    model.train()(torch.randn(4, 1, 12, 12))  # moves the batch norms' running statistics
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    torch.manual_seed(3)
    model.encoder.reset_parameters()
    model.head.reset_parameters()
    for key, value in fresh.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_encoder_and_heads_describe_themselves():
    model = build_model(n_layers=2, stride=2, padding=1)
    assert repr(model.encoder).splitlines()[1].strip() == \
        "n_layers=2, n_filters=20, in_channels=1, kernel_size=6, stride=2, padding=1, eta=0.01"
    assert "ClassifierHead(\n    pool=4" in repr(model)
    decoder = build_model(task="reconstruct", kernel_size=4).head
    assert repr(decoder) == "Decoder(n_filters=20, in_channels=1, kernel_size=4, stride=1, padding=1)"
