"""``lgn discover`` on user npz data (a group the planted names do not include) and ``lgn bench-discovery``."""

import json

import numpy as np

from lgn.cli import main
from lgn.data.planted import smooth_templates
from lgn.discovery import alignment
from lgn.groups import operators


def test_discover_npz_unseen_group(tmp_path, capsys):
    t = operators.transpose(6)  # order 2, not one of the planted names
    rng = np.random.default_rng(0)
    temps = smooth_templates(3, 6, rng).reshape(3, 36)

    def draw(n):
        c, j = rng.integers(0, 3, n), rng.integers(0, 2, n)
        x = np.where(j[:, None] == 1, temps[c] @ t.T, temps[c]) + 0.1 * rng.standard_normal((n, 36))
        return x.reshape(n, 6, 6).astype(np.float32), c

    x_train, y_train = draw(300)
    x_test, y_test = draw(60)
    path = tmp_path / "sym.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    out = tmp_path / "run"
    code = main(["discover", "--data", f"npz:{path}", "--group-size", "2", "--out", str(out),
                 "--epochs", "2", "--layers", "1"])
    assert code == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "group found: cyclic of order 2" in text and "transpose" in text
    assert captured.err == ""  # no progress bar drawn into a stderr that is not a terminal
    with np.load(out / "groups.npz") as f:
        assert f["A"].shape == (1, 3, 1, 36, 36) and f["B"].shape == (1, 3, 1, 6, 6)
        assert alignment(f["A"], f["B"], t, 2) > 0.95
    analysis = json.loads((out / "analysis.json").read_text())
    assert analysis["discovery"]["verdict"]["found"] is True
    assert (out / "verdict.txt").read_text().startswith("group found")


def test_discover_rejects_bad_option(tmp_path, capsys):
    code = main(["discover", "--data", "planted:flip", "--group-size", "2", "--out", str(tmp_path),
                 "--set", "sigma"])
    assert code == 2 and "KEY=VALUE" in capsys.readouterr().err


def test_bench_discovery_tiny(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench-discovery", "--datasets", "flip", "--seeds", "0", "--epochs", "1",
                 "--n-train", "200", "--n-test", "50", "--out", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    table = captured.out
    assert captured.err == ""  # no progress bar drawn into a stderr that is not a terminal
    assert "flip" in table and "discover" in table and "paper" in table
    runs = json.loads(out.read_text())["runs"]
    assert {r["method"] for r in runs} == {"discover", "paper"}
    assert [r["alignment"] for r in runs if r["method"] == "discover"][0] > 0.95
