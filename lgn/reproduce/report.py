"""``RESULTS.md`` and its figures, generated from the ``results.json`` dict (never edited by hand)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lgn.reproduce.results import (COLLAPSE, MATCH_TOLERANCE, SIGNIFICANCE, compare, fmt_hours, fmt_num,
                                  fmt_threads, fmt_trained_on, stats)

__all__ = ["write_figures", "write_markdown", "FIGURES_DIR"]

FIGURES_DIR = "results"


def _distance_figure(entry: dict, model: str, path: Path) -> Path:
    from lgn.analysis.figures import new_figure
    mean = np.array([[np.nan if v is None else v for v in row] for row in entry["mean"]], dtype=float)
    n = len(entry["cells"])
    fig = new_figure((2.2 + 1.1 * n, 1.6 + 0.9 * n))
    ax = fig.subplots()
    im = ax.imshow(mean, cmap="viridis", vmin=0.0, vmax=float(np.nanmax(mean)) if np.isfinite(mean).any() else 1.0)
    for i in range(n):
        for j in range(n):
            if np.isfinite(mean[i, j]):
                s = entry["std"][i][j]
                ax.text(j, i, f"{mean[i, j]:.3f}" + (f"\n±{s:.3f}" if s is not None else ""), ha="center",
                        va="center", fontsize=7, color="white" if mean[i, j] < 0.6 * np.nanmax(mean) else "black")
    ax.set_xticks(range(n))
    ax.set_xticklabels(entry["cells"], rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(n))
    ax.set_yticklabels(entry["cells"], fontsize=8)
    ax.set_title(f"{model}: distance between learned groups\n(mean ± std over pairs of different seeds)",
                 fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


# how a run's test score reads: its name in a table, its digits, its unit in a sentence
_SCORES = {"test_acc": ("accuracy", 4, ""), "test_psnr": ("PSNR (dB)", 2, " dB")}


def _collapse_figure(out: Path, records: list[dict], collapsed: list[dict], path: Path) -> Path:
    """One panel per collapsed run: its test score per epoch against the other seeds of its cell and model."""
    from lgn.analysis.figures import new_figure
    from lgn.runs import read_metrics

    fig = new_figure((4.2 * len(collapsed), 3.0))
    for ax, c in zip(np.atleast_1d(fig.subplots(1, len(collapsed))), collapsed):
        for r in sorted((r for r in records if (r["dataset"], r["task"], r["model"]) ==
                         (c["dataset"], c["task"], c["model"])), key=lambda r: r["seed"]):
            m = [x for x in read_metrics(out / "runs" / r["run_dir"], skip_damaged=True)
                 if x.get(c["metric_name"]) is not None]
            ax.plot([x["epoch"] for x in m], [x[c["metric_name"]] for x in m], label=f"seed {r['seed']}",
                    lw=1.6 if r["seed"] == c["seed"] else 0.9, color="C3" if r["seed"] == c["seed"] else "0.6")
        ax.axhline(c["best"], color="0.8", lw=0.6, ls="--")
        ax.set_title(f"{c['dataset']} {c['task']} {c['model']}\nseed {c['seed']}: best {c['best']:.4g} "
                     f"(epoch {c['best_epoch']}), final {c['final']:.4g}", fontsize=8)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("test " + _SCORES[c["metric_name"]][0], fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def write_figures(out: Path, records: list[dict], distances: dict, collapsed: list[dict] = ()) -> dict:
    """Generator heat maps of the lowest-seed run of every LGN cell, a distance heat map per LGN model, and
    the test score per epoch of the runs that collapsed in training (:func:`lgn.reproduce.results.collapses`).

    Returns ``{"generators": {"<dataset> <task> <model>": path}, "distances": {model: path},
    "collapses": path or None}``, paths relative to ``out``.
    """
    from lgn.analysis.figures import generator_heatmaps
    from lgn.analysis.summary import load_groups

    fig_dir = out / FIGURES_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    figures: dict = {"generators": {}, "distances": {}}
    shown = set()
    for r in sorted((r for r in records if r.get("analysis")), key=lambda r: r["seed"]):
        key = (r["dataset"], r["task"], r["model"])
        if key in shown:
            continue
        shown.add(key)
        groups = load_groups(out / "runs" / r["run_dir"] / r["analysis"]["groups"])
        name = f"{r['dataset']}-{r['task']}-{r['model']}-generators.png"
        generator_heatmaps(groups.A, fig_dir / name,
                           title=f"{r['dataset']} {r['task']} {r['model']} seed {r['seed']}: generators A")
        figures["generators"][" ".join(key)] = f"{FIGURES_DIR}/{name}"
    for model, entry in distances.items():
        name = f"distance-{model}.png"
        _distance_figure(entry, model, fig_dir / name)
        figures["distances"][model] = f"{FIGURES_DIR}/{name}"
    figures["collapses"] = None
    if collapsed:
        _collapse_figure(out, records, list(collapsed), fig_dir / "collapses.png")
        figures["collapses"] = f"{FIGURES_DIR}/collapses.png"
    return figures


def _pm(s: dict, digits: int) -> str:
    if s["mean"] is None:
        return "–"
    return f"{s['mean']:.{digits}f}" + (f" ± {s['std']:.{digits}f}" if s["std"] is not None else "")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + \
        ["| " + " | ".join(r) + " |" for r in rows]


def _recipe_text(recipe: dict, seeds: int) -> str:
    def per_task(d):
        return ", ".join(f"{task} {v:,}" for task, v in d.items()) if d else "all"

    models = recipe.get("models") or []
    lgn = [m for m in models if m.startswith("lgn-")]
    baselines = [m for m in models if not m.startswith("lgn-")]
    baseline = (f"{recipe['baseline_seeds']} seed(s) for the baselines ({', '.join(baselines)})"
                if recipe["baseline_seeds"] is not None else "the same seeds for the baselines")
    data = recipe.get("data") or {}
    prep = (f"per-channel standardisation, then ZCA with ε = {data.get('zca_epsilon', 0.01):g}" if data.get("zca")
            else "per-channel standardisation")
    return (f"**{recipe['name']}**: epochs {', '.join(f'{t} {e}' for t, e in recipe['epochs'].items())}; "
            f"training images: {per_task(recipe['train_subset'])}; test images: {per_task(recipe['test_subset'])}; "
            + (f"datasets {', '.join(recipe['datasets'])} where given; " if recipe.get("datasets") else "")
            + f"{seeds} seed(s) for the LGN models ({', '.join(lgn)}), {baseline}. Everything else is the "
            f"paper's recipe: L=4, K=5, p=4, k=6, Adam lr 0.01 halved at 1/2, 3/4, 7/8 of the epochs, "
            f"gradient clipping 2.0, batch 128, {prep}"
            + (f"; model settings {recipe['model']}" if recipe["model"] else "")
            + (f"; train settings {recipe['train']}" if recipe["train"] else "") + ".")


PSNR_TOLERANCE = 0.1  # dB: reconstruction scores this close tie whatever the seed spread


def _scale_words(recipe: dict) -> str:
    epochs = sorted(set(recipe["epochs"].values()))
    sizes = recipe.get("train_subset") or {}
    return (f"{'/'.join(map(str, epochs))} epochs on "
            + (f"at most {max(sizes.values()):,} training images" if sizes else "all the training images"))


def _collapse_words(c: dict) -> str:
    _, digits, unit = _SCORES[c["metric_name"]]
    return (f"{c['dataset']} {c['task']} {c['model']} seed {c['seed']}: final {c['final']:.{digits}f}{unit}, best "
            f"{c['best']:.{digits}f}{unit} at epoch {c['best_epoch']} of {c['epochs']}")


def _collapse_section(r: dict) -> list[str]:
    """The runs whose final score is far below their best epoch's, with the figure of their test curves."""
    rule = (f"a final test score below the run's best epoch by more than {COLLAPSE['test_acc']} in accuracy or "
            f"{COLLAPSE['test_psnr']} dB in PSNR")
    found = r.get("collapses") or []
    lines = ["### Runs that collapsed in training", ""]
    if not found:
        return lines + [f"None of the finished runs has {rule}.", ""]
    lines += [f"{len(found)} finished run(s) have {rule}. The tables above report every run's final epoch, as the "
              "paper does (nothing is chosen on the test set), so these runs' numbers, and their cells' means "
              "and spreads, carry a loss spike the run did not recover from rather than what the model reaches.",
              ""]
    rows = []
    for c in found:
        score, digits, _ = _SCORES[c["metric_name"]]
        rows.append([c["name"], score, fmt_num(c["final"], digits), f"{fmt_num(c['best'], digits)} ({c['best_epoch']})",
                     fmt_num(c["drop"], digits)])
    lines += _table(["run", "score", "final", "best (epoch)", "drop"], rows)
    figure = (r.get("figures") or {}).get("collapses")
    if figure:
        lines += ["", f"![test score per epoch of the collapsed runs and the other seeds of their cells]({figure})"]
    return lines + [""]


