import numpy as np
import pytest
import torch

from lgn.data import fit_preprocessing, load_preprocessing, save_preprocessing


def _images(n=300, c=2, h=4, w=3):
    g = torch.Generator().manual_seed(0)
    scale = torch.tensor([1.0, 5.0])[:c].view(1, c, 1, 1)
    return torch.rand(n, c, h, w, generator=g) * scale + 3.0


def test_standardisation_matches_numpy():
    x = _images()
    prep = fit_preprocessing(x)
    a = x.numpy().astype(np.float64)
    mean, std = a.mean(axis=(0, 2, 3)), a.std(axis=(0, 2, 3))
    np.testing.assert_allclose(prep.mean.numpy(), mean, rtol=1e-5)
    np.testing.assert_allclose(prep.std.numpy(), std, rtol=1e-5)
    z = prep(x).double()
    np.testing.assert_allclose(z.mean(dim=(0, 2, 3)).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(dim=(0, 2, 3), correction=0).numpy(), 1, atol=1e-5)


def test_constant_channel_keeps_unit_std():
    x = torch.ones(5, 1, 3, 3)
    z = fit_preprocessing(x)(x)
    assert torch.equal(z, torch.zeros_like(z))


def test_zca_whitens_and_inverts():
    x = _images()
    # correlate pixels so whitening has work to do
    x = x + 2.0 * x[:, :, :1, :1]
    prep = fit_preprocessing(x, zca=True, zca_epsilon=1e-6)
    z = prep(x).flatten(1).double()
    cov = torch.cov(z.T, correction=0)
    np.testing.assert_allclose(cov.numpy(), np.eye(z.shape[1]), atol=1e-3)
    # ZCA's W is symmetric (the zero-phase whitening)
    torch.testing.assert_close(prep.zca, prep.zca.T)
    torch.testing.assert_close(prep.invert(prep(x)), x, atol=1e-4, rtol=1e-4)


def test_save_load_round_trip(tmp_path):
    x = _images()
    for zca in (False, True):
        prep = fit_preprocessing(x, zca=zca)
        save_preprocessing(prep, tmp_path)
        back = load_preprocessing(tmp_path)
        assert torch.equal(back(x), prep(x))


def test_wrong_shape_is_refused():
    prep = fit_preprocessing(_images(), zca=True)
    with pytest.raises(ValueError, match="expects"):
        prep(torch.zeros(2, 3, 4, 3))
    with pytest.raises(ValueError, match="ZCA was fitted"):
        prep(torch.zeros(2, 2, 5, 5))
