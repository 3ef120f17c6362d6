"""lgn reproduce end to end on a tiny grid of planted data: results.json, RESULTS.md, resume, grid changes."""

import json

import pytest
import torch

from lgn.cli import main
from lgn.reproduce import DataPlan, Recipe, reproduce
from lgn.reproduce.results import fmt_trained_on
from lgn.runs import MACHINES_FILE, RECORD_FILE, MachineNote, cpu_model, trained_on

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
            "targets", "time_budget", "collapses"} <= set(saved)
    assert saved["collapses"] == []  # one epoch a run: nothing to fall from
    assert saved["command"] == "lgn reproduce --tiny" and saved["wall_seconds"] > 0
    assert {"platform", "cpu", "cores", "torch"} <= set(saved["machine"])
    assert len(saved["runs"]) == 4 * (3 * 3 + 3)
    for run in saved["runs"]:
        assert RUN_FIELDS <= set(run)
        assert run["metric_name"] == ("test_acc" if run["task"] == "classify" else "test_psnr")
        assert run["params"] > 0 and run["train_seconds"] > 0
        assert (run["analysis"] is not None) == (run["model"] in ("lgn-free", "lgn-cyclic", "lgn-learned"))
        assert (out / "runs" / run["run_dir"] / "config.json").is_file()
    lgn_run = next(r for r in saved["runs"] if r["model"] == "lgn-free")
    assert lgn_run["analysis"]["moved_from_init"] > 0  # training moved the generators
    energy = lgn_run["analysis"]["code_energy"]  # one share per orbit power (p = 2 in the tiny net)
    assert len(energy) == 2 and sum(energy) == pytest.approx(1.0) and min(energy) >= 0
    for model in ("lgn-free", "lgn-cyclic"):
        dep = saved["dependence"][model]
        for factor in ("data", "task"):  # 2 datasets × 2 tasks × 3 seeds: 400 arrangements, 100 splits
            assert dep[factor]["exact"] and dep[factor]["arrangements"] == 400 and 0 < dep[factor]["p"] <= 1
            assert dep[factor]["min_p"] == pytest.approx(0.01)
        assert f"{model}: data dependence: " in dep["verdict"] and "task dependence: " in dep["verdict"]
    assert (out / "runs" / lgn_run["run_dir"] / "analysis" / "groups.npz").is_file()
    assert (out / "runs" / lgn_run["run_dir"] / "analysis" / "analysis.json").is_file()
    for run in saved["runs"]:
        if run["analysis"] is not None:
            energy = run["analysis"]["code_energy"]  # per orbit power, p = 2 here
            assert len(energy) == 2 and sum(energy) == pytest.approx(1.0)
            assert len(run["analysis"]["layer0_similarity"]) == 2  # K = 2 groups, one channel
    learned = [r for r in saved["runs"] if r["model"] == "lgn-learned"]
    assert learned and all(s == pytest.approx(1.0) for r in learned for s in r["analysis"]["layer0_similarity"])


def test_measures_of_what_training_did_are_read_from_the_runs(tiny):
    out, results, _ = tiny
    m = results["measures"]
    for run in results["runs"]:
        if run["analysis"] is None:
            continue
        x = m["runs"][run["name"]]
        assert x["generators"] == 2 * 2  # L = 2 layers × K = 2 groups, one channel
        assert 0 <= x["orbit_residual"] <= 1 and -1 <= x["start_cosine"] <= 1 and len(x["norms"]) == 2
        assert x["norms"][0] == pytest.approx(1.0) and sum(x["norm_shares"]) == pytest.approx(1.0)
        # the data-free path is the free generators' control only, and it is kept in the run folder
        assert ("data_free_cosine" in x) == (run["model"] == "lgn-free")
        assert (out / "runs" / run["run_dir"] / "analysis" / "data-free.npz").is_file() == (run["model"] == "lgn-free")
    control = m["data_free_dependence"]  # the tests on the data-free paths alone: 2 datasets × 2 tasks × 3 seeds
    assert all(0 < control[f]["p"] <= 1 and control[f]["floor"] > 0 for f in ("data", "task"))
    null = next(iter(m["null"].values()))
    assert 0 < null["one_step"]["median"] <= null["orbit"]["median"] <= 1  # equal for p = 2: the orbit is one step
    assert {(c["dataset"], c["task"], c["model"]) for c in m["cells"]} == {
        (d, t, model) for d in ("rot90", "flip") for t in ("classify", "reconstruct")
        for model in ("lgn-free", "lgn-cyclic", "lgn-learned")}