def _headlines(r: dict) -> list[str]:
    """Plain sentences first: each claim of the paper, what these runs measured, agree or disagree."""
    scale = _scale_words(r["recipe"])
    paper_scale = r["recipe"]["name"] == "paper"
    lines = ["## Headline findings", "",
             f"Measured at the **{r['recipe']['name']}** scale ({scale})"
             + ("" if paper_scale else "; the paper trains 100 epochs on all the data, so these are not "
                                       "paper-scale numbers")
             + ("; **partial**: only the finished runs count (see the banner above)"
                if not r.get("complete", True) else "") + ".", ""]
    for t in r["tables"]:
        if t["task"] != "classify":
            continue
        rows = {row["model"]: row for row in t["models"]}
        lgn = [m for m in rows if m.startswith("lgn-")]
        base = [m for m in ("unconstrained", "cnn") if m in rows]
        if not lgn or not base:
            lines.append(f"- *Paper: LGNs improve parameter efficiency and generalisation.* {t['dataset']} "
                         f"classification: not yet testable here, "
                         + ("no LGN model" if not lgn else "no baseline (unconstrained, cnn)") + " has finished.")
            continue
        for m in lgn:
            parts, outcomes = [], []
            for b in base:
                outcome, diff, margin = compare(rows[m]["metric"], rows[b]["metric"], MATCH_TOLERANCE)
                outcomes.append(outcome)
                parts.append(f"{b} {_pm(rows[b]['metric'], 4)} ({rows[b]['params']:,} trainable, "
                             f"{rows[b]['params_export']:,} exported parameters; n={rows[b]['metric']['n']}): "
                             f"{outcome} ({diff:+.4f}, margin {margin:.4f})")
            verdict = "agree" if all(o == "win" for o in outcomes) else \
                "disagree" if any(o == "lose" for o in outcomes) else "neither (ties)"
            lines.append(f"- *Paper: LGNs improve parameter efficiency and generalisation.* {t['dataset']} "
                         f"classification, {m} {_pm(rows[m]['metric'], 4)} (n={rows[m]['metric']['n']}; "
                         f"{rows[m]['params']:,} trainable, {rows[m]['params_export']:,} exported parameters) "
                         f"against " + "; ".join(parts) + f". **{verdict}**.")
    for model, dep in r.get("dependence", {}).items():
        sig = [dep[f].get("significant") for f in ("data", "task")]
        verdict = ("cannot be tested here" if None in sig else "agree" if all(sig) else
                   "partly: only " + ("data" if sig[0] else "task") + " dependence shown" if any(sig) else
                   "not shown by these runs (neither dependence is significant)")
        p = [f"p = {dep[f]['p']:.3g}" if dep[f].get("p") is not None else "untested" for f in ("data", "task")]
        lines.append(f"- *Paper: the learned group depends on the data and the task.* {model}: data dependence "
                     f"{p[0]}, task dependence {p[1]} (permutation tests against the seed-to-seed floor, details "
                     f"below). **{verdict}**.")
    if not r.get("dependence"):
        lines.append("- *Paper: the learned group depends on the data and the task.* Not yet testable here: the "
                     "tests need every LGN model on two seeds or more of two datasets and two tasks.")
    energy = _energy_by_cell(r)
    if energy:
        lines.append("- *Is the orbit used?* Share of the final code's energy per orbit power (B, A·B, A²·B, …; mean "
                     "over seeds, test images; equal shares mean every power carries the code, all on B means the "
                     "group is not used): "
                     + "; ".join(f"{key} " + "/".join(f"{f:.2f}" for f in fr) for key, fr in energy.items()) + ".")
    if r.get("collapses"):
        lines.append(f"- *Collapses in training*: {len(r['collapses'])} run(s) end far below their best epoch, and "
                     "their cells' means carry it (section \"Runs that collapsed in training\"): "
                     + "; ".join(_collapse_words(c) for c in r["collapses"]) + ".")
    for t in r["targets"]:
        if t["verdict"] != "N/A":
            lines.append(f"- Target: {t['target']}: {t['measured']}. **{t['verdict']}**.")
    return lines + [""]


