"""The probe: exact where the operation stays inside the patch, least squares otherwise."""

import numpy as np
import pytest

from lgn.analysis import Groups
from lgn.analysis.probe import (PROBE_OPERATIONS, compare_generators, fit_linear_map, operation_margin,
                                parse_operation, run_probe, window_operator)
from lgn.data.patches import natural_patches


@pytest.fixture(scope="module")
def windows():
    k = 6
    size = k + 2 * max(operation_margin(op, k) for op in PROBE_OPERATIONS)
    return natural_patches(size, 600, seed=0)  # (600, 3, 18, 18)


@pytest.fixture(scope="module")
def fits(windows):
    return {f.name: f for f in run_probe(windows, 6)}


def test_fitted_90_degree_rotation_is_the_exact_permutation(fits):
    perm = np.stack([np.rot90(e).reshape(-1) for e in np.eye(36).reshape(36, 6, 6)], axis=1)
    assert np.abs(fits["rot90"].matrix - perm).max() < 1e-3
    assert fits["rot90"].rel_error < 1e-6
    d = fits["rot90"].to_dict()
    assert d["nearest_op"] == {"name": "rot90", "similarity": pytest.approx(1.0)}
    assert d["group_error"]["finite_order"] < 1e-3


def test_every_fit_reports_error_and_measures(fits):
    assert list(fits) == list(PROBE_OPERATIONS)
    for f in fits.values():
        d = f.to_dict()
        assert set(d) == {"name", "rel_error", "exact_similarity", "nearest_op", "indices", "group_error"}
        assert 0 <= d["rel_error"] < 0.5
    # rotations by 30..60° stay close to the bilinear operator; pooling borrows from outside the patch
    for name in ("rot30", "rot45", "rot60"):
        assert fits[name].to_dict()["exact_similarity"] > 0.85
        assert fits[name].to_dict()["nearest_op"]["name"].startswith("rot")


def test_window_operator_crops_the_operated_window():
    k, margin = 4, 3
    w = np.random.default_rng(0).standard_normal((k + 2 * margin, k + 2 * margin))
    got = (window_operator("rot90", k, margin) @ w.reshape(-1)).reshape(k, k)
    np.testing.assert_array_equal(got, np.rot90(w)[margin:-margin, margin:-margin])
    pooled = (window_operator("pool1", k, margin) @ w.reshape(-1)).reshape(k, k)
    assert pooled[0, 0] == pytest.approx(w[margin - 1:margin + 2, margin - 1:margin + 2].mean())


def test_fit_linear_map_recovers_a_known_map():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 5))
    x = rng.standard_normal((200, 5))
    got, err = fit_linear_map(x, x @ a.T)
    np.testing.assert_allclose(got, a, atol=1e-10)
    assert err < 1e-10
    with pytest.raises(ValueError, match="at least"):
        fit_linear_map(x[:3], x[:3])


def test_parse_operation():
    assert parse_operation("pool3") == (3, None)
    assert parse_operation("rot60") == (None, 60.0)
    assert parse_operation("pool3+rot60") == (3, 60.0)
    for bad in ("", "pool", "rot", "blur3", "pool3rot60", "+rot60"):
        with pytest.raises(ValueError, match="probe operation"):
            parse_operation(bad)


def test_windows_must_be_large_enough():
    with pytest.raises(ValueError, match="windows of side"):
        run_probe(np.zeros((50, 1, 8, 8)), 6, ["pool3"])


def test_compare_generators_finds_the_map_it_is(fits):
    a = np.zeros((1, 2, 1, 36, 36))
    a[0, 0, 0] = 0.5 * fits["rot30"].matrix
    a[0, 1, 0] = -fits["pool4"].matrix
    g = Groups(A=a, B=None, kernel_size=6, channels=1, order=4)
    out = compare_generators(g, list(fits.values()))
    assert out["maps"] == list(PROBE_OPERATIONS)
    first, second = out["generators"]
    assert first["best"] == {"name": "rot30", "similarity": pytest.approx(1.0)}
    assert second["similarity"]["pool4"] == pytest.approx(-1.0)
    g7 = Groups(A=np.zeros((1, 1, 1, 49, 49)), B=None, kernel_size=7, channels=1, order=4)
    with pytest.raises(ValueError, match="kernel-size"):
        compare_generators(g7, list(fits.values()))
