import os
import pickle

import numpy as np
import pytest

from lgn.data import get_dataset
from lgn.data.cifar import read_cifar_batch
from tests.data.formats import cifar_batch, write_cifar_batch, write_cifar_folder


@pytest.mark.parametrize("py2", [True, False], ids=["python2-cPickle", "python3-protocol2"])
def test_read_batch(tmp_path, py2):
    batch = cifar_batch(3)
    x, y = read_cifar_batch(write_cifar_batch(tmp_path / "b", batch, py2=py2))
    assert x.shape == (3, 3, 32, 32) and x.dtype == np.uint8
    # channel-major rows: the first 1024 values are the red plane, row by row
    np.testing.assert_array_equal(x[1, 0].ravel(), batch[b"data"][1, :1024])
    np.testing.assert_array_equal(x[2, 2, 31], batch[b"data"][2, 3072 - 32:])
    assert y.tolist() == batch[b"labels"]


def test_read_batch_protocol5(tmp_path):
    path = tmp_path / "b"
    path.write_bytes(pickle.dumps(cifar_batch(2), protocol=5))
    assert read_cifar_batch(path)[0].shape == (2, 3, 32, 32)


class _Payload:
    """Unpickling this would call os.system and create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _Eval:
    def __reduce__(self):
        return eval, ("__import__('os').getcwd()",)


@pytest.mark.parametrize("where", ["data", "labels", "top"])
def test_foreign_global_is_refused_before_it_runs(tmp_path, where):
    marker = tmp_path / "pwned"
    batch = cifar_batch(2)
    if where == "top":
        batch = _Payload(marker)
    else:
        batch[where.encode()] = _Payload(marker)
    path = tmp_path / "evil"
    path.write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(ValueError, match="refusing to load global (posix|os|nt).system"):
        read_cifar_batch(path)
    assert not marker.exists()


def test_builtin_eval_is_refused(tmp_path):
    path = tmp_path / "evil"
    path.write_bytes(pickle.dumps({b"data": _Eval()}, protocol=4))
    with pytest.raises(ValueError, match="builtins.eval"):
        read_cifar_batch(path)


@pytest.mark.parametrize("batch, message", [
    ({b"labels": [1]}, "'data' must be a uint8 array"),
    ({b"data": np.zeros((1, 3072), np.float32), b"labels": [1]}, "uint8"),
    ({b"data": np.zeros((1, 100), np.uint8), b"labels": [1]}, r"\(N, 3072\)"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, "list of 2 ints"),
    ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}, "ints in 0..9"),
    ([1, 2], "expected a dict"),
])
def test_malformed_batch(tmp_path, batch, message):
    path = tmp_path / "b"
    path.write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(ValueError, match=message):
        read_cifar_batch(path)


def test_truncated_batch(tmp_path):
    data = pickle.dumps(cifar_batch(2), protocol=2)
    path = tmp_path / "b"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a CIFAR python batch"):
        read_cifar_batch(path)


@pytest.mark.parametrize("nested", [False, True])
def test_cifar10_folder(tmp_path, nested):
    folder = tmp_path / "cifar-10-batches-py" if nested else tmp_path
    batches = write_cifar_folder(folder, n=4)
    ds = get_dataset("cifar10", data_dir=str(tmp_path))
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.x_test.shape == (4, 3, 32, 32)
    assert ds.num_classes == 10 and float(ds.x_train.max()) <= 1.0
    np.testing.assert_allclose(ds.x_test.flatten(1).numpy() * 255, batches["test_batch"][b"data"], atol=1e-4)
    assert ds.y_train[4:8].tolist() == batches["data_batch_2"][b"labels"]


def test_cifar10_missing_batch(tmp_path):
    write_cifar_folder(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        get_dataset("cifar10", data_dir=str(tmp_path))


@pytest.mark.parametrize("state, value", [
    ("flags", b"K\x01t"),      # NPY_ITEM_REFCOUNT: the bytes would be read as object pointers
    ("byteorder", b"X\x01\x00\x00\x00>"),
])
def test_a_dtype_state_outside_the_format_is_refused_without_numpy_seeing_it(tmp_path, state, value):
    # numpy's dtype.__setstate__ takes such states: the array read back claimed to hold Python
    # objects, and using or freeing it raised numpy internal errors or crashed the process
    import io

    out = io.BytesIO()
    pickle.dump(cifar_batch(2), out, protocol=2)
    data = out.getvalue()
    original = {"flags": b"K\x00t", "byteorder": b"X\x01\x00\x00\x00|"}[state]
    assert data.count(original) == 1
    (tmp_path / "data_batch_1").write_bytes(data.replace(original, value))
    with pytest.raises(ValueError, match="'data' is an array outside the CIFAR format"):
        read_cifar_batch(tmp_path / "data_batch_1")
    assert np.dtype("u1").flags == 0 and np.zeros(3, np.uint8).copy().sum() == 0
