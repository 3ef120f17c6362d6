"""Reading a run back: load_run (the model behind its preprocessing) and load_run_split (a LoadedRun)."""

import json
import shutil

import numpy as np
import pytest
import torch

from lgn.data import get_dataset, load_preprocessing
from lgn.models import load_model
from lgn.runs import LoadedRun, load_run, load_run_split
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
    train({**tiny_settings(npz, epochs=3), "data": {"name": f"npz:{npz}", "test_subset": 20}}, root / "out", log=None)
    return root / "out", npz


def test_load_run_on_raw_images_reproduces_the_recorded_test_accuracy(run):
    out, npz = run
    data = get_dataset(f"npz:{npz}").subset(None, 20)
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


@pytest.mark.parametrize("split", ["train", "test"])
def test_a_split_comes_back_as_the_run_saw_it(run, split):
    out, npz = run
    loaded = load_run_split(out, split=split)
    assert isinstance(loaded, LoadedRun)
    raw = get_dataset(f"npz:{npz}").subset(None, 20)  # the run's own test_subset is applied
    x, y = (raw.x_train, raw.y_train) if split == "train" else (raw.x_test, raw.y_test)
    prep = load_preprocessing(out)
    assert loaded.split == split and loaded.name == f"npz:{npz}" and loaded.folder == out
    assert loaded.x.shape == x.shape == (48 if split == "train" else 20, 1, 10, 10)
    assert torch.equal(loaded.x, prep(x)) and torch.equal(loaded.y, y)
    assert torch.equal(loaded.preprocessing.mean, prep.mean)
    assert loaded.config == json.loads((out / "config.json").read_text())
    assert not loaded.model.training
    with torch.no_grad():
        assert torch.equal(loaded.model(loaded.x), load_run(out)(x))


def test_another_dataset_drops_the_runs_subsets(run, tmp_path):
    out, _ = run
    other = write_tiny_npz(tmp_path / "other.npz", n_train=9, n_test=6, seed=5)
    loaded = load_run_split(out, dataset=f"npz:{other}")
    assert loaded.name == f"npz:{other}" and len(loaded.x) == len(loaded.y) == 6


def _with_config(run, tmp_path, change) -> str:
    out, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    config = json.loads((copy / "config.json").read_text())
    change(config)
    (copy / "config.json").write_text(json.dumps(config))
    return copy


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(data=[1]), r"top-level key 'data' must be a \[section\]"),
    (lambda c: c["data"].update(name=5), "data.name must be a dataset name, got 5"),
    (lambda c: c["data"].update(test_subset="x"), "data.test_subset must be a positive integer or none, got 'x'"),
    (lambda c: c["data"].update(test_subset=0), "data.test_subset must be a positive integer or none, got 0"),
    (lambda c: c["data"].update(train_subset=True), "data.train_subset must be a positive integer or none"),
    (lambda c: c["data"].update(options=[1]), "data.options must be a table of dataset options, got \\[1\\]"),
    (lambda c: c["train"].update(seed=-1), "train.seed must be a non-negative integer, got -1"),
])
def test_a_damaged_config_is_refused_in_one_line_naming_it(run, tmp_path, change, message):
    copy = _with_config(run, tmp_path, change)
    with pytest.raises(ValueError, match=message) as info:
        load_run_split(copy)
    assert str(info.value).startswith(f"{copy / 'config.json'}: ") and "\n" not in str(info.value)


def test_a_folder_without_config_or_a_bad_split_is_refused(run, tmp_path):
    with pytest.raises(FileNotFoundError, match=f"no config.json in {tmp_path}: not an lgn run folder"):
        load_run_split(tmp_path)
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        load_run_split(run[0], split="val")
