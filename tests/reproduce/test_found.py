"""lgn curves --found on a tiny setting: discovery from training images only, the models, records, resume."""

import json

import numpy as np
import pytest

from lgn.cli import main
from lgn.data.planted import planted_generator
from lgn.groups.loading import load_generator
from lgn.reproduce.found import FOUND, FoundSettings, build_found, found_curves, found_verdicts

TINY = FoundSettings(datasets=("digits-perm4",), sizes=(30, 60), seeds=1, steps=3, test_subset=50, width=3,
                     null_draws=2, models=("found", "oracle", "mlp", "unconstrained"),
                     model={"n_layers": 1, "n_groups": 2, "kernel_size": 3}, train={"batch_size": 32})


def test_the_default_grid(tmp_path):
    specs = build_found(tmp_path, FOUND,
                        {(d, s): f"out/groups/{d}-s{s}/groups.npz" for d in FOUND.datasets for s in range(3)})
    planted = [s for s in specs if s.dataset.startswith("digits-")]
    natural = [s for s in specs if not s.dataset.startswith("digits-")]
    assert len(planted) == 3 * 5 * 3 * 6 and len(natural) == 2 * 5 * 3 * 3
    assert {s.model for s in planted} == {"found", "oracle", "mlp", "unconstrained", "cnn", "lgn-free"}
    assert {s.model for s in natural} == {"found", "rot90-pooled", "mlp"}
    found = next(s for s in specs if s.model == "found" and s.dataset == "digits-rot90" and s.seed == 1)
    assert found.settings["model"]["generator"] == "file:out/groups/digits-rot90-s1/groups.npz"
    assert found.settings["model"]["orbit_pool"] == "max" and found.settings["model"]["image_size"] == 16
    mlp = next(s for s in specs if s.model == "mlp")
    assert mlp.settings["model"]["generator"] == "independent" and "orbit_pool" not in mlp.settings["model"]
    assert {s.settings["train"]["epochs"] for s in specs if s.n_train == 100} == {256}
    # the planted sets' group MLPs first, then their baselines at the headline size (250), then the rest
    first_baseline = next(i for i, s in enumerate(specs) if s.model == "unconstrained")
    assert first_baseline == 3 * 5 * 3 * 3
    assert all(s.model in ("found", "oracle", "mlp") for s in specs[:first_baseline])
    assert {(s.n_train, s.model in ("unconstrained", "cnn", "lgn-free")) for s in
            specs[first_baseline:first_baseline + 27]} == {(250, True)}
    assert {s.dataset for s in specs[first_baseline + 27:first_baseline + 27 + 90]} == {"mnist5k", "fashion-mnist"}
    rot90 = np.load(tmp_path / "groups" / "mnist5k-rot90-pooled.npy")  # a quarter turn of the whole 28×28 image
    assert np.array_equal(rot90 @ np.arange(784.0), np.rot90(np.arange(784.0).reshape(28, 28)).ravel())


def test_tiny_found_curves_end_to_end_and_resumed(tmp_path):
    partial = found_curves(tmp_path, settings=TINY, log=None, limit=2)
    assert not partial["complete"] and len(partial["runs"]) == 2
    assert "**PARTIAL RESULTS**: 2 of 8 runs" in (tmp_path / "CURVES.md").read_text()
    record_file = tmp_path / "runs" / "digits-perm4-classify-found-s0-n30.json"
    stamp = record_file.stat().st_mtime_ns

    result = found_curves(tmp_path, settings=TINY, log=None)
    assert result["complete"] and result["reused_runs"] == 2 and record_file.stat().st_mtime_ns == stamp
    saved = json.loads((tmp_path / "curves.json").read_text())
    assert saved["complete"] is True
    for run in saved["runs"]:  # the records of results/curves
        assert {"dataset", "model", "seed", "n_train", "metric", "params", "params_export"} <= set(run)
    assert {r["model"] for r in saved["runs"]} == {"found", "oracle", "mlp", "unconstrained"}
    # the group was found in the first 60 training images of seed 0, and is what the found model was built on
    (d,) = saved["discovery"]
    assert (d["dataset"], d["seed"], d["n_images"]) == ("digits-perm4", 0, 60)
    a = load_generator(tmp_path / "groups" / "digits-perm4-s0" / "groups.npz", 4)
    t, _ = planted_generator("digits-perm4", 16)
    assert a.shape == (256, 256) and np.allclose(a @ a.T, np.eye(256), atol=1e-8)
    assert np.array_equal(np.load(tmp_path / "groups" / "digits-perm4-oracle.npy"), t)
    found = next(r for r in saved["runs"] if r["model"] == "found")
    assert found["params"] == 3 * 256 + 3 + (3 * 12 + 12) + (12 * 10 + 10)  # K base rows, pooled bias, head
    assert found["params_export"] == 12 * 256 + 3 + (3 * 12 + 12) + (12 * 10 + 10)
    assert {v["against"] for v in saved["verdicts"] if v["model"] == "found"} <= {"oracle", "mlp", "unconstrained"}
    md = (tmp_path / "CURVES.md").read_text()
    assert "PARTIAL" not in md and "## Discovery (training images only)" in md and "| digits-perm4 | found |" in md
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_verdicts_name_the_best_baseline_and_the_oracle():
    def row(model, mean, std=0.01):
        return {"dataset": "d", "n_train": 250, "model": model, "accuracy": {"mean": mean, "std": std, "n": 3}}

    table = [row("found", 0.80), row("oracle", 0.805), row("mlp", 0.70), row("cnn", 0.75), row("lgn-free", 0.60),
             {**row("unconstrained", None), "accuracy": {"mean": None, "std": None, "n": 0}}]  # not yet run
    verdicts = [v for v in found_verdicts(table) if v["model"] == "found"]
    got = {v["against"]: (v["outcome"], round(v["difference"], 4), v["baselines_missing"]) for v in verdicts}
    assert got == {"cnn": ("win", 0.05, ["unconstrained"]), "oracle": ("tie", -0.005, [])}


def test_cli_found_refuses_unknown_datasets_in_one_line(tmp_path, capsys):
    assert main(["curves", "--found", "--out", str(tmp_path), "--datasets", "cifar10"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown dataset(s) cifar10" in err[0]
    assert main(["curves", "--out", str(tmp_path), "--datasets", "digits-rot90"]) == 2
    assert "--datasets needs --found" in capsys.readouterr().err


def test_the_committed_curves_md_renders_from_its_curves_json(tmp_path):
    """results/found-groups/CURVES.md, written by the code before its template, is what the template writes, byte
    for byte, from the same curves.json (its full table and discovery verdicts)."""
    from pathlib import Path

    from lgn.reproduce.found import _markdown

    committed = Path(__file__).resolve().parents[2] / "results" / "found-groups"
    result = json.loads((committed / "curves.json").read_text())
    assert result["complete"] and result["discovery"]  # the complete grid and the discovery table are read
    assert _markdown(result, tmp_path / "CURVES.md").read_bytes() == (committed / "CURVES.md").read_bytes()
