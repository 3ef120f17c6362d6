"""The group MLP and generator='file:PATH' in the model config: build, save, load, export, errors."""

import numpy as np
import pytest
import torch

from lgn.data.planted import planted_generator
from lgn.models import ModelConfig, build_model, load_model, save_model


def test_a_found_model_saves_and_loads_from_its_file(tmp_path):
    t, order = planted_generator("perm4", 6)
    np.save(tmp_path / "t.npy", t)
    model = build_model(architecture="mlp", image_size=6, n_groups=4, group_size=order,
                        generator=f"file:{tmp_path / 't.npy'}", orbit_pool="max").eval()
    x = torch.randn(5, 1, 6, 6)
    loaded = load_model(save_model(model, tmp_path / "saved"))
    torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)
    assert torch.equal(loaded.generators()[0, 0, 0], torch.as_tensor(t, dtype=torch.float32))
    assert model.encode(x).shape == (5, 4)
    plain = build_model(architecture="mlp", image_size=6, n_groups=4, group_size=order, generator="independent")
    assert plain.encode(x).shape == (5, 16) and plain.generators() is None


def test_config_errors(tmp_path):
    with pytest.raises(ValueError, match="generator must be one of .*, file:PATH, independent, got 'file:'"):
        ModelConfig(generator="file:")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_model(architecture="mlp", image_size=6, generator=f"file:{tmp_path / 'missing.npy'}")
    with pytest.raises(ValueError, match="architecture 'mlp' classifies only"):
        ModelConfig(architecture="mlp", task="reconstruct")
    model = build_model(architecture="mlp", image_size=6, generator="independent")
    with pytest.raises(ValueError, match=r"expected \(batch, 1, 6, 6\), got \(2, 1, 7, 7\)"):
        model(torch.randn(2, 1, 7, 7))