def test_distances_have_spread_and_claim_has_a_verdict(tiny):
    _, results, _ = tiny
    for model in ("lgn-free", "lgn-cyclic", "lgn-learned"):
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
    assert md.index("## Headline findings") < md.index("## Targets")
    # the abstract's claims open the report, learning and naming first, each with a verdict
    assert md.index("## The paper's claims against these runs") < md.index("## Setting") < md.index("## Headline")
    claims = results["claims"]
    assert claims[0]["claim"].startswith("LGNs learn groups")
    assert "mapped to well-known operations" in claims[1]["claim"]
    assert all(c["verdict"] and f"**{c['verdict']}**" in md for c in claims)
    assert "after Holm's correction over every such test of this report (6 tests)" in md
    assert "## What training did to the generators" in md
    assert "*Paper: the learned group depends on the data and the task.* lgn-free: data dependence p = " in md
    assert "*Paper: LGNs improve parameter efficiency and generalisation.* rot90 classification, lgn-free " in md
    assert "**Dependence tests**" in md and "code energy per power" in md and "not paper-scale numbers" in md
    for section in ("## Targets", "### rot90 · classify", "### flip · reconstruct", "### lgn-free", "### lgn-cyclic",
                    "Claim check", "### Runs that collapsed in training", "## Discovery on planted symmetries",
                    "## Time budget of the paper-scale grid"):
        assert section in md
    assert "**N/A**" in md  # no mnist5k or Fashion-MNIST in this grid
    assert "an estimate" in md
    figures = [line.split("](")[1].rstrip(")") for line in md.splitlines() if line.startswith("![")]
    assert "results/distance-lgn-free.png" in figures and len(figures) == 3 + 4 * 3
    assert "| mean sim. | layer 0 ≥ 0.9 | Toeplitz |" in md
    assert all((out / f).is_file() for f in figures)
    assert lines[1].startswith("[1/48] rot90 classify lgn-free s0: test_acc ") and "params" in lines[1]
    threads = results["runs"][0]["threads"]
    assert {(r["cpu"], r["threads"]) for r in results["runs"]} == {(cpu_model(), threads)}
    assert (f"- Runs trained on: {cpu_model()}, {threads} thread{'s' if threads > 1 else ''}: "
            f"{len(results['runs'])} runs\n") in md
    assert all(r["trained_on"] == [{"cpu": cpu_model(), "threads": threads, "epochs": [1, 1]}]
               for r in results["runs"])


def test_runs_trained_on_several_machines_are_counted_apart():
    runs = [{"cpu": "Xeon", "threads": 2}, {"cpu": "EPYC", "threads": 1}, {"cpu": "Xeon", "threads": 2}, {},
            {"cpu": "EPYC", "threads": 2, "trained_on": [{"cpu": None, "threads": None, "epochs": [1, 67]},
                                                         {"cpu": "EPYC", "threads": 2, "epochs": [68, 100]}]},
            {"cpu": "EPYC", "threads": 2, "trained_on": [{"cpu": "Xeon", "threads": 2, "epochs": [1, 8]}]}]
    assert fmt_trained_on(runs) == ("Xeon, 2 threads: 3 runs; EPYC, 1 thread: 1 run; CPU not recorded: 1 run; "
                                    "CPU not recorded (epochs 1–67), then EPYC, 2 threads (68–100): 1 run")


def test_the_epochs_of_a_run_resumed_elsewhere_are_told_apart(tmp_path):
    assert trained_on(tmp_path, 3) == [{"cpu": None, "threads": None, "epochs": [1, 3]}]  # no file: not recorded
    notes = [{"from_epoch": 1, "cpu": "Xeon", "threads": 2}, {"from_epoch": 4, "cpu": "EPYC", "threads": 2},
             {"from_epoch": 6, "cpu": "EPYC", "threads": 2}]  # stopped again at 5, resumed on the same machine
    (tmp_path / MACHINES_FILE).write_text("".join(json.dumps(n) + "\n" for n in notes) + '3\n{"from_ep')  # torn
    assert trained_on(tmp_path, 7) == [{"cpu": "Xeon", "threads": 2, "epochs": [1, 3]},
                                       {"cpu": "EPYC", "threads": 2, "epochs": [4, 7]}]
    note = MachineNote(tmp_path)  # then restarted from scratch here: the torn line stays apart
    note({"epoch": 1})
    note({"epoch": 2})  # one line per invocation
    assert trained_on(tmp_path, 7) == [{"cpu": cpu_model(), "threads": torch.get_num_threads(), "epochs": [1, 7]}]
    assert len((tmp_path / MACHINES_FILE).read_text().splitlines()) == 6


