"""Property-based tests: the config parser and the loaders either succeed or raise ``ValueError``.

Never another exception (IndexError, KeyError, zlib.error, MemoryError, ...), and
a config that parses round-trips through ``to_dict``/``from_dict``.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import pickle
import signal
import tomllib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lgn.data.cifar import read_cifar_batch
from lgn.data.idx import read_idx
from lgn.data.npz import load_npz
from lgn.train.config import SECTIONS, RunConfig, apply_overrides, check_settings, load_toml
from tests.data.formats import Py2Pickler, cifar_batch, idx_bytes

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@contextmanager
def no_hang(seconds: int = 20):
    """Fail (instead of blocking the suite) if the body runs past ``seconds``."""
    def stop(signum, frame):
        raise AssertionError(f"still running after {seconds} s")
    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------- the config parser

FIELDS = {name: [f.name for f in dataclasses.fields(cls)] for name, cls in SECTIONS.items()}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-3, 300),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(0.0, 1.0),
    st.text(max_size=8), st.sampled_from(["cpu", "cuda", "free", "cyclic", "classify", "reconstruct", "none"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5),
                                                                                           inner, max_size=3),
                      max_leaves=6)
section_names = st.sampled_from(list(SECTIONS)) | st.text(max_size=6)


@st.composite
def raw_settings(draw):
    """Nested dicts of sections, mostly with real keys, some of them invalid."""
    raw = {}
    for section in draw(st.lists(section_names, max_size=3)):
        keys = FIELDS.get(section, []) + ["bogus"]
        raw[section] = draw(st.dictionaries(st.sampled_from(keys) | st.text(max_size=5), values, max_size=4))
    if draw(st.booleans()):
        raw[draw(st.text(max_size=5))] = draw(scalars)
    return raw


def assert_round_trips(settings_: dict) -> None:
    """``settings_`` builds a config, or fails with ValueError; a built config survives to_dict/from_dict."""
    try:
        config = RunConfig.from_dict(settings_)
    except ValueError:
        return
    saved = json.loads(json.dumps(config.to_dict(), allow_nan=False))  # config.json: plain, finite JSON
    again = RunConfig.from_dict(check_settings(saved, "config.json"))  # as a resumed run reads it
    assert again == config
    assert again.to_dict() == config.to_dict()


@FAST
@given(raw=raw_settings())
def test_random_settings_parse_or_raise_value_error(raw):
    try:
        parsed = check_settings(raw, "random.toml")
    except ValueError as e:
        assert "random.toml" in str(e)
        return
    assert_round_trips(parsed)


@FAST
@given(section=st.sampled_from(list(SECTIONS)), data=st.data())
def test_one_valid_key_with_random_value(section, data):
    key = data.draw(st.sampled_from(FIELDS[section]))
    assert_round_trips_or_value_error({section: {key: data.draw(values)}})


def assert_round_trips_or_value_error(raw):
    try:
        parsed = check_settings(raw, "random.toml")
    except ValueError:
        return
    assert_round_trips(parsed)


override_texts = st.one_of(
    st.text(max_size=30),
    st.builds(lambda s, k, v: f"{s}.{k}={v}", section_names, st.sampled_from(sum(FIELDS.values(), [])) |
              st.text(max_size=5), st.text(max_size=12)),
    st.builds(lambda s, k, v: f"{s}.{k}={v}", st.sampled_from(list(SECTIONS)),
              st.sampled_from(sum(FIELDS.values(), [])),
              st.sampled_from(["1", "0", "-1", "2.5", "inf", "nan", "true", "[1, 2]", "[0.5]", "none", "'x'",
                               "{a = 1}", "1e400", "18446744073709551616", "3\nlr = 5", ""])),
    st.builds(lambda k, v: f"data.options.{k}={v}", st.text(max_size=5), st.text(max_size=8)),
)


@FAST
@given(overrides=st.lists(override_texts, max_size=3))
def test_set_strings_parse_or_raise_value_error(overrides):
    try:
        parsed = apply_overrides({}, overrides)
    except ValueError:
        return
    assert_round_trips(parsed)


TOML_TOKENS = ["[train]", "[model]", "[data]", "[optim]", "\n", " = ", "=", "epochs", "lr", "n_groups", "name",
               "options", "seed", "1", "-1", "0.5", "inf", "nan", "true", '"x"', "[1, 2]", "{ a = 1 }", "#",
               ".", "'", '"', "[[train]]", "\\", "\xff", "é"]


@FAST
@given(text=st.lists(st.sampled_from(TOML_TOKENS), max_size=20).map("".join) | st.text(max_size=40))
def test_toml_texts_load_or_raise_value_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("toml") / "c.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        parsed = load_toml(path)
    except ValueError as e:
        assert str(path) in str(e)
        return
    assert parsed == check_settings(tomllib.loads(text), "again")  # what the file says, and nothing else
    assert_round_trips(parsed)


# ---------------------------------------------------------------- the loaders

def mutations(valid: bytes):
    """Byte strings near ``valid``: flipped, overwritten, cut, extended or spliced."""
    n = len(valid)
    flip = st.builds(lambda i, b: valid[:i] + bytes([valid[i] ^ b]) + valid[i + 1:],
                     st.integers(0, n - 1), st.integers(1, 255))
    overwrite = st.builds(lambda i, chunk: valid[:i] + chunk + valid[i + len(chunk):],
                          st.integers(0, n - 1), st.binary(min_size=1, max_size=8))
    cut = st.builds(lambda i: valid[:i], st.integers(0, n))
    extend = st.builds(lambda tail: valid + tail, st.binary(min_size=1, max_size=16))
    header = st.builds(lambda i, chunk: valid[:i] + chunk + valid[i + len(chunk):],
                       st.integers(0, min(n - 1, 64)), st.binary(min_size=1, max_size=8))
    return st.one_of(flip, overwrite, cut, extend, header, st.binary(max_size=64))


def loads_or_value_error(load, data: bytes, path: Path):
    path.write_bytes(data)
    with no_hang():
        try:
            return load(path)
        except ValueError:
            return None


VALID_IDX = idx_bytes(np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4))
VALID_IDX_F4 = idx_bytes(np.linspace(0, 1, 6, dtype=">f4").reshape(2, 3))


@FAST
@given(data=mutations(VALID_IDX) | mutations(VALID_IDX_F4) | mutations(gzip.compress(VALID_IDX, mtime=0)))
def test_idx_reader(tmp_path_factory, data):
    array = loads_or_value_error(read_idx, data, tmp_path_factory.mktemp("idx") / "f")
    if array is not None:  # what loaded is what the header says
        raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        assert array.shape == tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(raw[3]))


def _cifar_bytes(py2: bool) -> bytes:
    out = io.BytesIO()
    batch = cifar_batch(2)
    if py2:
        Py2Pickler(out, protocol=2).dump(batch)
    else:
        pickle.dump(batch, out, protocol=2)
    return out.getvalue()


VALID_CIFAR = _cifar_bytes(py2=True)
VALID_CIFAR3 = _cifar_bytes(py2=False)


@FAST
@given(data=mutations(VALID_CIFAR) | mutations(VALID_CIFAR3))
def test_cifar_reader(tmp_path_factory, data):
    result = loads_or_value_error(read_cifar_batch, data, tmp_path_factory.mktemp("cifar") / "data_batch_1")
    if result is not None:
        x, y = result
        assert x.dtype == np.uint8 and x.shape[1:] == (3, 32, 32) and y.shape == (len(x),)
        assert y.min() >= 0 and y.max() <= 9


def _npz_bytes(compressed: bool) -> bytes:
    out = io.BytesIO()
    x = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    (np.savez_compressed if compressed else np.savez)(out, x_train=x, y_train=np.array([0, 1]), x_test=x,
                                                      y_test=np.array([1, 0]))
    return out.getvalue()


@FAST
@given(data=mutations(_npz_bytes(False)) | mutations(_npz_bytes(True)))
def test_npz_loader(tmp_path_factory, data):
    dataset = loads_or_value_error(load_npz, data, tmp_path_factory.mktemp("npz") / "d.npz")
    if dataset is not None:
        assert dataset.x_train.ndim == 4 and bool(dataset.x_train.isfinite().all())
        assert dataset.y_train is None or len(dataset.y_train) == len(dataset.x_train)


def test_unmutated_files_load(tmp_path):
    """The files the mutations start from are valid, so a mutation that changes nothing must load."""
    assert read_idx(_write(tmp_path / "f", VALID_IDX)).shape == (2, 3, 4)
    assert read_cifar_batch(_write(tmp_path / "b", VALID_CIFAR))[0].shape == (2, 3, 32, 32)
    assert read_cifar_batch(_write(tmp_path / "b3", VALID_CIFAR3))[0].shape == (2, 3, 32, 32)
    assert load_npz(_write(tmp_path / "d.npz", _npz_bytes(True))).x_train.shape == (2, 1, 4, 4)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("junk", [b"", b"\x00", b"\x1f\x8b", b"PK\x03\x04", b"\x80\x02", b"\x00\x00\x08\x03"])
def test_tiny_files(tmp_path, junk):
    for load in (read_idx, read_cifar_batch, load_npz):
        assert loads_or_value_error(load, junk, tmp_path / "f.npz") is None
