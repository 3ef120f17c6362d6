"""``lgn discover`` on user npz data (a group the planted names do not include) and ``lgn bench-discovery``."""

import json

import numpy as np
import pytest

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
    code = main(["discover", "--dataset", f"npz:{path}", "--group-size", "2", "--out", str(out),
                 "--epochs", "2", "--layers", "1", "--orbit-pool", "max"])
    assert code == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "group found: cyclic of order 2" in text and "transpose" in text
    # every stage has its line on stderr, terminal or not
    stages = [line.split("]: ", 1)[1].split(" train_loss")[0] for line in captured.err.splitlines()]
    assert all(line.startswith("lgn discover [") for line in captured.err.splitlines())
    assert stages == [f"loading npz:{path}", "estimating a group of order 2 from the clusters of 300 images",
                      "training the discovery LGN (3 groups, 1 layers, 2 epochs)", "training epoch 1/2:",
                      "training epoch 2/2:", "judging and analysing the group found"]
    with np.load(out / "groups.npz") as f:
        assert f["A"].shape == (1, 3, 1, 36, 36) and f["B"].shape == (1, 3, 1, 6, 6)
        assert alignment(f["A"], f["B"], t, 2) > 0.95
    analysis = json.loads((out / "analysis.json").read_text())
    assert analysis["discovery"]["verdict"]["found"] is True
    assert analysis["discovery"]["config"]["orbit_pool"] == "max"  # the LGN was built invariant to the group
    assert (out / "verdict.txt").read_text().startswith("group found")


def test_discover_rejects_bad_option(tmp_path, capsys):
    code = main(["discover", "--dataset", "planted:flip", "--group-size", "2", "--out", str(tmp_path),
                 "--set", "sigma"])
    assert code == 2 and "data.options.KEY=VALUE" in capsys.readouterr().err
    code = main(["discover", "--dataset", "planted:flip", "--group-size", "2", "--out", str(tmp_path),
                 "--set", "train.epochs=3"])
    assert code == 2 and "got 'train.epochs=3'" in capsys.readouterr().err


def test_discover_reads_train_s_set_grammar_and_the_old_spellings_with_a_hint(capsys):
    from lgn.cli import build_parser
    from lgn.cli.discover import parse_options

    assert parse_options(["data.options.sigma=0.3", "data.options.name_of=rot90"]) == {"sigma": 0.3,
                                                                                       "name_of": "rot90"}
    assert capsys.readouterr().err == ""
    assert parse_options(["sigma=0.3"]) == {"sigma": 0.3}
    assert capsys.readouterr().err.strip() == ("lgn discover: --set sigma=0.3 is now --set data.options.sigma=0.3 "
                                               "(the old spelling still works)")
    args = build_parser().parse_args(["discover", "--data", "planted:flip", "--group-size", "2", "--out", "d"])
    assert args.dataset == "planted:flip"
    assert capsys.readouterr().err.strip() == "lgn discover: --data is now --dataset (the old spelling still works)"


def test_discover_refuses_before_creating_its_folder(tmp_path, capsys):
    out = tmp_path / "D"
    with pytest.raises(SystemExit) as e:
        main(["discover", "--dataset", "planted:flip", "--group-size", "0", "--out", str(out)])
    assert e.value.code == 2
    assert "--group-size: expected a positive integer, got '0'" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("flags, message", [
    (["--held-out", "1"], "learn.held_out must be in [0, 1), got 1.0"),
    (["--shells", "-1"], "learn.shells must be at least 0, got -1"),
    (["--anchor-weight", "nan"], "discovery.anchor_weight must be non-negative, got nan"),
])
def test_discover_refuses_a_bad_setting_in_one_line(tmp_path, capsys, flags, message):
    out = tmp_path / "D"
    code = main(["discover", "--dataset", "planted:flip", "--group-size", "2", "--out", str(out), *flags])
    assert code == 2 and capsys.readouterr().err == f"lgn discover: error: {message}\n"
    assert not out.exists()


def test_bench_discovery_refuses_a_bad_setting_in_one_line(capsys):
    code = main(["bench-discovery", "--datasets", "flip", "--seeds", "0", "--epochs", "0", "--n-train", "20",
                 "--n-test", "10", "--methods", "paper"])
    err = capsys.readouterr().err
    assert code == 2 and err == "lgn bench-discovery: error: discovery.epochs must be at least 1, got 0\n"


def test_bench_discovery_tiny(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench-discovery", "--datasets", "flip", "--seeds", "0", "--epochs", "1",
                 "--n-train", "200", "--n-test", "50", "--out", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    table = captured.out
    assert "lgn bench-discovery [" in captured.err and "flip seed 0: training the discovery LGN" in captured.err
    assert "flip" in table and "discover" in table and "paper" in table
    runs = json.loads(out.read_text())["runs"]
    assert {r["method"] for r in runs} == {"discover", "paper"}
    assert [r["alignment"] for r in runs if r["method"] == "discover"][0] > 0.95
