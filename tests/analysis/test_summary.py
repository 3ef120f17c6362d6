"""Per-generator analysis of a model or of arrays: fields, shapes, joint action, .npz input."""

import json
import math

import numpy as np
import pytest

import lgn
from lgn.analysis import Groups, analyze_groups, format_table, groups_from_model, load_groups, save_groups
from lgn.files import write_json
from lgn.groups import operators as ops

FIELDS = {"layer", "group", "channel", "nearest_op", "indices", "group_error"}
INDICES = {"skew", "symmetric", "toeplitz", "circulant", "dft_diagonal", "dft_top", "block"}
GROUP_ERRORS = {"min_singular", "cond", "finite_order", "orthogonality"}


def test_fixed_rotation_model_is_read_as_a_rotation_group():
    model = lgn.build_model(n_layers=2, n_groups=3, generator="fixed:rot90")
    out = analyze_groups(groups_from_model(model))
    assert (out["n_layers"], out["n_groups"], out["order"], out["action"]) == (2, 3, 4, "channel")
    assert len(out["generators"]) == 6
    for e in out["generators"]:
        assert set(e) == FIELDS
        assert set(e["indices"]) == INDICES and set(e["group_error"]) == GROUP_ERRORS
        assert e["nearest_op"] == {"name": "rot90", "similarity": pytest.approx(1.0)}
        assert e["group_error"]["finite_order"] == pytest.approx(0.0, abs=1e-6)
        assert e["group_error"]["orthogonality"] == pytest.approx(0.0, abs=1e-6)
        assert e["indices"]["dft_top"] == pytest.approx(1.0, abs=1e-6)
    assert out["summary"]["families"] == {"rot": 6}


def test_per_channel_and_joint_entries():
    per = analyze_groups(groups_from_model(lgn.build_model(n_layers=1, n_groups=2, in_channels=3, image_size=32)))
    assert [(e["group"], e["channel"]) for e in per["generators"]] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    joint = groups_from_model(lgn.build_model(n_layers=1, n_groups=2, in_channels=3, image_size=32, action="joint"))
    assert joint.action == "joint" and joint.A.shape == (1, 2, 1, 108, 108)
    out = analyze_groups(joint)
    assert [e["channel"] for e in out["generators"]] == [-1, -1]
    assert out["action"] == "joint" and out["channels"] == 3


def test_independent_filters_have_no_group():
    with pytest.raises(ValueError, match="independent"):
        groups_from_model(lgn.build_model(generator="independent"))


def test_npz_round_trip_and_inference(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 1, 25, 25))
    b = rng.standard_normal((2, 3, 1, 5, 5))
    np.savez(tmp_path / "a.npz", A=a)
    g = load_groups(tmp_path / "a.npz")
    assert (g.kernel_size, g.channels, g.order, g.B) == (5, 1, 4, None)
    save_groups(Groups(A=a, B=b, kernel_size=5, channels=1, order=3), tmp_path / "ab.npz")
    g = load_groups(tmp_path / "ab.npz")
    np.testing.assert_array_equal(g.A, a)
    np.testing.assert_array_equal(g.B, b)
    assert g.order == 3
    assert load_groups(tmp_path / "ab.npz", order=7).order == 7
    # a joint generator on 4 channels of 3×3 kernels: 36 = 6², so say the kernel size (or give B)
    np.savez(tmp_path / "j.npz", A=rng.standard_normal((1, 2, 1, 36, 36)))
    assert load_groups(tmp_path / "j.npz").kernel_size == 6
    g = load_groups(tmp_path / "j.npz", kernel_size=3)
    assert (g.kernel_size, g.channels, g.action) == (3, 4, "joint")


@pytest.mark.parametrize("arrays,match", [
    ({"B": np.zeros((1, 1, 1, 3, 3))}, "no array 'A'"),
    ({"A": np.zeros((2, 9, 9))}, "shape"),
    ({"A": np.zeros((1, 1, 1, 10, 10))}, "kernel size"),
    ({"A": np.zeros((1, 1, 1, 9, 9)), "B": np.zeros((1, 2, 1, 3, 3))}, "B must have shape"),
])
def test_bad_npz(tmp_path, arrays, match):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=match):
        load_groups(tmp_path / "bad.npz")


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        load_groups("/nonexistent/file.npz")


def test_json_is_strict_and_table_lists_every_generator(tmp_path):
    a = np.stack([ops.shift(4, 1, 0, cyclic=False), ops.flip(4, "x")])[None, :, None]  # (1, 2, 1, 16, 16)
    out = analyze_groups(Groups(A=a, B=None, kernel_size=4, channels=1, order=2))
    assert out["generators"][0]["group_error"]["cond"] == math.inf  # a zero-padded shift is singular
    write_json(out, tmp_path / "a.json")
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["generators"][0]["group_error"]["cond"] is None
    assert data["generators"][1]["nearest_op"]["name"] == "flip-x"
    table = format_table(out)
    assert "shift(1,0)" in table and "flip-x" in table and "inf" in table
    header = table.splitlines()[0].replace("|", " ").split()
    named = {name for line in table.splitlines()[len(out["generators"]) + 4:]
             for name in line[:12].replace(",", " ").split()}
    # every column past the generator's position and nearest op is explained under the table
    assert set(header[header.index("sim"):]) <= named, set(header[header.index("sim"):]) - named


def test_weak_matches_are_not_counted_as_a_family():
    torch_seeded = lgn.build_model(n_layers=1, n_groups=4)  # random free generators: cosines ≈ 0.1
    out = analyze_groups(groups_from_model(torch_seeded))
    assert out["summary"]["families"] == {"none": 4}
    assert all(e["nearest_op"]["similarity"] < 0.5 for e in out["generators"])


@pytest.mark.parametrize("arrays", [{"A": np.array([None, 1], dtype=object)}, {"A": np.full((1, 1, 1, 4, 4), np.nan)},
                                    {"B": np.zeros((1, 1, 1, 2, 2))}])
def test_unreadable_groups_files_are_refused_naming_the_file(tmp_path, arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="bad.npz"):
        load_groups(path)