def _energy_by_cell(r: dict) -> dict:
    """'<dataset> <task> <model>' → the mean code energy per orbit power over its seeds."""
    out: dict = {}
    for x in r["runs"]:
        e = (x.get("analysis") or {}).get("code_energy")
        if e:
            out.setdefault(f"{x['dataset']} {x['task']} {x['model']}", []).append(e)
    return {k: list(np.mean(v, axis=0)) for k, v in out.items()}


def _projected(row: dict) -> str:
    each = "time not yet projected" if row["seconds_per_run"] is None else \
        f"about {fmt_hours(row['seconds_per_run'] / 3600)} each"
    part = "".join(f"; seed {seed} part-trained, epoch {n} of {row['epochs']}"
                   for seed, n in row.get("part_trained", {}).items())
    return f"not yet run: {len(row['seeds'])} run(s), {each}{part}"


def _partial_text(r: dict) -> str:
    rows = r["remaining"]
    runs = sum(len(x["seeds"]) for x in rows)
    known = [x.get("seconds_left", x["seconds_per_run"] * len(x["seeds"])) for x in rows
             if x["seconds_per_run"] is not None]
    unknown = sum(len(x["seeds"]) for x in rows if x["seconds_per_run"] is None)
    part = sum(len(x.get("part_trained", {})) for x in rows)
    return (f"**PARTIAL RESULTS**: {len(r['runs'])} of {len(r['runs']) + runs} runs of this grid have finished; the "
            f"{runs} not yet run are marked *not yet run* in the tables below with the time each is projected to "
            f"need (seconds per image-epoch measured in the finished runs, on the machines under \"Runs trained on\": "
            f"an estimate)"
            + (f"; {part} of them part-trained, the epochs they have reached said there" if part else "")
            + f". Remaining: about {fmt_hours(sum(known) / 3600)}"
            + (f" plus {unknown} run(s) not yet projected" if unknown else "")
            + f". Repeat `{r['command']}` to continue. Means and claims below use only the finished runs.")


