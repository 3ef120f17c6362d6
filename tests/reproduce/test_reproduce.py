"""lgn reproduce end to end on a tiny grid of planted data: results.json, RESULTS.md, resume, grid changes."""

import json

import pytest

from lgn.cli import main
from lgn.reproduce import DataPlan, Recipe, reproduce
from lgn.reproduce.runner import RECORD_FILE

PLANS = [DataPlan(name, {"name": f"planted:{name}", "options": {"n_train": 96, "n_test": 48}},
                  ("classify", "reconstruct"), 96, 48) for name in ("rot90", "flip")]
RECIPE = Recipe("tiny", epochs={"classify": 1, "reconstruct": 1}, baseline_seeds=1,
                model={"n_layers": 2, "n_groups": 2, "group_size": 2, "kernel_size": 3}, train={"batch_size": 64})
TINY_DISCOVERY = {"datasets": ["rot90"], "seeds": [0], "epochs": 1, "sigma": 0.1, "n_train": 64, "n_test": 32,
                  "baseline": False}
RUN_FIELDS = {"dataset", "task", "model", "seed", "metric_name", "metric", "params", "train_seconds"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny grid (4 cells; 3 seeds of each LGN model, 1 of each baseline), run once for the module."""
    out = tmp_path_factory.mktemp("reproduce")
    lines = []
    results = reproduce(out, plans=PLANS, recipe=RECIPE, seeds=3, discovery=TINY_DISCOVERY,
                        command="lgn reproduce --tiny", log=lines.append)
    return out, results, lines


def test_results_json_schema(tiny):
    out, results, _ = tiny
    saved = json.loads((out / "results.json").read_text())
    assert {"command", "machine", "started", "wall_seconds", "git_commit", "runs", "distances", "claim",
            "targets", "time_budget"} <= set(saved)
    assert saved["command"] == "lgn reproduce --tiny" and saved["wall_seconds"] > 0
    assert {"platform", "cpu", "cores", "torch"} <= set(saved["machine"])
    assert len(saved["runs"]) == 4 * (2 * 3 + 3)
    for run in saved["runs"]:
        assert RUN_FIELDS <= set(run)
        assert run["metric_name"] == ("test_acc" if run["task"] == "classify" else "test_psnr")
        assert run["params"] > 0 and run["train_seconds"] > 0
        assert (run["analysis"] is not None) == (run["model"] in ("lgn-free", "lgn-cyclic"))
        assert (out / "runs" / run["run_dir"] / "config.json").is_file()
    lgn_run = next(r for r in saved["runs"] if r["model"] == "lgn-free")
    assert lgn_run["analysis"]["moved_from_init"] > 0  # training moved the generators
    assert (out / "runs" / lgn_run["run_dir"] / "analysis" / "groups.npz").is_file()
    assert (out / "runs" / lgn_run["run_dir"] / "analysis" / "analysis.json").is_file()


def test_distances_have_spread_and_claim_has_a_verdict(tiny):
    _, results, _ = tiny
    for model in ("lgn-free", "lgn-cyclic"):
        d = results["distances"][model]
        assert d["cells"] == ["rot90 classify", "rot90 reconstruct", "flip classify", "flip reconstruct"]
        assert d["pairing"] == "different seeds"
        assert all(d["n_pairs"][i][i] == 3 for i in range(4))  # 3 seeds: 3 pairs within a cell
        assert d["n_pairs"][0][1] == 6  # 3 × 3 seed pairs between cells, less the 3 of equal seeds
        assert all(d["std"][i][j] is not None for i in range(4) for j in range(4))
        c = results["claim"][model]
        assert c["holds"] in (True, False, None) and c["head_to_head"]["total"] == 4
        assert "The claim is " in c["verdict"] and c["same_data_different_task"]["n"] == 2


def test_results_md(tiny):
    out, results, lines = tiny
    md = (out / "RESULTS.md").read_text()
    assert "`lgn reproduce --tiny`" in md and "wall time" in md and results["machine"]["cpu"] in md
    for section in ("## Targets", "### rot90 · classify", "### flip · reconstruct", "### lgn-free", "### lgn-cyclic",
                    "Claim check", "## Discovery on planted symmetries", "## Time budget of the full grid"):
        assert section in md
    assert "**N/A**" in md  # no mnist5k or Fashion-MNIST in this grid
    assert "an estimate" in md
    figures = [line.split("](")[1].rstrip(")") for line in md.splitlines() if line.startswith("![")]
    assert "results/distance-lgn-free.png" in figures and len(figures) == 2 + 4 * 2
    assert all((out / f).is_file() for f in figures)
    assert lines[1].startswith("[1/36] rot90 classify lgn-free s0: test_acc ") and "params" in lines[1]


def test_rerun_reads_everything_back(tiny):
    out, results, _ = tiny
    records = sorted((out / "runs").glob(f"*/{RECORD_FILE}"))
    before = {p: p.stat().st_mtime_ns for p in records}
    lines = []
    again = reproduce(out, plans=PLANS, recipe=RECIPE, seeds=3, discovery=TINY_DISCOVERY,
                      command="lgn reproduce --tiny", log=lines.append)
    assert {p: p.stat().st_mtime_ns for p in records} == before
    assert again["reused_runs"] == 36 and all("done earlier" in line for line in lines[1:37])
    assert [r["metric"] for r in again["runs"]] == [r["metric"] for r in results["runs"]]


def test_other_grid_settings_are_refused_unless_forced(tiny):
    out, _, _ = tiny
    with pytest.raises(ValueError, match="other grid settings \\(seeds, runs differ\\)"):
        reproduce(out, plans=PLANS, recipe=RECIPE, seeds=2, discovery=TINY_DISCOVERY, log=None)
    fewer = reproduce(out, plans=PLANS, recipe=RECIPE, seeds=2, discovery=TINY_DISCOVERY, log=None, force=True)
    assert fewer["reused_runs"] == len(fewer["runs"]) == 4 * (2 * 2 + 3)


def test_a_stopped_reproduction_resumes_without_retraining(tmp_path):
    plans = PLANS[:1]
    recipe = Recipe("tiny2", epochs={"classify": 2, "reconstruct": 1}, baseline_seeds=1, model=RECIPE.model,
                    train=RECIPE.train)
    kwargs = dict(plans=plans, recipe=recipe, seeds=1, discovery=None, models=("lgn-free", "unconstrained"), log=None)
    assert reproduce(tmp_path, limit=1, **kwargs) is None
    first = tmp_path / "runs" / "rot90-classify-lgn-free-s0"
    stamp = (first / RECORD_FILE).stat().st_mtime_ns
    assert not (tmp_path / "runs" / "rot90-classify-unconstrained-s0").exists()

    # a run killed after its first epoch: the next invocation continues it from the checkpoint
    from lgn.reproduce import build_grid
    from lgn.train import train

    spec = next(s for s in build_grid(plans, recipe, 1, ("unconstrained",)) if s.task == "classify")

    def killed(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(spec.settings, tmp_path / "runs" / spec.name, log=None, on_epoch_end=killed)
    epoch1 = json.loads((tmp_path / "runs" / spec.name / "metrics.jsonl").read_text().splitlines()[0])

    results = reproduce(tmp_path, **kwargs)
    assert (first / RECORD_FILE).stat().st_mtime_ns == stamp
    assert results["reused_runs"] == 1 and len(results["runs"]) == 4
    metrics = [json.loads(line) for line in (tmp_path / "runs" / spec.name / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2] and metrics[0] == epoch1


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["reproduce", "--out", str(tmp_path), "--seeds", "0"]) == 2
    assert main(["reproduce", "--out", str(tmp_path), "--cifar-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--seeds must be at least 1" in err[0] and "is not a folder" in err[1]


def test_moved_from_init_rebuilds_the_starting_generators():
    import torch

    from lgn.analysis.summary import groups_from_model
    from lgn.models import build_model
    from lgn.reproduce.runner import _moved_from_init

    torch.manual_seed(5)
    model = build_model(**RECIPE.model)
    groups = groups_from_model(model)
    assert _moved_from_init(model, 5, groups) == 0.0
    assert _moved_from_init(model, 6, groups) > 0.0

