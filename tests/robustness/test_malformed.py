"""Malformed inputs through the command line and the Python API.

Every case builds a damaged input in a fresh folder and checks the error
contract: the CLI prints exactly one line on stderr and exits with 2, no
traceback, and changes no file outside its run folder; the Python API raises
``ValueError`` (``FileNotFoundError`` where a file is missing) whose message
names the file (or the setting) and what is wrong.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from lgn.cli import main
from lgn.data import get_dataset
from lgn.models import load_model
from lgn.train import train
from lgn.train.config import apply_overrides, load_toml
from lgn.train.evaluate import evaluate_run
from tests.data.formats import cifar_batch, idx_bytes, write_cifar_batch, write_cifar_folder, write_mnist_folder
from tests.robustness.payloads import gzip_corrupt_stream, gzip_truncated, gzip_with_bad_crc, hostile_pickles
from tests.train.helpers import TINY_MODEL, TINY_SET, tiny_settings, write_tiny_npz

MARKER = "PAYLOAD_RAN"  # a hostile pickle creates this file in the case folder if it runs


@dataclass
class Call:
    """One malformed input as the CLI and the API take it."""

    argv: list[str]                        # lgn's arguments
    api: Callable[[], object] | None       # the same input through the Python API
    names: str                             # the file (or setting) the message must name
    out: Path | None = None                # the run folder, the only place the CLI may write
    api_error: type[Exception] = ValueError


@dataclass
class Case:
    build: Callable[[Path, "Base"], Call]
    match: str                             # regex the message must contain, CLI and API
    marks: list = field(default_factory=list)


@dataclass
class Base:
    npz: Path         # a valid tiny labelled dataset
    run: Path         # a finished 1-epoch run of TINY_MODEL on it
    other_run: Path   # the same with one more group per layer


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Base:
    root = tmp_path_factory.mktemp("base")
    npz = write_tiny_npz(root / "tiny.npz")
    runs = {}
    for name, n_groups in (("run", TINY_MODEL["n_groups"]), ("other", TINY_MODEL["n_groups"] + 1)):
        settings = tiny_settings(npz, epochs=1)
        settings["model"]["n_groups"] = n_groups
        runs[name] = train(settings, root / name, log=None).out
    return Base(npz, runs["run"], runs["other"])


# ---------------------------------------------------------------- MNIST-format IDX folders

IMAGES, LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"


def _mnist(root: Path, stem: str, damage: Callable[[bytes], bytes] | None = None, *, array=None,
           gz: bool = False, missing: bool = False) -> Call:
    """A valid 10×10 MNIST folder whose file ``stem`` is replaced by ``array``, damaged, or left out."""
    folder = root / "mnist"
    write_mnist_folder(folder, n_train=20, n_test=10, size=10, gz=False)
    path = folder / stem
    data = path.read_bytes() if array is None else idx_bytes(array)
    path.unlink()
    if not missing:
        if gz:
            data = gzip.compress(data, mtime=0)
            path = path.with_name(stem + ".gz")
        path.write_bytes(damage(data) if damage else data)
    out = root / "run"
    return Call(["train", "--dataset", "mnist", "--data-dir", str(folder), "--out", str(out), *TINY_SET],
                lambda: get_dataset("mnist", data_dir=folder), stem, out,
                FileNotFoundError if missing else ValueError)


def _header(code: int, *dims: int) -> bytes:
    return bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def idx(stem, damage=None, **kw):
    return lambda root, base: _mnist(root, stem, damage, **kw)


IDX_CASES = {
    "idx-truncated-data": (idx(IMAGES, lambda b: b[:-37]), "truncated"),
    "idx-truncated-header": (idx(IMAGES, lambda b: b[:9]), "truncated IDX header"),
    "idx-empty-file": (idx(LABELS, lambda b: b""), "not an IDX file"),
    "idx-wrong-magic": (idx(IMAGES, lambda b: b"\x08\x03" + b[2:]), "bad magic number"),
    "idx-wrong-dtype-code": (idx(IMAGES, lambda b: b[:2] + b"\x0a" + b[3:]), "bad magic number"),
    "idx-zero-dimensions": (idx(LABELS, lambda b: b[:3] + b"\x00" + b[4:]), "0 dimensions"),
    "idx-trailing-data": (idx(TEST_IMAGES, lambda b: b + b"\x00" * 5), "trailing data"),
    "idx-dims-disagree-with-size": (idx(IMAGES, lambda b: _header(0x08, 20, 11, 10) + b[16:]), "needs"),
    # 65536⁴ bytes: a product that wraps to 0 in 64-bit arithmetic
    "idx-dims-overflow": (idx(IMAGES, lambda b: _header(0x08, 65536, 65536, 65536, 65536)), "needs"),
    "gzip-bad-crc": (idx(IMAGES, gzip_with_bad_crc, gz=True), "corrupt or truncated gzip"),
    "gzip-truncated": (idx(LABELS, gzip_truncated, gz=True), "corrupt or truncated gzip"),
    "gzip-corrupt-stream": (idx(TEST_IMAGES, gzip_corrupt_stream, gz=True), "corrupt or truncated gzip"),
    "gzip-trailing-garbage": (idx(IMAGES, lambda b: b + b"garbage!", gz=True), "corrupt or truncated gzip"),
    "idx-label-count-mismatch": (idx(LABELS, array=np.arange(19, dtype=np.uint8) % 10), "19 labels for 20"),
    "idx-labels-2d": (idx(LABELS, array=np.zeros((20, 1), np.uint8)), r"shape \(N,\)"),
    "idx-images-flat": (idx(IMAGES, array=np.zeros((20, 100), np.uint8)), r"\(N, H, W\) images"),
    "idx-test-label-out-of-range": (idx(TEST_LABELS, array=np.full(10, 200, np.uint8)), "out of range"),
    "idx-negative-labels": (idx(LABELS, array=np.full(20, -1, np.int8)), "out of range"),
    "idx-huge-label": (idx(LABELS, array=np.full(20, 2_000_000_000, ">i4")), "out of range"),
    "idx-nan-images": (idx(IMAGES, array=np.full((20, 10, 10), np.nan, ">f4")), "NaN or Inf"),
    "idx-test-size-mismatch": (idx(TEST_IMAGES, array=np.zeros((10, 12, 12), np.uint8)), "must match"),
    "idx-missing-file": (idx(TEST_LABELS, missing=True), "no t10k-labels"),
}


# ---------------------------------------------------------------- CIFAR-10 python batches

def _cifar(root: Path, name: str, content: bytes | None) -> Call:
    folder = root / "cifar"
    write_cifar_folder(folder, n=2)
    if content is None:
        (folder / name).unlink()
    else:
        (folder / name).write_bytes(content)
    out = root / "run"
    return Call(["train", "--dataset", "cifar10", "--data-dir", str(folder), "--out", str(out), *TINY_SET],
                lambda: get_dataset("cifar10", data_dir=folder), name, out,
                ValueError if content is not None else FileNotFoundError)


def cifar(make: Callable[[Path], bytes | None], name: str = "data_batch_1"):
    return lambda root, base: _cifar(root, name, make(root))


def cifar_batch_with(**changes) -> Callable[[Path], bytes]:
    def make(root):
        batch = cifar_batch(2)
        for key, value in changes.items():
            if value is None:
                del batch[key.encode()]
            else:
                batch[key.encode()] = value
        write_cifar_batch(root / "tmp", batch)
        return (root / "tmp").read_bytes()
    return make


def hostile(kind: str):
    return lambda root: hostile_pickles(root / MARKER)[kind]


def _persistent_id(root: Path) -> bytes:
    return b"\x80\x02X\x01\x00\x00\x00a" + pickle.BINPERSID + pickle.STOP  # persistent_load('a')


CIFAR_CASES = {
    **{f"cifar-{kind}": (cifar(hostile(kind)), "refusing to load global")
       for kind in ("os-system", "builtins-eval", "builtins-exec", "reduce-subprocess", "reduce-inside-batch",
                    "os-mkdir")},
    "cifar-persistent-id": (cifar(_persistent_id), "refusing persistent ids"),
    # memo slot 4·10⁹: the C unpickler would size its memo table to match (tens of GB)
    "cifar-huge-memo-index": (cifar(lambda root: b"\x80\x02]r\x00\x00\x00\xf0."), "memo index"),
    "cifar-not-a-pickle": (cifar(lambda root: os.urandom(64) + b"\x00"), "not a CIFAR python batch"),
    "cifar-truncated": (cifar(lambda root: cifar_batch_with()(root)[:500], "test_batch"),
                        "not a CIFAR python batch"),
    "cifar-empty-file": (cifar(lambda root: b""), "not a CIFAR python batch"),
    "cifar-list-not-dict": (cifar(lambda root: pickle.dumps([1, 2, 3], protocol=2)), "expected a dict"),
    "cifar-missing-data": (cifar(cifar_batch_with(data=None)), "'data' must be"),
    "cifar-wrong-shape": (cifar(cifar_batch_with(data=np.zeros((2, 3000), np.uint8))), r"\(N, 3072\)"),
    "cifar-wrong-dtype": (cifar(cifar_batch_with(data=np.zeros((2, 3072), np.float32))), "uint8"),
    "cifar-label-out-of-range": (cifar(cifar_batch_with(labels=[0, 10])), "ints in 0..9"),
    "cifar-label-count": (cifar(cifar_batch_with(labels=[0, 1, 2])), "list of 2 ints"),
    "cifar-labels-not-a-list": (cifar(cifar_batch_with(labels=b"\x00\x01")), "list of 2 ints"),
    "cifar-missing-batch": (cifar(lambda root: None, "data_batch_3"), "lacks data_batch_3"),
}


# ---------------------------------------------------------------- npz datasets

def _valid_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((6, 8, 8)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    return {"x_train": x, "y_train": y, "x_test": x[:3], "y_test": y[:3]}


def _npz(root: Path, write: Callable[[Path], None]) -> Call:
    path = root / "data.npz"
    write(path)
    out = root / "run"
    return Call(["train", "--dataset", f"npz:{path}", "--out", str(out), *TINY_SET],
                lambda: get_dataset(f"npz:{path}"), "data.npz", out,
                ValueError if path.exists() else FileNotFoundError)


def npz(**changes):
    """An npz of the valid arrays with ``changes`` (a value, or a function of the valid array; None drops)."""
    def write(path):
        arrays = _valid_arrays()
        for key, value in changes.items():
            if value is None:
                del arrays[key]
            else:
                arrays[key] = value(arrays.get(key)) if callable(value) else value
        np.savez(path, **arrays)
    return lambda root, base: _npz(root, write)


def npz_bytes(damage: Callable[[bytes], bytes] | None):
    def write(path):
        np.savez(path, **_valid_arrays())
        if damage is None:
            path.unlink()
        else:
            path.write_bytes(damage(path.read_bytes()))
    return lambda root, base: _npz(root, write)


def _object_array_with_payload(root: Path):
    from tests.robustness.payloads import OsSystem
    return lambda y: np.array([OsSystem(root / MARKER)] * len(y), dtype=object)


def _npz_payload(root: Path, base: Base) -> Call:
    return npz(y_train=_object_array_with_payload(root))(root, base)


def _npz_raw_member(root: Path, base: Base) -> Call:
    import zipfile

    def write(path):
        np.savez(path, **{k: v for k, v in _valid_arrays().items() if k != "x_test"})
        with zipfile.ZipFile(path, "a") as z:
            z.writestr("x_test.npy", b"not an array at all")
    return _npz(root, write)


def _npz_huge_header(root: Path, base: Base) -> Call:
    """An x_train whose .npy header claims 10¹⁵ float64 values, with 64 bytes of data."""
    import io
    import zipfile

    def write(path):
        np.savez(path, **{k: v for k, v in _valid_arrays().items() if k != "x_train"})
        member = io.BytesIO()
        np.lib.format.write_array_header_1_0(member, {"descr": "<f8", "fortran_order": False, "shape": (10**15,)})
        with zipfile.ZipFile(path, "a") as z:
            z.writestr("x_train.npy", member.getvalue() + b"\0" * 64)
    return _npz(root, write)


def _npz_compressed_corrupt(root: Path, base: Base) -> Call:
    def write(path):
        np.savez_compressed(path, **_valid_arrays())
        raw = bytearray(path.read_bytes())
        for i in range(100, len(raw) // 2, 13):
            raw[i] ^= 0x33
        path.write_bytes(bytes(raw))
    return _npz(root, write)


def _flip_middle(data: bytes) -> bytes:
    raw = bytearray(data)
    raw[len(raw) // 3] ^= 0xFF
    return bytes(raw)


NPZ_CASES = {
    "npz-object-array-payload": (_npz_payload, "object arrays"),
    "npz-object-labels": (npz(y_test=lambda y: np.array([0, "a", None], dtype=object)), "object arrays"),
    "npz-string-images": (npz(x_train=lambda x: x.astype(str)), "integers or floats"),
    "npz-complex-images": (npz(x_train=lambda x: x.astype(np.complex64)), "integers or floats"),
    "npz-bool-images": (npz(x_test=lambda x: x > 0.5), "integers or floats"),
    "npz-nan-images": (npz(x_train=lambda x: np.where(x > 0.9, np.nan, x)), "NaN or Inf"),
    "npz-inf-images": (npz(x_test=lambda x: np.where(x > 0.5, np.inf, x)), "NaN or Inf"),
    "npz-length-mismatch": (npz(y_train=lambda y: y[:4]), "4 labels for 6 images"),
    "npz-empty-images": (npz(x_train=lambda x: x[:0], y_train=lambda y: y[:0]), "empty"),
    "npz-empty-pixels": (npz(x_test=lambda x: x[:, :0]), "empty|must match"),
    "npz-images-2d": (npz(x_train=lambda x: x.reshape(6, 64)), r"\(N, H, W\) or \(N, C, H, W\)"),
    "npz-images-5d": (npz(x_train=lambda x: x[:, None, None]), r"\(N, H, W\) or \(N, C, H, W\)"),
    "npz-negative-labels": (npz(y_train=lambda y: y - 1), "out of range"),
    "npz-fractional-labels": (npz(y_train=lambda y: y + 0.5), "integer class labels"),
    "npz-nan-labels": (npz(y_test=lambda y: np.array([0.0, np.nan, 1.0])), "NaN or Inf"),
    "npz-string-labels": (npz(y_test=lambda y: y.astype(str)), "integer class labels"),
    "npz-huge-label": (npz(y_train=lambda y: np.where(y == 2, 10**12, y)), "out of range"),
    "npz-labels-one-split": (npz(y_test=None), "y_test is missing"),
    "npz-unknown-array": (npz(labels=np.zeros(6)), "unknown array"),
    "npz-not-a-zip": (npz_bytes(lambda b: b"PK\x03\x04 nothing else"), "not an .npz file"),
    "npz-truncated": (npz_bytes(lambda b: b[:len(b) // 2]), "npz"),
    "npz-bad-crc": (npz_bytes(_flip_middle), "npz"),
    "npz-member-not-npy": (_npz_raw_member, "x_test"),
    "npz-header-claims-huge-shape": (_npz_huge_header, "needs 8000000000000000 bytes"),
    "npz-compressed-corrupt": (_npz_compressed_corrupt, "npz"),
    "npz-missing-file": (npz_bytes(None), "no such file"),
    "npz-float64-beyond-float32": (npz(x_test=lambda x: np.where(x > 0.9, 1e39, x.astype(np.float64))),
                                   "x_test holds values too large for float32"),
    "npz-float64-inf": (npz(x_train=lambda x: np.where(x > 0.9, np.inf, x.astype(np.float64))), "NaN or Inf"),
}


# ---------------------------------------------------------------- TOML configs and --set

def _toml(text: str | bytes):
    def build(root: Path, base: Base) -> Call:
        path = root / "config.toml"
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        out = root / "run"
        return Call(["train", "--dataset", f"npz:{base.npz}", "--config", str(path), "--out", str(out),
                     *TINY_SET], lambda: load_toml(path), "config.toml", out)
    return build


def _set(text: str):
    def build(root: Path, base: Base) -> Call:
        out = root / "run"
        return Call(["train", "--dataset", f"npz:{base.npz}", "--out", str(out), *TINY_SET, "--set", text],
                    lambda: apply_overrides({}, [text]), text.split("=")[0].split("\n")[0], out)
    return build


def _missing_config(root: Path, base: Base) -> Call:
    path, out = root / "absent.toml", root / "run"
    return Call(["train", "--dataset", f"npz:{base.npz}", "--config", str(path), "--out", str(out)],
                lambda: load_toml(path), "absent.toml", out, FileNotFoundError)


def _dataset_option_seed(root: Path, base: Base) -> Call:
    out = root / "run"
    return Call(["train", "--dataset", "patches", "--set", "data.options.seed=3", "--out", str(out), *TINY_SET],
                lambda: apply_overrides({}, ["data.options.seed=3"]), "data.options.seed", out)


CONFIG_CASES = {
    "toml-unknown-section": (_toml("[optimizer]\nlr = 0.1\n"), "unknown config section 'optimizer'"),
    "toml-unknown-key": (_toml("[train]\nepoch = 3\n"), "unknown config key train.epoch"),
    "toml-nested-unknown-table": (_toml("[model.extra]\nx = 1\n"), "unknown config key model.extra"),
    "toml-top-level-key": (_toml("epochs = 3\n"), r"must be a \[section\]"),
    "toml-string-for-int": (_toml('[train]\nepochs = "3"\n'), "train.epochs must be an integer"),
    "toml-bool-for-int": (_toml("[train]\nbatch_size = true\n"), "train.batch_size must be an integer"),
    "toml-list-for-float": (_toml("[train]\nlr = [0.1]\n"), "train.lr must be a number"),
    "toml-float-for-int": (_toml("[model]\nn_groups = 2.5\n"), "model.n_groups must be an integer"),
    "toml-negative-epochs": (_toml("[train]\nepochs = -3\n"), "train.epochs must be at least 1"),
    "toml-zero-lr": (_toml("[train]\nlr = 0.0\n"), "train.lr must be positive"),
    "toml-negative-lr": (_toml("[train]\nlr = -1e-3\n"), "train.lr must be positive"),
    "toml-infinite-lr": (_toml("[train]\nlr = inf\n"), "train.lr must be a finite number"),
    "toml-nan-eta": (_toml("[model]\neta = nan\n"), "model.eta must be a finite number"),
    "toml-zero-batch-size": (_toml("[train]\nbatch_size = 0\n"), "train.batch_size must be at least 1"),
    "toml-zero-group-size": (_toml("[model]\ngroup_size = 0\n"), "group_size must be a positive integer"),
    "toml-unknown-generator": (_toml('[model]\ngenerator = "magic"\n'), "generator must be one of"),
    "toml-unknown-regularizer": (_toml('[model]\nregularizer = "l3"\n'), "regularizer must be one of"),
    "toml-huge-seed": (_toml("[train]\nseed = 18446744073709551616\n"), "train.seed must be"),
    "toml-option-seed": (_toml('[data]\nname = "patches"\noptions = { seed = 1 }\n'), "train.seed"),
    "toml-option-date": (_toml('[data]\nname = "patches"\noptions = { when = 1979-05-27 }\n'),
                         "data.options.when must be a string, number"),
    "toml-syntax-error": (_toml("[train\nepochs = 3\n"), "not valid TOML"),
    "toml-not-utf8": (_toml(b"[train]\ndevice = '\xff\xfe'\n"), "not valid TOML"),
    "toml-missing-file": (_missing_config, "does not exist"),
    "set-no-equals": (_set("no_equals"), "section.key=value"),
    "set-empty-key": (_set("model.=3"), "section.key=value"),
    "set-section-only": (_set("model."), "section.key=value"),
    "set-unknown-key": (_set("model.colour=red"), "unknown config key model.colour"),
    "set-unknown-section": (_set("optim.lr=1"), "unknown config section"),
    "set-string-for-int": (_set("train.epochs=three"), "train.epochs must be an integer"),
    "set-zero-epochs": (_set("train.epochs=0"), "train.epochs must be at least 1"),
    "set-negative-group-size": (_set("model.group_size=-2"), "group_size must be a positive integer"),
    "set-hidden-second-line": (_set("train.epochs=1\nlr = 5"), "train.epochs must be an integer"),
    "set-option-seed": (_dataset_option_seed, "train.seed"),
    # numbers float32 cannot hold: they became Inf inside Adam or the model, blaming a gradient
    "set-lr-beyond-float32": (_set("train.lr=3.5e38"), "train.lr must be at most 3.40282.e\\+38 .*float32"),
    "set-lr-1e300": (_set("train.lr=1e300"), "float32's largest"),
    "set-eta-beyond-float32": (_set("model.eta=1e39"), "model.eta must be at most .*float32"),
    "set-eps-beyond-float32": (_set("train.adam_eps=-1e39"), "train.adam_eps must be at most"),
    "toml-nested-800-deep": (_toml("[data]\noptions = { a = " + "[" * 800 + "]" * 800 + " }\n"),
                             "nested more than 32 levels deep"),
    "toml-nested-100000-deep": (_toml("[train]\nlr = " + "[" * 100000 + "]" * 100000 + "\n"),
                                "nested more than 32 levels deep"),
    "set-nested-800-deep": (_set("data.options.a=" + "[" * 800 + "]" * 800), "data.options.a is nested more"),
    "set-nested-key-800-deep": (_set("train.lr=" + "[" * 800 + "]" * 800), "train.lr is nested more"),
    "toml-lr-beyond-float32": (_toml("[train]\nlr = 1e300\n"), "train.lr must be at most"),
    "toml-reg-weight-huge-int": (_toml("[model]\nreg_weight = 10000000000000000000000000000000000000000\n"),
                                 "model.reg_weight must be at most"),
}


# ---------------------------------------------------------------- sizes beyond this machine's memory

def _too_big(dataset: str | None, *overrides: str, names: str):
    """A run whose settings ask for more memory than there is: refused before anything is allocated."""
    def build(root: Path, base: Base) -> Call:
        out = root / "run"
        name = dataset or f"npz:{base.npz}"
        settings = apply_overrides({"data": {"name": name}, "train": {"epochs": 1, "progress": False}},
                                   list(overrides))
        return Call(["train", "--dataset", name, "--out", str(out), "--epochs", "1", "--no-progress",
                     *(a for o in overrides for a in ("--set", o))],
                    lambda: train(settings, out, log=None), names, out)
    return build


MEMORY_CASES = {
    "memory-model-n-groups": (_too_big(None, "model.n_groups=10000000", names="model.n_groups=10000000"),
                              "needs .* more than this machine's .* of memory"),
    "memory-model-n-layers": (_too_big(None, "model.n_layers=1000000000000000000000000000000",
                                       names="model.n_layers=10000"), "more than this machine's"),
    "memory-patches-n-train": (_too_big("patches", "data.options.n_train=100000000000", names="n_train=100000000000"),
                               "more than this machine's"),
    "memory-planted-n-classes": (_too_big("planted:shift-x", "data.options.n_classes=1000000000",
                                          names="n_classes=1000000000"), "more than this machine's"),
}


# ---------------------------------------------------------------- saved models and run folders

def _copy_run(root: Path, base: Base, change: Callable[[Path], None]) -> Path:
    run = root / "saved"
    shutil.copytree(base.run, run)
    change(run)
    return run


def model(change: Callable[[Path], None], names: str, command: str = "eval", error=ValueError,
          api: str = "load_model"):
    def build(root: Path, base: Base) -> Call:
        run = _copy_run(root, base, change)
        out = root / "analysis"
        argv = ["eval", str(run)] if command == "eval" else ["analyze", str(run), "--out", str(out),
                                                              "--no-figures"]
        call = (lambda: load_model(run)) if api == "load_model" else (lambda: evaluate_run(run))
        return Call(argv, call, names, out if command == "analyze" else None, error)
    return build


def _write(name: str, content: bytes | Callable[[bytes], bytes]):
    def change(run: Path):
        path = run / name
        path.write_bytes(content(path.read_bytes()) if callable(content) else content)
    return change


def _edit_json(name: str, edit: Callable[[dict], object]):
    def change(run: Path):
        path = run / name
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    return change


def _edit_weights(edit: Callable[[dict, dict], tuple[dict, dict]]):
    def change(run: Path):
        from safetensors import safe_open

        path = run / "model.safetensors"
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata()
        state = load_file(str(path))
        state, metadata = edit(state, metadata)
        save_file(state, str(path), metadata=metadata)
    return change


def _nan_weights(state, metadata):
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key] = state[key].clone().fill_(float("nan"))
    return state, metadata


def _remove(name: str):
    return lambda run: (run / name).unlink()


MODEL_CASES = {
    "model-corrupt-weights": (model(_write("model.safetensors", os.urandom(256)), "model.safetensors"),
                              "not a readable safetensors file"),
    "model-truncated-weights": (model(_write("model.safetensors", lambda b: b[:len(b) // 2]), "model.safetensors",
                                      "analyze"), "not a readable safetensors file"),
    "model-empty-weights": (model(_write("model.safetensors", b""), "model.safetensors"),
                            "not a readable safetensors file"),
    "model-json-other-architecture": (model(_edit_json("model.json", lambda c: {**c, "n_groups": 3}),
                                            "model.safetensors", "analyze"), "does not match the architecture"),
    "model-json-other-kernel": (model(_edit_json("model.json", lambda c: {**c, "kernel_size": 4}),
                                      "model.safetensors"), "does not match the architecture"),
    "model-json-invalid": (model(_write("model.json", b"{not json"), "model.json", "analyze"), "not valid JSON"),
    "model-json-not-utf8": (model(_write("model.json", b'{"task": "\xff"}'), "model.json"), "not valid JSON"),
    "model-json-list": (model(_write("model.json", b"[1, 2]"), "model.json"), "must hold a JSON object"),
    "model-json-bad-value": (model(_edit_json("model.json", lambda c: {**c, "group_size": 0}), "model.json",
                                   "analyze"), "group_size must be a positive integer"),
    "model-json-wrong-type": (model(_edit_json("model.json", lambda c: {**c, "eta": "fast"}), "model.json"),
                              "eta must be a positive number"),
    "model-json-eta-beyond-float32": (model(_edit_json("model.json", lambda c: {**c, "eta": 1e39}), "model.json"),
                                      "eta must be at most .*float32"),
    "model-json-huge-n-layers": (model(_edit_json("model.json", lambda c: {**c, "n_layers": 10 ** 30}), "model.json"),
                                 "model.n_layers=10+ .* more than this machine's"),
    "model-json-nested-deep": (model(_write("model.json", b'{"eta": ' + b"[" * 800 + b"]" * 800 + b"}"),
                                     "model.json", "analyze"), "nested more than 32 levels deep"),
    "run-config-nested-deep": (model(_write("config.json", b'{"data": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
                                     "config.json", api="evaluate_run"), "nested more than 32 levels deep"),
    "model-json-unknown-key": (model(_edit_json("model.json", lambda c: {**c, "format": "keras"}), "model.json"),
                               "unknown model config key"),
    "model-weights-unknown-format": (model(_edit_weights(lambda s, m: (s, {**m, "format": "keras"})),
                                           "model.safetensors", "analyze"), "not an lgn model"),
    "model-weights-newer-version": (model(_edit_weights(lambda s, m: (s, {**m, "version": "7"})),
                                          "model.safetensors"), "version 7"),
    "model-weights-nan": (model(_edit_weights(_nan_weights), "model.safetensors"), "NaN or Inf"),
    "model-missing-weights": (model(_remove("model.safetensors"), "model.safetensors", "analyze",
                                    FileNotFoundError), "no model.safetensors"),
    "model-missing-json": (model(_remove("model.json"), "model.json", "eval", FileNotFoundError),
                           "no model.json"),
    "run-config-not-an-object": (model(_write("config.json", b"[]"), "config.json", api="evaluate_run"),
                                 "must hold a JSON object"),
    "run-config-data-not-a-table": (model(_edit_json("config.json", lambda c: {**c, "data": [1]}), "config.json",
                                          api="evaluate_run"), r"must be a \[section\]"),
    "run-preprocess-other-channels": (
        model(lambda run: save_file({"mean": torch.zeros(3), "std": torch.ones(3)}, str(run / "preprocess.safetensors")),
              "preprocess.safetensors", api="evaluate_run"), "3 channels"),
    "run-preprocess-corrupt": (model(_write("preprocess.safetensors", b"\x00" * 40), "preprocess.safetensors",
                                     api="evaluate_run"), "not a readable safetensors file"),
}


# ---------------------------------------------------------------- checkpoints of another architecture

def _resume(root: Path, base: Base, *, copy_checkpoint: bool, overrides: list[str]) -> Call:
    run = root / "run"
    shutil.copytree(base.run, run)
    if copy_checkpoint:  # the checkpoint of a run with more groups, in this run's folder
        for path in run.glob("checkpoint*"):
            path.unlink()
        for path in base.other_run.glob("checkpoint*"):
            shutil.copy(path, run / path.name)
    settings = apply_overrides({"train": {"epochs": 2, "progress": False}}, overrides)
    set_args = [a for o in overrides for a in ("--set", o)]
    return Call(["train", "--resume", "--out", str(run), "--epochs", "2", "--no-progress", *set_args],
                lambda: train(settings, run, resume=True, log=None), "checkpoint", run)


def _edit_checkpoint(edit_meta=None, edit_tensors=None):
    """A resume of the 1-epoch base run whose checkpoint was edited, its digests made to match."""
    def build(root: Path, base: Base) -> Call:
        from tests.train.test_checkpoint import rewrite

        run = root / "run"
        shutil.copytree(base.run, run)
        rewrite(run, meta=edit_meta, tensors=edit_tensors)
        settings = {"train": {"progress": False}}
        return Call(["train", "--resume", "--out", str(run), "--no-progress"],
                    lambda: train(settings, run, resume=True, log=None), "checkpoint-0", run)
    return build


def _deep_json(root: Path, base: Base) -> Call:
    run = root / "run"
    shutil.copytree(base.run, run)
    (run / "checkpoint-0.json").write_bytes(b'{"format": ' + b"[" * 100000 + b"]" * 100000 + b"}")
    return Call(["train", "--resume", "--out", str(run), "--no-progress"],
                lambda: train({"train": {"progress": False}}, run, resume=True, log=None),
                "checkpoint-0", run)


def _first_tensor(prefix):
    return lambda named: next(k for k in sorted(named) if k.startswith(prefix))


def _retype(prefix, dtype):
    def edit(named):
        key = _first_tensor(prefix)(named)
        named[key] = named[key].to(dtype)
    return edit


CHECKPOINT_CASES = {
    "resume-version-1-bypass": (_edit_checkpoint(lambda m: m.update(version=1, step=9)),
                                "checkpoint format 1, which predates release 0.1; start the run again"),
    "resume-missing-step": (_edit_checkpoint(lambda m: m.pop("step")), "field step is missing"),
    "resume-missing-optimizer": (_edit_checkpoint(lambda m: m.pop("optimizer")), "field optimizer is missing"),
    "resume-missing-config": (_edit_checkpoint(lambda m: m.pop("config")), "field config is missing"),
    "resume-state-a-list": (_edit_checkpoint(lambda m: m.update(state=[])), "field state must be an object"),
    "resume-negative-step": (_edit_checkpoint(lambda m: m.update(step=-3)), "field step must be in 0.."),
    "resume-negative-batch": (_edit_checkpoint(lambda m: m.update(batch=-1)), "field batch must be in 0.."),
    "resume-huge-batch": (_edit_checkpoint(lambda m: m.update(batch=10 ** 15)), "field batch"),
    "resume-faked-test-acc": (_edit_checkpoint(lambda m: m["state"]["metrics"][0].update(test_acc="0.99")),
                              r"field state.metrics\[0\]"),
    "resume-int32-weights": (_edit_checkpoint(None, _retype("model/", torch.int32)), "must be float32, got int32"),
    "resume-short-rng": (_edit_checkpoint(None, lambda n: n.__setitem__("rng/torch", n["rng/torch"][:7])),
                         "field rng/torch must have shape"),
    "resume-adam-state-removed": (_edit_checkpoint(
        lambda m: m["optimizer"].update(state_keys={}),
        lambda n: [n.pop(k) for k in [k for k in n if k.startswith("optimizer/")]]), "holds the state of 0 optimiser steps, but the position says 3"),
    "resume-adam-wrong-shape": (_edit_checkpoint(None, lambda n: n.__setitem__(
        "optimizer/0/exp_avg", n["optimizer/0/exp_avg"].flatten()[:5])), "optimizer/0/exp_avg must have shape"),
    "resume-checkpoint-json-nested-deep": (_deep_json, "nested more than 32 levels deep"),

    "resume-checkpoint-of-other-run": (
        lambda root, base: _resume(root, base, copy_checkpoint=True, overrides=[]), "another architecture"),
    "resume-with-other-architecture": (
        lambda root, base: _resume(root, base, copy_checkpoint=False, overrides=["model.n_groups=3"]),
        "another architecture"),
}


# ---------------------------------------------------------------- command-line arguments (no API counterpart)

def _argv(*args: str):
    def build(root: Path, base: Base) -> Call:
        out = root / "run"
        return Call(["train", "--dataset", f"npz:{base.npz}", "--out", str(out), *args], None, args[0], out)
    return build


ARGV_CASES = {
    "argv-epochs-not-int": (_argv("--epochs", "abc"), "invalid int value"),
    "argv-seed-not-int": (_argv("--seed", "1.5"), "invalid int value"),
    "argv-unknown-flag": (_argv("--lr", "0.1"), "unrecognized arguments"),
    "argv-bad-task": (_argv("--task", "segment"), "invalid choice"),
    "argv-resume-and-force": (_argv("--resume", "--force"), "not allowed with"),
}


CASES = {**IDX_CASES, **CIFAR_CASES, **NPZ_CASES, **CONFIG_CASES, **MEMORY_CASES, **MODEL_CASES,
         **CHECKPOINT_CASES, **ARGV_CASES}
XFAIL: dict[str, str] = {}


def _params():
    for name, (build, match) in CASES.items():
        marks = [pytest.mark.xfail(strict=True, reason=XFAIL[name])] if name in XFAIL else []
        yield pytest.param(build, match, id=name, marks=marks)


# ---------------------------------------------------------------- the contract

def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``root``: path -> (size, mtime_ns, sha256)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            out[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def _outside(changed: set[str], root: Path, out: Path | None) -> list[str]:
    if out is None:
        return sorted(changed)
    inside = str(out.relative_to(root))
    return sorted(p for p in changed if p != inside and not p.startswith(inside + os.sep))


def _changes(before: dict, after: dict) -> set[str]:
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


def check_cli(root: Path, call: Call, match: str, capsys) -> None:
    before = snapshot(root)
    capsys.readouterr()
    try:
        rc = main(call.argv)
    except SystemExit as e:  # argparse
        rc = e.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, f"exit code {rc}, stderr: {err}"
    assert "Traceback" not in err
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith(f"lgn {call.argv[0]}: error: "), lines[0]
    assert call.names in lines[0], f"the error does not name {call.names!r}: {lines[0]}"
    assert re.search(match, lines[0]), f"{match!r} not in {lines[0]!r}"
    outside = _outside(_changes(before, snapshot(root)), root, call.out)
    assert not outside, f"files outside the run folder changed: {outside}"


def check_api(root: Path, call: Call, match: str) -> None:
    if call.api is None:
        return
    before = snapshot(root)
    with pytest.raises(Exception) as info:
        call.api()
    error = info.value
    assert isinstance(error, call.api_error), f"{type(error).__name__}: {error}"
    assert call.names in str(error), f"the error does not name {call.names!r}: {error}"
    assert re.search(match, str(error)), f"{match!r} not in {str(error)!r}"
    outside = _outside(_changes(before, snapshot(root)), root, call.out)
    assert not outside, f"files outside the run folder changed: {outside}"


@pytest.mark.parametrize("build, match", list(_params()))
def test_malformed_input_is_refused(tmp_path, base, build, match, capsys):
    call = build(tmp_path, base)
    check_cli(tmp_path, call, match, capsys)
    check_api(tmp_path, call, match)
    assert not (tmp_path / MARKER).exists(), "a pickled payload ran"


def test_there_are_enough_cases():
    kinds = {}
    for name in CASES:
        kinds[name.split("-")[0]] = kinds.get(name.split("-")[0], 0) + 1
    assert len(CASES) >= 40 and {"idx", "gzip", "cifar", "npz", "toml", "set", "model", "resume",
                                                     "argv"} <= set(kinds)


@pytest.mark.parametrize("kind", sorted(hostile_pickles(Path("m"))))
def test_payloads_run_under_a_plain_unpickler(tmp_path, kind):
    """The hostile pickles are live: a plain ``pickle.loads`` creates the marker (so refusing them means something)."""
    marker = tmp_path / MARKER
    try:
        pickle.loads(hostile_pickles(marker)[kind])
    except Exception:
        pass  # the payload runs before anything else can fail
    assert marker.exists()


@pytest.mark.parametrize("name", ["idx-wrong-magic", "cifar-os-system", "toml-infinite-lr",
                                  "npz-float64-beyond-float32", "toml-nested-800-deep", "resume-version-1-bypass"])
def test_real_process_exit_code_and_stderr(tmp_path, base, name):
    build, match = CASES[name]
    call = build(tmp_path, base)
    before = snapshot(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "lgn", *call.argv], capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "LGN_DEBUG"}, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert call.names in lines[0]
    assert not _outside(_changes(before, snapshot(tmp_path)), tmp_path, call.out)
    assert not (tmp_path / MARKER).exists()


@pytest.mark.parametrize("error", [
    MemoryError("Unable to allocate 268. GiB for an array with shape (1000000000, 6, 6) and data type float64"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried "
                 "to allocate 449000000000 bytes. Error code 12 (Cannot allocate memory)"),
    RuntimeError("std::bad_alloc")])
def test_an_allocation_that_fails_anyway_is_one_line(tmp_path, base, monkeypatch, capsys, error):
    """What no estimate foresaw: caught where the command line ends, as one line and exit 2."""
    import lgn.train.loop

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(lgn.train.loop, "fit_preprocessing", fail)
    capsys.readouterr()
    rc = main(["train", "--dataset", f"npz:{base.npz}", "--out", str(tmp_path / "run"), *TINY_SET, "--epochs", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("lgn train: error: out of memory: "), err


def test_another_runtime_error_is_not_taken_for_memory(tmp_path, base, monkeypatch):
    import lgn.train.loop

    def fail(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(lgn.train.loop, "fit_preprocessing", fail)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["train", "--dataset", f"npz:{base.npz}", "--out", str(tmp_path / "run"), *TINY_SET, "--epochs", "1"])