def _cell_sections(r: dict) -> list[str]:
    """One table per (dataset, task) cell of the grid: finished models with their numbers, the rest marked."""
    lines = []
    tables = {(t["dataset"], t["task"]): t for t in r["tables"]}
    missing: dict = {}
    for x in r.get("remaining", []):
        missing.setdefault((x["dataset"], x["task"]), []).append(x)
    cells = [tuple(c) for c in r.get("cells", [])] or list(tables)
    for cell in cells:
        dataset, task = cell
        t = tables.get(cell)
        score, digits, _ = _SCORES["test_acc" if task == "classify" else "test_psnr"]
        metric = f"test {score}"
        lines += [f"### {dataset} · {task}", ""]
        rows = [[row["model"], _pm(row["metric"], digits), str(row["metric"]["n"]), f"{row['params']:,}",
                 f"{row['params_export']:,}", f"{row['train_seconds']:.0f}", f"{row['epochs']} × {row['n_train']:,}"]
                for row in (t["models"] if t else [])]
        rows += [[x["model"], _projected(x), f"seeds {', '.join(map(str, x['seeds']))}", "–", "–", "–",
                  f"{x['epochs']} × {x['n_train']:,}"] for x in missing.get(cell, [])]
        lines += _table(["model", metric, "seeds", "params", "exported", "train s", "epochs × images"], rows)
        lines.append("")
    return lines


