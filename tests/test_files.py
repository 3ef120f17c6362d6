"""lgn.files.write_json: strict JSON, written atomically."""

import json
import math
import os

import numpy as np
import pytest

from lgn.files import write_json


def test_non_finite_floats_become_null_and_numpy_scalars_plain_numbers(tmp_path):
    path = write_json({"a": math.inf, "b": [np.float32(0.5), np.int64(3), -math.nan], "c": (1, "x")},
                      tmp_path / "out.json")
    text = path.read_text()
    assert json.loads(text) == {"a": None, "b": [0.5, 3, None], "c": [1, "x"]}
    assert text.endswith("}\n") and "\n  " in text  # indented, one newline at the end


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path, monkeypatch):
    path = tmp_path / "out.json"
    path.write_text('{"old": 1}\n')

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match=f"cannot write {path}"):
        write_json({"new": 2}, path)
    assert path.read_text() == '{"old": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_data_that_is_not_json_changes_nothing(tmp_path):
    path = tmp_path / "out.json"
    path.write_text('{"old": 1}\n')
    with pytest.raises(TypeError):
        write_json({"new": object()}, path)
    assert path.read_text() == '{"old": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
