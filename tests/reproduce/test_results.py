"""The numbers behind RESULTS.md from hand-made records: targets, collapses, the claim check, the time budget."""

import json

import numpy as np
import pytest

from lgn.reproduce import PAPER, data_plans
from lgn.reproduce.report import collapse_section, write_figures
from lgn.reproduce.results import cell_tables, claim, collapses, holm, targets, time_budget


def _record(dataset, task, model, seed, metric, params=1000, train_seconds=10.0):
    return {"dataset": dataset, "task": task, "model": model, "seed": seed, "metric": metric, "params": params,
            "params_export": 100, "train_seconds": train_seconds, "eval_seconds": 1.0, "epochs": 2,
            "n_train": 1000, "n_test": 500}


def test_targets_pass_and_miss():
    records = [_record("mnist5k", "classify", "lgn-free", s, acc) for s, acc in enumerate((0.975, 0.972, 0.971))]
    records += [_record("fashion-mnist", "classify", "lgn-free", s, 0.85, params=5000) for s in range(3)]
    records += [_record("fashion-mnist", "classify", "unconstrained", 0, 0.86, params=600)]
    out = targets(cell_tables(records))
    assert [t["verdict"] for t in out] == ["PASS", "MISS"]
    assert "0.9727" in out[0]["measured"] and "-0.0100" in out[1]["measured"]
    records[-1] = _record("fashion-mnist", "classify", "unconstrained", 0, 0.84, params=600)
    assert targets(cell_tables(records))[1]["verdict"] == "PASS"
    records[0]["metric"] = records[1]["metric"] = 0.95
    assert targets(cell_tables(records))[0]["verdict"] == "MISS"


def _run_with_history(runs, name, task, metric_name, history, seed=0):
    (runs / name).mkdir(parents=True)
    (runs / name / "metrics.jsonl").write_text(
        "".join(json.dumps({"epoch": e, metric_name: v}) + "\n" for e, v in enumerate(history, 1)))
    return {**_record("d", task, name, seed, history[-1]), "name": name, "run_dir": name,
            "metric_name": metric_name, "epochs": len(history)}


def test_collapses_are_the_runs_far_below_their_best_epoch(tmp_path):
    runs = tmp_path / "runs"
    records = [_run_with_history(runs, "spike", "reconstruct", "test_psnr", [25.0, 33.0, 30.0, 26.0]),
               _run_with_history(runs, "within", "reconstruct", "test_psnr", [25.0, 26.4, 26.0]),  # 0.4 dB: kept
               _run_with_history(runs, "rising", "reconstruct", "test_psnr", [20.0, 24.0, 29.0]),
               _run_with_history(runs, "acc", "classify", "test_acc", [0.90, 0.95, 0.93]),
               _run_with_history(runs, "acc-flat", "classify", "test_acc", [0.90, 0.95, 0.945])]
    found = collapses(records, runs)
    assert [c["name"] for c in found] == ["acc", "spike"]
    spike = found[1]
    assert (spike["best"], spike["best_epoch"], spike["final"]) == (33.0, 2, 26.0)
    assert spike["drop"] == pytest.approx(7.0)
    figures = write_figures(tmp_path, records, {}, found)
    assert (tmp_path / figures["collapses"]).stat().st_size > 0
    section = collapse_section({"collapses": found, "figures": figures})
    assert "2 finished run(s)" in section and "| spike | PSNR (dB) | 26.00 | 33.00 (2) | 7.00 |" in section
    assert figures["collapses"] in section
    assert "None of the finished runs" in collapse_section({"collapses": []})
    assert write_figures(tmp_path, records, {}, [])["collapses"] is None


