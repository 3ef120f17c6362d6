"""load_model: the saved model as it was saved."""

import pytest
import torch

import lgn
from lgn.models import load_model, save_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A folder with a saved classifier (its batch norm holds an integer counter among the float tensors)."""
    out = tmp_path_factory.mktemp("saved")
    model = lgn.build_model(n_layers=2, n_groups=2, group_size=2, kernel_size=3, image_size=10, num_classes=3)
    save_model(model, out)
    return out


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_load_model_keeps_the_saved_float_dtype_whatever_order_the_tensors_come_in(saved, tmp_path, monkeypatch, dtype):
    # safetensors returns its tensors in no set order; an integer counter (BatchNorm's
    # num_batches_tracked) coming first must not decide the model's dtype
    import lgn.models.io as io

    save_model(load_model(saved).to(dtype), tmp_path)
    real = io.read_safetensors

    def integers_first(path, device="cpu"):
        state, metadata = real(path, device)
        assert any(not v.is_floating_point() for v in state.values())
        ordered = sorted(state.items(), key=lambda kv: kv[1].is_floating_point())
        return dict(ordered), metadata

    monkeypatch.setattr(io, "read_safetensors", integers_first)
    model = load_model(tmp_path)
    assert {p.dtype for p in model.parameters()} == {dtype}
