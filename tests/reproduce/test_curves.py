"""lgn curves on a tiny planted grid: equal step budgets, the tables, verdicts, figure, resume and partial output."""

import json

import pytest

from lgn.cli import main
from lgn.reproduce import DataPlan, data_plans
from lgn.reproduce.curves import CURVES, CurveSettings, build_curves, curve_epochs, curve_verdicts, curves
from lgn.runs import RECORD_FILE, cpu_model

PLANS = [DataPlan(name, {"name": f"planted:{name}", "options": {"n_train": 128, "n_test": 48}},
                  ("classify", "reconstruct"), 128, 48) for name in ("rot90", "flip")]
TINY = CurveSettings(sizes=(32, 128), seeds=2, steps=4, test_subset=40, models=("lgn-free", "unconstrained"),
                     model={"n_layers": 2, "n_groups": 2, "group_size": 2, "kernel_size": 3}, train={"batch_size": 32})


def test_every_size_gets_the_same_number_of_steps():
    assert [curve_epochs(n, 256) for n in CURVES.sizes] == [128, 64, 32, 16, 8]  # 2, 4, 8, 16, 32 batches
    assert curve_epochs(300, 256) == 86  # 3 batches an epoch: 258 steps, the least ≥ 256
    specs = build_curves(data_plans(), CURVES)
    assert {s.dataset for s in specs} == {"mnist5k", "fashion-mnist"}  # the patches have no labels
    assert {s.model for s in specs} == set(CURVES.models) and "rot90" not in CURVES.models
    assert len(specs) == 2 * 5 * len(CURVES.models) * 3
    for s in specs:
        assert s.settings["data"]["train_subset"] == s.n_train and s.n_test == 1000
        batches = -(-s.n_train // 128)
        assert 256 <= s.settings["train"]["epochs"] * batches < 256 + batches
    assert [s.seed for s in specs[:3]] == [0, 0, 0] and specs[-1].seed == 2  # seed by seed
    fashion = next(s for s in specs if s.dataset == "fashion-mnist")
    assert fashion.settings["data"]["test_subset"] == 1000 and fashion.name.endswith("-n250")


def test_refuses_sizes_beyond_the_data_and_bad_settings():
    with pytest.raises(ValueError, match="exceeds rot90's 128 training images"):
        build_curves(PLANS, CurveSettings(sizes=(256,), models=("cnn",)))
    with pytest.raises(ValueError, match="unknown model"):
        CurveSettings(models=("nope",))
    with pytest.raises(ValueError, match="at least 1"):
        CurveSettings(seeds=0)


def test_tiny_curves_end_to_end_with_a_partial_first_invocation(tmp_path):
    partial = curves(tmp_path, plans=PLANS, settings=TINY, log=None, limit=3)
    assert not partial["complete"] and len(partial["runs"]) == 3
    md = (tmp_path / "CURVES.md").read_text()
    assert "**PARTIAL RESULTS**: 3 of 16 runs" in md and "not yet run: seed(s) 1" in md
    stamp = (tmp_path / "runs" / "rot90-classify-lgn-free-s0-n32" / RECORD_FILE).stat().st_mtime_ns

    result = curves(tmp_path, plans=PLANS, settings=TINY, log=None)
    assert result["complete"] and len(result["runs"]) == 16
    assert (tmp_path / "runs" / "rot90-classify-lgn-free-s0-n32" / RECORD_FILE).stat().st_mtime_ns == stamp
    saved = json.loads((tmp_path / "curves.json").read_text())
    epochs = {(r["n_train"]): r["epochs"] for r in saved["runs"]}
    assert epochs == {32: 4, 128: 1}  # 4 steps: 1 batch an epoch at 32 images, 4 at 128
    row = next(r for r in saved["table"] if (r["dataset"], r["n_train"], r["model"]) == ("flip", 128, "lgn-free"))
    assert row["accuracy"]["n"] == 2 and row["seeds_missing"] == [] and row["params"] > row["params_export"]
    assert len(saved["verdicts"]) == 4 and {v["outcome"] for v in saved["verdicts"]} <= {"win", "tie", "lose"}
    md = (tmp_path / "CURVES.md").read_text()
    assert "PARTIAL" not in md and "## Verdicts" in md and "- rot90: lgn-free against unconstrained " in md
    assert saved["reused_runs"] == 3 and "(3 of 16 runs were finished by an earlier invocation and read back)" in md
    assert f"- Runs trained on: {cpu_model()}" in md
    assert "| lgn-free | " in md and (tmp_path / "curves.png").stat().st_size > 1000


def test_verdicts_follow_the_seed_spread():
    def row(model, n, mean, std):
        return {"dataset": "d", "n_train": n, "model": model,
                "accuracy": {"mean": mean, "std": std, "n": 3, "values": []}}

    table = [row("lgn-free", 250, 0.90, 0.01), row("unconstrained", 250, 0.85, 0.01),
             row("lgn-free", 500, 0.90, 0.03), row("unconstrained", 500, 0.88, 0.03),
             row("lgn-free", 1000, 0.80, 0.001), row("unconstrained", 1000, 0.90, 0.001)]
    got = {v["n_train"]: v["outcome"] for v in curve_verdicts(table)}
    assert got == {250: "win", 500: "tie", 1000: "lose"}  # margins √2·0.01, √2·0.03, at least 0.005


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["curves", "--out", str(tmp_path), "--seeds", "0"]) == 2
    with pytest.raises(SystemExit) as e:
        main(["curves", "--out", str(tmp_path), "--sizes", "250,x"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--seeds must be at least 1" in err[0] and "training sizes" in err[1]
