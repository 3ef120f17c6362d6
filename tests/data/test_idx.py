import gzip
from pathlib import Path

import numpy as np
import pytest

from lgn.data import builtin, get_dataset
from lgn.data.idx import read_idx
from tests.data.formats import idx_bytes, write_idx, write_mnist_folder


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path, dtype, gz):
    values = np.arange(2 * 3 * 5) - (0 if dtype == np.uint8 else 7)  # negatives where the type has them
    a = values.astype(dtype).reshape(2, 3, 5)
    out = read_idx(write_idx(tmp_path / "a.idx", a, gz=gz))
    assert out.shape == (2, 3, 5)
    np.testing.assert_array_equal(out, a)


def test_read_idx_header_by_hand(tmp_path):
    # magic 0x00000801 (ubyte, 1 dim), size 3, data 7 8 9: written without our helper
    path = tmp_path / "labels"
    path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
    np.testing.assert_array_equal(read_idx(path), [7, 8, 9])
    # a 2-byte big-endian value: 0x0102 = 258
    path.write_bytes(bytes([0, 0, 0x0B, 1, 0, 0, 0, 1, 1, 2]))
    assert read_idx(path).tolist() == [258]


@pytest.mark.parametrize("mangle, message", [
    (lambda b: b"\x01" + b[1:], "bad magic"),
    (lambda b: b[:2] + b"\x07" + b[3:], "bad magic"),
    (lambda b: b[:-1], "truncated"),
    (lambda b: b + b"\x00", "trailing data"),
    (lambda b: b[:6], "truncated IDX header"),
    (lambda b: b"", "bad magic"),
])
def test_read_idx_refuses_malformed(tmp_path, mangle, message):
    data = mangle(idx_bytes(np.zeros((2, 4, 4), np.uint8)))
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(data))
    with pytest.raises(ValueError, match=message):
        read_idx(path)


def test_read_idx_refuses_corrupt_gzip(tmp_path):
    good = gzip.compress(idx_bytes(np.zeros((4, 4, 4), np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="gzip"):
        read_idx(path)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_folder_via_data_dir(tmp_path, gz):
    arrays = write_mnist_folder(tmp_path, gz=gz)
    ds = get_dataset("fashion-mnist", data_dir=str(tmp_path))
    assert ds.x_train.shape == (20, 1, 28, 28) and ds.x_test.shape == (10, 1, 28, 28)
    assert ds.x_train.dtype.is_floating_point and ds.y_train.dtype.is_signed
    np.testing.assert_allclose(ds.x_train[:, 0].numpy() * 255, arrays["train-images-idx3-ubyte"], atol=1e-4)
    np.testing.assert_array_equal(ds.y_test.numpy(), arrays["t10k-labels-idx1-ubyte"])
    assert ds.num_classes == 10 and ds.value_range == 1.0
    assert get_dataset("mnist", data_dir=str(tmp_path)).x_test.shape == (10, 1, 28, 28)


def test_mnist_folder_label_count_mismatch(tmp_path):
    write_mnist_folder(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(9, np.uint8))
    with pytest.raises(ValueError, match="9 labels for 10 images"):
        get_dataset("fashion-mnist", data_dir=str(tmp_path))


def test_fashion_mnist_missing_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setattr(builtin, "FASHION_MNIST_DIR", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        get_dataset("fashion-mnist")


def test_missing_file_in_user_folder_is_named(tmp_path):
    write_mnist_folder(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        get_dataset("mnist", data_dir=str(tmp_path))


@pytest.mark.skipif(not Path(builtin.FASHION_MNIST_DIR).is_dir(), reason="dataset-fashion-mnist is not installed")
def test_fashion_mnist_package():
    ds = get_dataset("fashion-mnist")
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.y_test.bincount().tolist() == [1000] * 10
