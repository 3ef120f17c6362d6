"""Figures are drawn lazily, land on disk as PNGs, and the report folder is self-contained."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import lgn
from lgn.analysis import groups_from_model
from lgn.analysis.figures import analysis_figures, probe_figure, similarity_figure
from lgn.analysis.probe import compare_generators, run_probe
from lgn.analysis.report import write_report
from lgn.analysis.summary import write_analysis
from lgn.data.patches import natural_patches
from lgn.files import write_json
from lgn.models import save_model

PNG = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_importing_the_analysis_does_not_import_matplotlib():
    code = "import sys, lgn.analysis, lgn.analysis.probe, lgn.analysis.report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("config", [dict(), dict(in_channels=3, image_size=32),
                                    dict(in_channels=3, image_size=32, action="joint")])
def test_analysis_figures(tmp_path, config):
    g = groups_from_model(lgn.build_model(n_layers=2, n_groups=3, **config))
    files = analysis_figures(g, tmp_path)
    assert set(files) == {"generators", "dft", "identity_action", "orbits"}
    for name in files.values():
        w, h = png_size(tmp_path / name)
        assert 200 < w < 4000 and 150 < h < 4000


def test_analysing_the_demo_sized_model_writes_every_figure(tmp_path):
    # its time is not asserted here: a shared machine's load decides it (benchmarks measure, tests check)
    g = groups_from_model(lgn.build_model())  # 4 layers × 5 groups
    out = write_analysis(g, tmp_path, figures=True, save_arrays=True)
    assert len(out["generators"]) == 20 and len(out["figures"]) == 4
    assert all((tmp_path / name).is_file() for name in out["figures"].values())


@pytest.fixture(scope="module")
def run_with_probe(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    save_model(lgn.build_model(n_layers=2, n_groups=2), run)
    (run / "config.json").write_text('{"model": {"n_layers": 2}, "epochs": 3}\n')
    (run / "metrics.jsonl").write_text("".join(f'{{"epoch": {e}, "loss": {2.0 / e}, "accuracy": {0.2 * e}}}\n'
                                               for e in (1, 2, 3)))
    fits = run_probe(natural_patches(14, 200, seed=0), 6, ["rot90", "pool2"])
    probe_dir = run / "probe"
    probe_dir.mkdir()
    compare = {"run": str(run), **compare_generators(groups_from_model(lgn.models.load_model(run)), fits)}
    probe = {"dataset": "patches", "kernel_size": 6, "n_patches": 200, "channels": 3, "window": 14, "seed": 0,
             "order": 4, "maps": [f.to_dict() for f in fits], "compare": compare,
             "figures": {"probe": probe_figure(fits, probe_dir / "probe.png").name,
                         "similarity": similarity_figure(compare, probe_dir / "similarity.png").name}}
    write_json(probe, probe_dir / "probe.json")
    return run


def test_report_of_a_run_is_self_contained(run_with_probe):
    index = write_report(run_with_probe)
    assert index == run_with_probe / "report" / "index.html"
    page = index.read_text()
    assert (run_with_probe / "analysis" / "analysis.json").is_file()  # analysed on the way
    images = re.findall(r"<img src=\"([^\"]+)\"", page)
    assert {"generators.png", "dft.png", "orbits.png", "identity_action.png", "probe.png", "similarity.png",
            "training.png"} <= set(images)
    for name in images:
        assert "/" not in name and png_size(index.parent / name)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    for text in ("nearest op", "toeplitz", "finite_order", "rot90", "pool2", "metrics.jsonl"):
        assert text in page
    # results first, the settings last and folded away
    assert page.index("Results") < page.index("Learned generators") < page.index("<details><summary>config.json")


def test_report_escapes_markup_from_every_file(tmp_path):
    # a run folder is data: a name, a config value, a metrics key or an analysis field is shown, never run
    # (the f-string report escaped some values and not others: the analysis' action and layer went in raw)
    attack = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    save_model(lgn.build_model(n_layers=1, n_groups=2), tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"data": {"name": attack}, attack: 1}))
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "train_loss": 0.5, attack: attack}) + "\n")
    analysis = write_analysis(groups_from_model(lgn.build_model(n_layers=1, n_groups=2)), tmp_path / "analysis",
                              figures=False, save_arrays=False)
    analysis["action"] = attack
    analysis["generators"][0]["layer"] = attack
    write_json(analysis, tmp_path / "analysis" / "analysis.json")
    page = write_report(tmp_path).read_text()
    assert "<script" not in page and "<img src=x" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;") >= 5


def test_report_of_a_discovery_folder_gives_the_verdict(tmp_path):
    g = groups_from_model(lgn.build_model(n_layers=1, n_groups=2))
    analysis = write_analysis(g, tmp_path, figures=False, save_arrays=True)
    analysis["discovery"] = {"data": "planted:rot90", "test_accuracy": 0.97,
                             "verdict": {"found": True, "order": 4, "fit_residual": 0.01}}
    write_json(analysis, tmp_path / "analysis.json")
    (tmp_path / "verdict.txt").write_text("group found: cyclic of order 4 (asked 4)\nnearest known operation: rot90\n")
    page = write_report(tmp_path).read_text()
    assert "Discovery verdict" in page and "group found: cyclic of order 4" in page
    assert page.index("Discovery verdict") < page.index("Learned generators")
    assert "test_accuracy" in page and "0.970" in page


def test_report_needs_something_to_report(tmp_path):
    with pytest.raises(FileNotFoundError, match="lgn analyze"):
        write_report(tmp_path)
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "missing")


def test_report_draws_figures_an_analysis_skipped(tmp_path):
    g = groups_from_model(lgn.build_model(n_layers=1, n_groups=2))
    write_analysis(g, tmp_path, figures=False, save_arrays=True)
    page = write_report(tmp_path).read_text()
    assert "generators.png" in page and (tmp_path / "report" / "generators.png").is_file()
    assert np.load(tmp_path / "groups.npz")["A"].shape == (1, 2, 1, 36, 36)


def test_drawing_leaves_the_callers_matplotlib_backend_and_pyplot_alone(tmp_path):
    # a notebook's backend stays; before, every figure forced the process onto Agg through pyplot
    code = f"""
import sys, matplotlib
matplotlib.use("svg")
import lgn
from lgn.analysis import groups_from_model
from lgn.analysis.figures import analysis_figures
analysis_figures(groups_from_model(lgn.build_model(n_layers=1, n_groups=2)), {str(tmp_path)!r})
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["svg", "False"]
    assert (tmp_path / "orbits.png").read_bytes()[:8] == PNG


def test_without_matplotlib_figures_fail_in_one_line_naming_the_extra(tmp_path):
    code = f"""
import sys
sys.modules["matplotlib"] = None  # as if not installed
import lgn
from lgn.analysis import groups_from_model
from lgn.analysis.figures import analysis_figures
try:
    analysis_figures(groups_from_model(lgn.build_model(n_layers=1, n_groups=2)), {str(tmp_path)!r})
except ValueError as e:
    print(e)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "figures need the optional matplotlib package: pip install 'lgn[figures]'"
