"""load_run: a run folder's model with its preprocessing, fed raw images."""

import json

import numpy as np
import pytest
import torch

from lgn.data import get_dataset, load_preprocessing
from lgn.models import load_model, load_run
from lgn.train import train
from tests.train.helpers import tiny_settings, write_tiny_npz


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    npz = write_tiny_npz(root / "d.npz")
    # raw pixels far from the standardised scale: the bare model must see something else
    with np.load(npz) as f:
        arrays = {k: (f[k] * 50 + 100).astype(np.float32) if k.startswith("x") else f[k] for k in f}
    np.savez(npz, **arrays)
    train(tiny_settings(npz, epochs=3), root / "out", log=None)
    return root / "out", npz


def test_load_run_on_raw_images_reproduces_the_recorded_test_accuracy(run):
    out, npz = run
    data = get_dataset(f"npz:{npz}")
    model = load_run(out)
    with torch.no_grad():
        logits = model(data.x_test)
    acc = int((logits.argmax(1) == data.y_test).sum()) / len(data.y_test)
    recorded = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["test_acc"]
    assert acc == pytest.approx(recorded, abs=1e-9) and acc > 0.5  # chance: 1/3
    bare = load_model(out)
    with torch.no_grad():
        assert torch.equal(logits, bare(load_preprocessing(out)(data.x_test)))
        assert not torch.allclose(logits, bare(data.x_test))  # raw data into the bare model: other outputs


def test_load_run_follows_the_device_and_needs_the_preprocessing(run, tmp_path):
    out, _ = run
    model = load_run(out).to(torch.float32)
    assert model.mean.device == next(model.model.parameters()).device
    assert not model.training
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("model.safetensors", "model.json"):
        (bare / name).write_bytes((out / name).read_bytes())
    with pytest.raises(FileNotFoundError, match="preprocess.safetensors"):
        load_run(bare)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_load_model_keeps_the_saved_float_dtype_whatever_order_the_tensors_come_in(run, tmp_path, monkeypatch, dtype):
    # safetensors returns its tensors in no set order; an integer counter (BatchNorm's
    # num_batches_tracked) coming first must not decide the model's dtype
    import lgn.models.io as io
    from lgn.models import save_model

    out, _ = run
    save_model(load_model(out).to(dtype), tmp_path)
    real = io.read_safetensors

    def integers_first(path, device="cpu"):
        state, metadata = real(path, device)
        assert any(not v.is_floating_point() for v in state.values())
        ordered = sorted(state.items(), key=lambda kv: kv[1].is_floating_point())
        return dict(ordered), metadata

    monkeypatch.setattr(io, "read_safetensors", integers_first)
    model = load_model(tmp_path)
    assert {p.dtype for p in model.parameters()} == {dtype}
