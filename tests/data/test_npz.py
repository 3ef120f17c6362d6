import numpy as np
import pytest

from lgn.data import get_dataset


def _arrays(n_train=6, n_test=4, shape=(8, 8), classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return {"x_train": rng.random((n_train, *shape)), "y_train": np.arange(n_train) % classes,
            "x_test": rng.random((n_test, *shape)), "y_test": np.arange(n_test) % classes}


def _save(tmp_path, **arrays):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return f"npz:{path}"


def test_npz_hw_gains_a_channel(tmp_path):
    arrays = _arrays()
    ds = get_dataset(_save(tmp_path, **arrays))
    assert ds.x_train.shape == (6, 1, 8, 8) and ds.x_train.dtype.is_floating_point
    np.testing.assert_allclose(ds.x_test[:, 0].numpy(), arrays["x_test"], rtol=1e-6)
    assert ds.y_train.tolist() == [0, 1, 2, 0, 1, 2] and ds.num_classes == 3


def test_npz_chw_and_integer_pixels(tmp_path):
    x = np.arange(2 * 3 * 6 * 6, dtype=np.uint8).reshape(2, 3, 6, 6)
    ds = get_dataset(_save(tmp_path, x_train=x, y_train=[0, 1], x_test=x, y_test=[1, 1]))
    assert ds.x_test.shape == (2, 3, 6, 6) and ds.in_channels == 3
    assert ds.value_range == float(x.max() - x.min())


def test_npz_without_labels_is_for_reconstruction(tmp_path):
    a = _arrays()
    ds = get_dataset(_save(tmp_path, x_train=a["x_train"], x_test=a["x_test"]))
    assert ds.y_train is None and ds.y_test is None and ds.num_classes == 0 and not ds.labelled


def _drop(name):
    return lambda a: {k: v for k, v in a.items() if k != name}


def _set(name, value):
    return lambda a: {**a, name: value(a[name]) if callable(value) else value}


@pytest.mark.parametrize("change, message", [
    (_drop("x_train"), "missing array.*x_train"),
    (_drop("x_test"), "missing array.*x_test"),
    (_drop("y_test"), "y_test is missing"),
    (_set("y_train", lambda y: y[:-1]), "5 labels for 6 images"),
    (_set("x_train", lambda x: np.where(np.arange(8) == 3, np.nan, x)), "x_train contains NaN or Inf"),
    (_set("x_test", lambda x: np.where(np.arange(8) == 3, np.inf, x)), "x_test contains NaN or Inf"),
    (_set("y_train", lambda y: y - 1), "labels out of range"),
    (_set("y_test", lambda y: y + 5), "labels out of range: found label 7"),
    (_set("y_train", lambda y: y + 0.5), "integer class labels"),
    (_set("y_train", lambda y: y.reshape(2, 3)), r"must have shape \(N,\)"),
    (_set("x_train", lambda x: x[:, :, 0]), r"\(N, H, W\) or \(N, C, H, W\)"),
    (_set("x_train", lambda x: x[..., None, None]), r"\(N, H, W\) or \(N, C, H, W\)"),
    (_set("x_test", lambda x: x[:, :4]), "must match"),
    # a colour set saved as (N, H, W, C) used to fail later as "image_size too small for kernel_size"
    (_set("x_train", lambda x: np.repeat(x[..., None], 3, axis=3)), r"looks channels-last \(N, H, W, C\).*transpose"),
    (_set("x_train", lambda x: x[:0]), "empty"),
    (_set("x_train", lambda x: x.astype(np.complex64)), "integers or floats"),
    (_set("y_train", lambda y: y.astype(np.str_)), "integer class labels"),
    (lambda a: {**a, "X_train": a["x_train"]}, "unknown array.*X_train"),
])
def test_npz_refuses(tmp_path, change, message):
    with pytest.raises((ValueError, TypeError), match=message):
        get_dataset(_save(tmp_path, **change(_arrays())))


def test_npz_object_arrays_are_refused_without_unpickling(tmp_path):
    a = _arrays()
    a["y_train"] = np.array([1, "two", None, 4, 5, 6], dtype=object)
    path = tmp_path / "d.npz"
    np.savez(path, **a)  # numpy pickles object arrays inside the npz
    with pytest.raises(ValueError, match="object arrays"):
        get_dataset(f"npz:{path}")


def test_npz_missing_file_and_not_a_zip(tmp_path):
    with pytest.raises(FileNotFoundError):
        get_dataset(f"npz:{tmp_path / 'absent.npz'}")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="not an .npz file"):
        get_dataset(f"npz:{bad}")
