"""``lgn analyze``, ``lgn probe`` and ``lgn report`` end to end, in-process."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import lgn
from lgn.cli import main
from lgn.models import save_model


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    save_model(lgn.build_model(n_layers=2, n_groups=3, generator="fixed:transpose"), run)
    return run


def test_analyze_a_run(run_dir, capsys):
    assert main(["analyze", str(run_dir), "--no-figures"]) == 0
    out = capsys.readouterr().out
    assert "transpose" in out and "analysis.json" in out
    data = json.loads((run_dir / "analysis" / "analysis.json").read_text())
    # it opens with the verdict in words: fixed transposes are a known group of order 2, so of order 4 too
    assert out.splitlines()[0] == ("6 of 6 generators are close to a known operation (transpose 6; cosine "
                                   "similarity at least 0.5), and they form finite groups of order 4 (median "
                                   "order error 0.000).")
    assert len(data["generators"]) == 6
    assert {e["nearest_op"]["name"] for e in data["generators"]} == {"transpose"}
    arrays = np.load(run_dir / "analysis" / "groups.npz")
    assert arrays["A"].shape == (2, 3, 1, 36, 36) and arrays["B"].shape == (2, 3, 1, 6, 6)


def test_analyze_arrays_with_figures(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "g.npz", A=rng.standard_normal((1, 2, 1, 16, 16)), B=rng.standard_normal((1, 2, 1, 4, 4)))
    out_dir = tmp_path / "out"
    assert main(["analyze", "--groups", str(tmp_path / "g.npz"), "--out", str(out_dir), "--order", "3"]) == 0
    data = json.loads((out_dir / "analysis.json").read_text())
    assert data["order"] == 3 and data["kernel_size"] == 4
    assert set(data["figures"]) == {"generators", "dft", "orbits", "identity_action"}
    assert all((out_dir / f).is_file() for f in data["figures"].values())
    assert not (out_dir / "groups.npz").exists()  # arrays came from the user's file
    assert "4 figures" in capsys.readouterr().out


@pytest.mark.parametrize("argv,match", [
    (["analyze"], "exactly one"),
    (["analyze", "x", "--groups", "y.npz"], "exactly one"),
    (["analyze", "/nonexistent/run"], "no such run folder"),
    (["analyze", "--groups", "/nonexistent.npz"], "no such file"),
    (["probe", "--out", "o", "--ops", "blur3"], "unknown probe operation"),
    (["report", "/nonexistent/dir"], "no such folder"),
])
def test_user_errors_are_one_line_exit_2(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1 and "Traceback" not in err


def test_probe_compare_and_report(run_dir, tmp_path, capsys):
    out_dir = run_dir / "probe"
    assert main(["probe", "--out", str(out_dir), "--compare", str(run_dir), "--n", "300",
                 "--ops", "rot90,pool2,rot45"]) == 0
    text = capsys.readouterr().out
    assert "rot90" in text and "cosine similarity" in text
    data = json.loads((out_dir / "probe.json").read_text())
    assert [m["name"] for m in data["maps"]] == ["rot90", "pool2", "rot45"]
    rot90 = data["maps"][0]
    assert rot90["rel_error"] < 1e-6 and rot90["exact_similarity"] == pytest.approx(1.0)
    assert len(data["compare"]["generators"]) == 6 and data["compare"]["maps"] == ["rot90", "pool2", "rot45"]
    maps = np.load(out_dir / "maps.npz")
    assert maps["maps"].shape == (3, 36, 36) and list(maps["names"]) == ["rot90", "pool2", "rot45"]
    assert main(["report", str(run_dir)]) == 0
    page = (run_dir / "report" / "index.html").read_text()
    assert "probe.png" in page and "similarity.png" in page and "generators.png" in page


def test_probe_on_cifar10_uses_the_data_loader(tmp_path, monkeypatch, capsys):
    import lgn.data

    images = torch.from_numpy(np.random.default_rng(0).random((20, 3, 32, 32), dtype=np.float32))
    seen = {}

    def fake_get_dataset(name, data_dir=None, **kw):
        seen.update(name=name, data_dir=data_dir)
        return SimpleNamespace(x_train=images)

    monkeypatch.setattr(lgn.data, "get_dataset", fake_get_dataset)
    assert main(["probe", "--dataset", "cifar10", "--data-dir", "somewhere", "--out", str(tmp_path),
                 "--n", "100", "--ops", "rot90", "--no-figures"]) == 0
    assert seen == {"name": "cifar10", "data_dir": "somewhere"}
    data = json.loads((tmp_path / "probe.json").read_text())
    assert data["dataset"] == "cifar10" and data["maps"][0]["rel_error"] < 1e-6


def test_analyze_a_trained_run_reports_code_energy_per_power(tmp_path, capsys):
    from tests.train.helpers import TINY_SET, write_tiny_npz

    npz = write_tiny_npz(tmp_path / "tiny.npz")
    run = tmp_path / "run"
    assert main(["train", "--dataset", f"npz:{npz}", "--out", str(run), "--epochs", "1", "--no-progress",
                 *TINY_SET]) == 0
    capsys.readouterr()
    assert main(["analyze", str(run), "--no-figures"]) == 0
    out = capsys.readouterr().out
    assert "code energy per orbit power" in out and "A^0·B" in out
    energy = json.loads((run / "analysis" / "analysis.json").read_text())["code_energy"]
    assert energy["split"] == "test" and energy["examples"] == 24
    from lgn.models import load_model

    assert len(energy["fractions"]) == load_model(run).config.group_size
    assert abs(sum(energy["fractions"]) - 1) < 1e-9 and min(energy["fractions"]) >= 0


def test_analyze_without_matplotlib_stops_before_any_work(run_dir, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "analysis"
    code = ("import sys; sys.modules['matplotlib'] = None\n"  # as if not installed
            f"from lgn.cli import main\nraise SystemExit(main(['analyze', {str(run_dir)!r}, '--out', {str(out)!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip() == ("lgn analyze: error: figures need the optional matplotlib package: pip install "
                                     "'lgn[figures]', or pass --no-figures")
    assert not out.exists()  # no half-written groups.npz


def test_report_opens_with_the_verdict_and_gives_the_code_energy(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from tests.train.helpers import TINY_SET, write_tiny_npz

    npz = write_tiny_npz(tmp_path / "tiny.npz")
    run = tmp_path / "run"
    assert main(["train", "--dataset", f"npz:{npz}", "--out", str(run), "--epochs", "1", "--no-progress",
                 *TINY_SET]) == 0
    assert main(["report", str(run)]) == 0  # analyses the run itself, code energy included
    html = (run / "report" / "index.html").read_text()
    analysis = json.loads((run / "analysis" / "analysis.json").read_text())
    from lgn.analysis.energy import describe_code_energy
    from lgn.analysis.verdict import verdict

    from markupsafe import escape

    head = html.split("<h1>", 1)[1].split("</h1>", 1)[1].lstrip()
    assert head.startswith(f'<p class="verdict">{escape(verdict(analysis))}</p>')
    assert "power 0 carries" in verdict(analysis) or "powers 1 to 1 carry" in verdict(analysis)
    energy = describe_code_energy(analysis["code_energy"])
    assert energy.startswith("code energy per orbit power (final code, 24 test images): A^0·B ")
    assert f"The {escape(energy)}." in html