def _distances(same_task, same_data, floor):
    cells = [["a", "classify"], ["a", "reconstruct"], ["b", "classify"], ["b", "reconstruct"], ["p", "reconstruct"]]
    n = len(cells)
    mean = [[None] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            if i == j:
                mean[i][j] = floor
            elif cells[i][1] == cells[j][1]:
                mean[i][j] = same_task
            elif cells[i][0] == cells[j][0]:
                mean[i][j] = same_data
            else:
                mean[i][j] = 0.9
    return {"m": {"cells": [" ".join(c) for c in cells], "cell_keys": cells, "mean": mean,
                  "std": [[0.01] * n for _ in range(n)], "n_pairs": [[3] * n for _ in range(n)]}}


def _shown(data: bool, task: bool) -> dict:
    return {"m": {"data": {"significant": data}, "task": {"significant": task}}}


@pytest.mark.parametrize("same_task,same_data,floor,shown,holds,words", [
    (0.2, 0.5, 0.1, (False, True), True, "borne out"), (0.5, 0.2, 0.1, (True, False), False, "contradicted"),
    (0.2, 0.5, 0.1, (True, False), None, "not resolved"),  # every comparison agrees, but the task test does not
    (0.5, 0.2, 0.1, (False, True), None, "not resolved"),
    (0.2, 0.2, 0.0, (True, True), None, "not resolved")])  # equal distances: every comparison a tie
def test_claim_verdict_follows_the_numbers(same_task, same_data, floor, shown, holds, words):
    c = claim(_distances(same_task, same_data, floor), _shown(*shown))["m"]
    assert c["holds"] is holds
    assert c["same_task_different_data"]["n"] == 2  # a-b classify, a-b reconstruct; patches only in "_all"
    assert c["same_task_different_data_all"]["n"] == 4
    assert c["same_data_different_task"]["n"] == 2
    assert c["head_to_head"]["favouring"] == (4 if same_task < same_data else 0)
    assert c["head_to_head"]["ties"] == (4 if same_task == same_data else 0)
    assert ("(4 ties)" in c["verdict"]) is (same_task == same_data)
    assert f"The claim is {words}" in c["verdict"]


@pytest.mark.parametrize("same_task,same_data", [(9.8e-18, 8.4e-18), (1.15e-17, 1.31e-17), (0.3, 0.3 + 1e-15)])
def test_claim_ties_distances_that_differ_only_by_rounding(same_task, same_data):
    # the committed grid's lgn-learned runs: every group the same permutation, so every distance is rounding noise
    # whose sign differs between CPUs; such distances must tie, not favour one side
    c = claim(_distances(same_task, same_data, 1.1e-17), _shown(True, True))["m"]
    assert c["head_to_head"]["ties"] == 4 and c["head_to_head"]["favouring"] == 0
    assert c["holds"] is None and "(4 ties)" in c["verdict"]


def test_holm_adjusts_step_down_against_a_hand_worked_case():
    # sorted 0.01, 0.02, 0.04, 0.30: ×4, ×3, ×2, ×1 = 0.04, 0.06, 0.08, 0.30; each at least the one before
    assert holm({"a": 0.04, "b": 0.01, "c": 0.30, "d": 0.02}) == pytest.approx(
        {"b": 0.04, "d": 0.06, "a": 0.08, "c": 0.30})
    assert holm({"a": 0.01, "b": 0.01, "c": 0.9}) == pytest.approx({"a": 0.03, "b": 0.03, "c": 0.9})
    assert holm({"a": 0.6, "b": 0.5}) == {"b": 1.0, "a": 1.0}  # capped at 1


def test_time_budget_scales_measured_rates_and_extrapolates_cifar():
    plans = data_plans()  # mnist5k, fashion-mnist, patches
    records = [_record(p.dataset, t, m, 0, 0.5) for p in plans for t in p.tasks
               for m in ("lgn-free", "lgn-cyclic", "lgn-learned", "unconstrained", "rot90", "cnn")]
    b = time_budget(records, plans, seeds=3, recipe=PAPER)
    row = next(r for r in b["rows"] if (r["dataset"], r["task"], r["model"]) == ("fashion-mnist", "classify", "cnn"))
    # 10 s for 2 epochs of 1,000 images and 1 s of evaluation per 2 epochs of 500: 100 epochs of 60,000 + 10,000
    assert row["hours"] == pytest.approx(3 * (0.005 * 60000 + 0.001 * 10000) * 100 / 3600)
    assert row["how"] == "measured" and row["runs"] == 3
    cifar = [r for r in b["rows"] if r["dataset"] == "cifar10"]
    assert len(cifar) == 2 * len(PAPER.grid_models()) and all("extrapolated" in r["how"] and not r["in_grid"] for r in cifar)
    assert b["total_hours"] == pytest.approx(sum(r["hours"] for r in b["rows"] if r["in_grid"]))
    assert b["cifar10_extra_hours"] > 0


def test_fixed_choice_finds_candidates_that_give_one_orbit():
    from lgn.groups.operators import named_operator
    from lgn.reproduce.results import fixed_choice

    # at k = 6, p = 4 the exact order-4 permutations are the quarter turns, and rot270 = rot90³ (np.rot90 thrice)
    assert fixed_choice(6, 4) == ["rot90", "rot270"]
    r = named_operator("rot90", 6)
    img = np.arange(36.0).reshape(6, 6)
    assert np.array_equal((r @ r @ r @ img.ravel()).reshape(6, 6), np.rot90(img, -1)) or \
        np.array_equal((r @ r @ r @ img.ravel()).reshape(6, 6), np.rot90(img, 1))
    assert fixed_choice(8, 4) is None  # cyclic shifts by 2 have order 4 on 8×8 kernels: a real choice