def test_rerun_reads_everything_back(tiny):
    out, results, _ = tiny
    records = sorted((out / "runs").glob(f"*/{RECORD_FILE}"))
    before = {p: p.stat().st_mtime_ns for p in records}
    lines = []
    again = reproduce(out, plans=PLANS, recipe=RECIPE, seeds=3, discovery=TINY_DISCOVERY,
                      command="lgn reproduce --tiny", log=lines.append)
    assert {p: p.stat().st_mtime_ns for p in records} == before
    assert again["reused_runs"] == 48 and all("done earlier" in line for line in lines[1:49])
    assert [r["metric"] for r in again["runs"]] == [r["metric"] for r in results["runs"]]


def test_other_grid_settings_are_refused_unless_forced(tiny):
    out, _, _ = tiny
    with pytest.raises(ValueError, match="other grid settings \\(seeds, runs differ\\)"):
        reproduce(out, plans=PLANS, recipe=RECIPE, seeds=2, discovery=TINY_DISCOVERY, log=None)
    fewer = reproduce(out, plans=PLANS, recipe=RECIPE, seeds=2, discovery=TINY_DISCOVERY, log=None, force=True)
    assert fewer["reused_runs"] == len(fewer["runs"]) == 4 * (3 * 2 + 3)


def test_a_stopped_reproduction_resumes_without_retraining(tmp_path):
    plans = PLANS[:1]
    recipe = Recipe("tiny2", epochs={"classify": 2, "reconstruct": 1}, baseline_seeds=1, model=RECIPE.model,
                    train=RECIPE.train)
    kwargs = dict(plans=plans, recipe=recipe, seeds=1, discovery=None, models=("lgn-free", "unconstrained"), log=None)
    partial = reproduce(tmp_path, limit=1, **kwargs)
    assert partial["complete"] is False and len(partial["runs"]) == 1
    assert [(x["task"], x["model"], x["seeds"]) for x in partial["remaining"]] == [
        ("classify", "unconstrained", [0]), ("reconstruct", "lgn-free", [0]), ("reconstruct", "unconstrained", [0])]
    # the unfinished runs are projected from the one finished run, and say so
    assert all(x["seconds_per_run"] > 0 for x in partial["remaining"])
    assert [x["basis"] for x in partial["remaining"]] == ["borrowed from lgn-free classify on rot90",
                                                          "borrowed from lgn-free classify on rot90",
                                                          "borrowed from lgn-free classify on rot90"]
    md = (tmp_path / "RESULTS.md").read_text()
    assert "**PARTIAL RESULTS**: 1 of 4 runs" in md and "### rot90 · reconstruct" in md
    assert "| unconstrained | not yet run: 1 run(s), about " in md
    assert "rot90 classification: not yet testable here, no baseline (unconstrained, cnn) has finished." in md
    assert "depends on the data and the task.* Not yet testable here" in md
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
    report = reproduce(tmp_path, limit=0, **kwargs)  # a report only: the part-trained run is told apart
    row = next(x for x in report["remaining"] if x["model"] == "unconstrained" and x["task"] == "classify")
    assert row["part_trained"] == {0: 1} and row["seconds_left"] == pytest.approx(row["seconds_per_run"] / 2)
    assert all(x["part_trained"] == {} and x["seconds_left"] == x["seconds_per_run"]
               for x in report["remaining"] if x is not row)
    md = (tmp_path / "RESULTS.md").read_text()
    assert "about " in md and "each; seed 0 part-trained, epoch 1 of 2 |" in md
    assert "; 1 of them part-trained, the epochs they have reached said there. Remaining: about " in md

    results = reproduce(tmp_path, **kwargs)
    assert results["complete"] is True and results["remaining"] == []
    assert "PARTIAL" not in (tmp_path / "RESULTS.md").read_text()
    assert (first / RECORD_FILE).stat().st_mtime_ns == stamp
    assert results["reused_runs"] == 1 and len(results["runs"]) == 4
    metrics = [json.loads(line) for line in (tmp_path / "runs" / spec.name / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2] and metrics[0] == epoch1
    resumed = next(r for r in results["runs"] if r["run_dir"] == spec.name)  # epoch 1 trained outside the grid
    assert resumed["trained_on"] == [{"cpu": None, "threads": None, "epochs": [1, 1]},
                                     {"cpu": cpu_model(), "threads": resumed["threads"], "epochs": [2, 2]}]


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["reproduce", "--out", str(tmp_path), "--seeds", "0"]) == 2
    assert main(["reproduce", "--out", str(tmp_path), "--cifar-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--seeds must be at least 1" in err[0] and "is not a folder" in err[1]


def test_scales_select_their_epochs_sizes_and_models():
    from lgn.reproduce import PAPER, QUICK, SCALES, build_grid, data_plans
    from lgn.reproduce.grid import LGN_MODELS

    plans = data_plans()  # mnist5k, fashion-mnist, patches
    paper = build_grid(plans, SCALES["paper"], seeds=3)
    assert SCALES["paper"] is PAPER and SCALES["quick"] is QUICK
    assert {s.dataset for s in paper} == {"mnist5k", "fashion-mnist"}  # no patches at the paper's scale
    assert {s.model for s in paper} == {"lgn-free", "lgn-cyclic", "unconstrained", "cnn"} | (
        {"lgn-learned"} if "lgn-learned" in PAPER.grid_models() else set())
    assert all(s.settings["train"]["epochs"] == 100 for s in paper)
    sizes = {(s.dataset, s.task): (s.n_train, s.n_test) for s in paper}
    assert sizes[("mnist5k", "classify")] == sizes[("mnist5k", "reconstruct")] == (4000, 1000)
    assert sizes[("fashion-mnist", "classify")] == sizes[("fashion-mnist", "reconstruct")] == (60000, 10000)
    assert all("train_subset" not in s.settings["data"] and "test_subset" not in s.settings["data"] for s in paper)
    assert all(sum(1 for t in paper if (t.cell, t.model) == (s.cell, s.model)) == 3 for s in paper)  # 3 seeds each
    for cell in {s.cell for s in paper}:  # seed by seed: every model on seed 0 before any model on seed 1
        seeds = [s.seed for s in paper if s.cell == cell]
        assert seeds == sorted(seeds) and seeds[:len(PAPER.grid_models())] == [0] * len(PAPER.grid_models())
    baselines_once = build_grid(plans[:1], QUICK, seeds=3)  # the quick baselines run on seed 0 only
    assert [s.model for s in baselines_once if s.seed > 0] == [m for m in QUICK.grid_models()
                                                               if m in LGN_MODELS] * 2 * len(plans[0].tasks)
    quick = build_grid(plans, SCALES["quick"], seeds=3)
    assert all(s.settings["train"]["epochs"] == 8 for s in quick)
    fashion = next(s for s in quick if s.dataset == "fashion-mnist" and s.task == "classify")
    assert (fashion.n_train, fashion.n_test) == (4000, 2000) and fashion.settings["data"]["train_subset"] == 4000
    assert {s.dataset for s in quick} == {"mnist5k", "fashion-mnist", "patches"} and "rot90" in {s.model for s in quick}


@pytest.mark.parametrize("argv, scale", [([], "paper"), (["--quick"], "quick"), (["--scale", "quick"], "quick"),
                                         (["--scale", "paper"], "paper"), (["--quick", "--scale", "quick"], "quick")])
def test_cli_scale_and_its_quick_alias(argv, scale):
    from lgn.cli import build_parser
    from lgn.cli.reproduce import scale_of

    assert scale_of(build_parser().parse_args(["reproduce", "--out", "x", *argv])) == scale


def test_authors_preprocessing_reaches_every_run(tmp_path, capsys):
    import dataclasses

    from lgn.reproduce import AUTHORS_PREPROCESSING, QUICK, build_grid, data_plans

    recipe = dataclasses.replace(QUICK, data=AUTHORS_PREPROCESSING)
    specs = build_grid(data_plans(), recipe, seeds=1)
    assert all(s.settings["data"]["zca"] is True and s.settings["data"]["zca_epsilon"] == 1e-8 for s in specs)
    assert all("zca" not in s.settings["data"] for s in build_grid(data_plans(), QUICK, seeds=1))
    assert main(["reproduce", "--out", str(tmp_path), "--quick", "--scale", "paper"]) == 2
    assert "--quick is --scale quick" in capsys.readouterr().err


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