def write_markdown(results: dict, path: Path) -> Path:
    """Write ``RESULTS.md`` from the ``results.json`` dict."""
    r = results
    m = r["machine"]
    reused = r["reused_runs"]
    lines = [
        "# Reproducing \"Learning Linear Groups in Neural Networks\": results",
        "",
        "Generated by `lgn reproduce`; do not edit by hand (re-run the command instead).",
        "",
        f"- Command: `{r['command']}`",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}, Python {m['python']}, torch {m['torch']} "
        f"({fmt_threads(m)}), device {m['device']}" + (f" ({m['gpu']})" if m.get("gpu") else ""),
        f"- Runs trained on: {fmt_trained_on(r['runs'])}",
        f"- Started {r['started']}; wall time {r['wall_seconds'] / 60:.1f} min for this invocation"
        + (f" ({reused} of {len(r['runs'])} runs were finished by an earlier invocation and read back; "
           f"they had taken {r['reused_wall_seconds'] / 60:.1f} min)" if reused else "")
        + f"; training alone (sum over runs) {sum(x['train_seconds'] for x in r['runs']) / 60:.1f} min",
        f"- Code: commit `{r['git_commit'] or 'unknown'}`"
        + (" with uncommitted changes" if r.get("git_dirty") else ""),
        f"- Recipe: {_recipe_text(r['recipe'], r['seeds'])}",
        "",
    ]
    if not r.get("complete", True):
        lines += [_partial_text(r), ""]
    lines += _headlines(r)
    lines += [
        "Model names: `lgn-free` is the paper's LGN (free generators, auxiliary-inverse regulariser); `lgn-cyclic` "
        "has exact cyclic groups (A^p = I); `lgn-learned` has each group pick, during its first 200 optimiser steps, "
        "one of the library's exact pixel permutations of order p (docs/discovery.md); `unconstrained` "
        "is the same unfolded network with K·p independent filters; `rot90` uses a fixed 90° rotation as every "
        "generator; `cnn` is a plain CNN with K·p channels "
        "per layer (lgn.models.cnn). *params* counts trainable parameters (the free LGN's auxiliary inverses "
        "included); *exported* counts those of the plain network after `export()` (what inference needs).",
        "",
        "## Targets",
        "",
    ]
    lines += _table(["target", "measured", "verdict"],
                    [[t["target"], t["measured"], f"**{t['verdict']}**"] for t in r["targets"]])
    lines += ["", "## Accuracy and reconstruction quality", "",
              "Mean ± standard deviation over seeds (n − 1); *train s* is the mean training time of one run "
              "(all epochs, evaluation excluded).", ""]
    lines += _cell_sections(r)
    lines += _collapse_section(r)
    lines += ["## Do the learned groups depend on the data and on the task?", "",
              "Distance between two runs (`lgn.analysis.distance`): every generator is described by scale-free "
              "features, its 7 structure indices, its singular-value spectrum normalised to unit length, its sorted "
              "eigenvalue angles (a conjugacy invariant: it tells orthogonal generators apart, whose singular values "
              "are all 1) and its commutation residuals with the library's exact operators (quarter turn, flips, "
              "transposes, shifts: which pixel geometry it respects); per "
              "layer the two runs' generators are paired by optimal assignment (Hungarian) on the root-mean-square "
              "feature difference, and the distance is the mean matched cost over layers. It is 0 for a run and "
              "itself, symmetric, and does not change when the groups are reordered or a generator is scaled. "
              "Only runs of different seeds are compared, between two cells and on the diagonal alike (the "
              "diagonal is the seed-to-seed noise floor): runs of one seed start from the same generators in every "
              "cell. Entries: mean ± std over those seed pairs.", ""]
    for model, entry in r["distances"].items():
        cells = entry["cells"]
        lines += [f"### {model}", ""]
        if entry.get("pairing") == "same seed":
            lines += ["With one seed, cells are compared run to run (same seed, shared initialisation); no noise "
                      "floor.", ""]
        rows = []
        for i, c in enumerate(cells):
            rows.append([f"**{c}**"] + [
                "–" if entry["mean"][i][j] is None else
                f"{entry['mean'][i][j]:.3f}" + (f" ± {entry['std'][i][j]:.3f}" if entry["std"][i][j] is not None
                                                else "") for j in range(len(cells))])
        lines += _table([""] + cells, rows)
        fig = r["figures"]["distances"].get(model)
        if fig:
            lines += ["", f"![{model} distance matrix]({fig})"]
        dep = r.get("dependence", {}).get(model)
        if dep:
            lines += ["", f"**Dependence tests** (permutation tests against the seed-to-seed floor, level "
                          f"{SIGNIFICANCE}): {dep['verdict']}"]
        c = r["claim"].get(model)
        if c:
            lines += ["", f"**Claim check** (same-task-different-data closer than same-data-different-task; borne "
                          f"out only if every head-to-head comparison favours it and the gap exceeds the seed-to-seed "
                          f"noise floor): {c['verdict']}", ""]
            if c["head_to_head"]["comparisons"]:
                lines += _table(["cell", "same task, other data", "distance", "same data, other task", "distance",
                                 "favours the claim"],
                                [[x["cell"], x["other_data"], fmt_num(x["same_task_distance"]), x["other_task"],
                                  fmt_num(x["same_data_distance"]),
                                  "yes" if x["favours_claim"] else "tie" if x["tie"] else "no"]
                                 for x in c["head_to_head"]["comparisons"]])
                lines.append("")
    if not r["distances"]:
        lines += ["No LGN model ran on two or more cells: no distances.", ""]
    if r["seeds"] < 3:
        lines += [f"Only {r['seeds']} seed(s): the spread needs at least 3 (`--seeds 3`).", ""]
    lines += ["## Learned generators", "",
              "One run per LGN cell (the lowest seed): all generators A on one symmetric colour scale per figure. "
              "Every LGN run's full analysis (structure indices, nearest known operation, group errors) is in "
              "`runs/<run>/analysis/analysis.json`, its arrays in `groups.npz`.", ""]
    summary_rows = []
    for x in r["runs"]:
        if x.get("analysis"):
            s = x["analysis"]["summary"]
            fams = ", ".join(f"{f} {n}" for f, n in s["families"].items())
            sims, energy = x["analysis"].get("layer0_similarity"), x["analysis"].get("code_energy")
            summary_rows.append([x["name"], fams, f"{s['mean_similarity']:.2f}",
                                 "–" if not sims else f"{sum(v >= 0.9 for v in sims)}/{len(sims)}",
                                 fmt_num(s["indices"]["toeplitz"], 2), fmt_num(s["indices"]["skew"], 2),
                                 fmt_num(s["indices"]["block"], 2), fmt_num(s["group_error"]["finite_order"], 3),
                                 fmt_num(x["analysis"].get("moved_from_init"), 3),
                                 "/".join(f"{f:.2f}" for f in energy) if energy else "–"])
    if summary_rows:
        lines += ["*moved* is the run distance between the learned generators and those the run started from: "
                  "distances between runs are only meaningful where training moved the generators well beyond the "
                  "seed-to-seed noise floor. *layer 0 ≥ 0.9* counts layer 0's generators whose nearest known "
                  "operation has cosine similarity ≥ 0.9. *code energy per power* is the share of the final code's "
                  "energy (test images) carried by B, A·B, A²·B, … (`lgn analyze`, lgn.analysis.code_energy).", ""]
        lines += _table(["run", "nearest families", "mean sim.", "layer 0 ≥ 0.9", "Toeplitz", "skew", "block",
                         "order err.", "moved", "code energy per power"],
                        summary_rows)
        lines.append("")
    for key, fig in r["figures"]["generators"].items():
        lines += [f"**{key}**", "", f"![{key}]({fig})", ""]
    lines += ["## Discovery on planted symmetries", ""]
    d = r.get("discovery")
    if not r.get("complete", True):
        lines += ["Runs once every run of the grid has finished.", ""]
    elif d:
        s = d["settings"]
        lines += [f"`lgn bench-discovery`'s comparison run here ({', '.join(s['datasets'])}; seeds "
                  f"{', '.join(map(str, s['seeds']))}; {s['epochs']} epochs on {s['n_train']:,} images, "
                  f"σ = {s['sigma']}; {d['seconds']:.0f} s). *discover* estimates the group from the data and trains "
                  f"an LGN on it; *paper* is the paper's recipe. Alignment 1 means the learned orbit follows the "
                  f"planted group step by step; a random generator scores about 0.03–0.06 "
                  f"(docs/discovery.md has the definitions and the full 3-seed benchmark).", ""]
        lines += _table(["dataset", "method", "alignment", "test accuracy", "seeds"],
                        [[x["dataset"], x["method"], f"{x['alignment_mean']:.3f} ± {x['alignment_std']:.3f}",
                          f"{x['accuracy_mean']:.4f} ± {x['accuracy_std']:.4f}", str(x["seeds"])]
                         for x in d["summary"]])
        lines.append("")
    else:
        lines += ["Not run here: see docs/discovery.md for the benchmark numbers (`lgn bench-discovery`).", ""]
    b = r["time_budget"]
    lines += ["## Time budget of the paper-scale grid (an estimate)", ""]
    if b["rows"]:
        lines += [f"The paper-scale grid is `{r['full_command']}`: "
                  f"{_recipe_text(b['recipe'], b['seeds'])} Estimated from the seconds per training and test image "
                  f"per epoch measured in these runs ({m['device']}; machines under \"Runs trained on\"), "
                  f"times the paper-scale grid's images and epochs: **about {fmt_hours(b['total_hours'])}** "
                  f"for the grid above"
                  + (f", plus about {fmt_hours(b['cifar10_extra_hours'])} with CIFAR-10 (`--cifar-dir`; "
                     f"extrapolated by values per image)" if b.get("cifar10_extra_hours") else "")
                  + ". This is an estimate, not a measurement.", ""]
        lines += _table(["dataset", "task", "model", "runs", "epochs × images", "s per epoch", "hours", "basis"],
                        [[x["dataset"], x["task"], x["model"], str(x["runs"]), f"{x['epochs']} × {x['n_train']:,}",
                          f"{x['seconds_per_epoch']:.1f}", f"{x['hours']:.2f}", x["how"]
                          + ("" if x["in_grid"] else " (not in this grid)")] for x in b["rows"]])
    else:
        lines.append("No runs measured: no estimate.")
    lines += ["", f"*Fashion-MNIST target rule*: LGN passes if its mean test accuracy is above the unconstrained "
                  f"baseline's, or within {MATCH_TOLERANCE} of it with fewer trainable parameters.", ""]
    path.write_text("\n".join(lines))
    return path
