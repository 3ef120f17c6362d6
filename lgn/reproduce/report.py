"""``RESULTS.md`` and its figures, generated from the ``results.json`` dict (never edited by hand)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lgn.reproduce.results import (COLLAPSE, MATCH_TOLERANCE, NAMED, SIGNIFICANCE, compare, fmt_hours, fmt_num,
                                  fmt_threads, fmt_trained_on)

__all__ = ["write_figures", "write_markdown", "collapse_section", "render", "table", "FIGURES_DIR"]

FIGURES_DIR = "results"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table: the header, its rule and one line per row (no final newline)."""
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] +
                     ["| " + " | ".join(r) + " |" for r in rows])


def render(template: str, **context) -> str:
    """The Markdown of ``templates/<template>`` (shipped with the package) filled with ``context``.

    Markdown is not HTML: nothing is escaped. Blocks take their own line (``trim_blocks``,
    ``lstrip_blocks``); the helpers ``table``, ``thousands``, ``threads`` and ``trained_on`` are there.
    """
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("lgn.reproduce", "templates"), autoescape=False,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(thousands=lambda n: f"{n:,}", threads=fmt_threads, trained_on=fmt_trained_on, hours=fmt_hours)
    env.globals["table"] = table
    return env.get_template(template).render(**context)


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


def _scale_words(recipe: dict) -> str:
    epochs = sorted(set(recipe["epochs"].values()))
    sizes = recipe.get("train_subset") or {}
    return (f"{'/'.join(map(str, epochs))} epochs on "
            + (f"at most {max(sizes.values()):,} training images" if sizes else "all the training images"))


def _collapse_words(c: dict) -> str:
    _, digits, unit = _SCORES[c["metric_name"]]
    return (f"{c['dataset']} {c['task']} {c['model']} seed {c['seed']}: final {c['final']:.{digits}f}{unit}, best "
            f"{c['best']:.{digits}f}{unit} at epoch {c['best_epoch']} of {c['epochs']}")


def collapse_section(r: dict) -> str:
    """The section on the runs whose final score is far below their best epoch's, with their figure."""
    rows = []
    for c in r.get("collapses") or []:
        score, digits, _ = _SCORES[c["metric_name"]]
        rows.append([c["name"], score, fmt_num(c["final"], digits), f"{fmt_num(c['best'], digits)} ({c['best_epoch']})",
                     fmt_num(c["drop"], digits)])
    rule = (f"a final test score below the run's best epoch by more than {COLLAPSE['test_acc']} in accuracy or "
            f"{COLLAPSE['test_psnr']} dB in PSNR")
    return render("collapses.md.j2", r=r, collapsed=rows, collapse_rule=rule)


def _headlines(r: dict) -> list[str]:
    """Plain sentences first: each claim of the paper, what these runs measured, agree or disagree."""
    scale = _scale_words(r["recipe"])
    paper_scale = r["recipe"]["name"] == "paper"
    lines = [f"Measured at the **{r['recipe']['name']}** scale ({scale})"
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
                         f"classification, {_label(r, m)} {_pm(rows[m]['metric'], 4)} (n={rows[m]['metric']['n']}; "
                         f"{rows[m]['params']:,} trainable, {rows[m]['params_export']:,} exported parameters) "
                         f"against " + "; ".join(parts) + f". **{verdict}**.")
    for model, dep in r.get("dependence", {}).items():
        sig = [dep[f].get("significant") for f in ("data", "task")]
        verdict = ("cannot be tested here" if None in sig else "agree" if all(sig) else
                   "partly: only " + ("data" if sig[0] else "task") + " dependence shown" if any(sig) else
                   "not shown by these runs (neither dependence is significant)")
        p = [f"p = {dep[f]['p']:.3g}, Holm-adjusted {dep[f]['p_holm']:.3g}" if dep[f].get("p") is not None
             else "untested" for f in ("data", "task")]
        lines.append(f"- *Paper: the learned group depends on the data and the task.* {model}: data dependence "
                     f"{p[0]}; task dependence {p[1]} (permutation tests against the seed-to-seed floor, details "
                     f"below). **{verdict}**.")
    if not r.get("dependence"):
        lines.append("- *Paper: the learned group depends on the data and the task.* Not yet testable here: the "
                     "tests need every LGN model on two seeds or more of two datasets and two tasks.")
    lines += _measure_lines(r)
    energy = _energy_by_cell(r)
    if energy:
        by_norm = {f"{c['dataset']} {c['task']} {c['model']}": c["norm_shares"]
                   for c in (r.get("measures") or {}).get("cells", [])}
        def tv(a, b) -> float:  # total variation between two share vectors
            return 0.5 * sum(abs(x - y) for x, y in zip(a, b))

        # only where the norms decay: with equal norms (orthogonal generators) agreeing says nothing
        follow = [_label(r, key) for key, fr in energy.items() if key in by_norm
                  and tv(fr, by_norm[key]) < NORM_FOLLOWS <= tv(by_norm[key], [1 / len(fr)] * len(fr))]
        lines.append("- *Is the orbit used?* Share of the final code's energy per orbit power (B, A·B, A²·B, …; mean "
                     "over seeds, test images; equal shares mean every power carries the code, all on B means the "
                     "group is not used), with, in brackets, the shares the final layer's filter norms alone would "
                     "give (‖A^i·B‖² normalised over the powers: base filters have unit norm, their powers are not "
                     "renormalised): "
                     + "; ".join(f"{_label(r, key)} " + "/".join(f"{f:.2f}" for f in fr)
                                 + (" (" + "/".join(f"{n:.2f}" for n in by_norm[key]) + ")" if key in by_norm else "")
                                 for key, fr in energy.items()) + "."
                     + (f" Where the norms decay and the two agree within {NORM_FOLLOWS} in total variation "
                        f"({', '.join(follow)}), the shares measure the filters' norms, not how the code uses the "
                        f"group." if follow else ""))
    sizes = r.get("code_sizes") or {}
    if "cnn" in sizes:
        c = sizes["cnn"]
        lines.append(f"- *The cnn autoencoder has no bottleneck*: its code holds {'×'.join(map(str, c['shape']))} = "
                     f"{c['values']:,} values for {c['pixels']:,} pixels, so its PSNR says little about what a "
                     f"compressed code keeps (the other models' codes hold "
                     + ", ".join(sorted({f"{'×'.join(map(str, v['shape']))} = {v['values']:,}"
                                         for m, v in sizes.items() if m != "cnn"}))
                     + " values, the LGNs' kept sparse by their thresholds).")
    if r.get("collapses"):
        lines.append(f"- *Collapses in training*: {len(r['collapses'])} run(s) end far below their best epoch, and "
                     "their cells' means carry it (section \"Runs that collapsed in training\"): "
                     + "; ".join(_collapse_words(c) for c in r["collapses"]) + ".")
    for t in r["targets"]:
        if t["verdict"] != "N/A":
            lines.append(f"- Target: {t['target']}: {t['measured']}. **{t['verdict']}**.")
    return lines


NORM_FOLLOWS = 0.1  # total variation under which the code energy per power just follows the filters' norms


def _label(r: dict, text: str) -> str:
    """``text`` with a fixed LGN model's name shown as the fixed group it is: ``rot90 (lgn-learned)``."""
    for model, candidates in (r.get("fixed") or {}).items():
        text = text.replace(model, f"{candidates[0]} ({model})")
    return text


def _cells_text(r: dict, model: str, key: str, digits: int = 3) -> str:
    """``mnist5k classify 0.207, …``: one measure's mean over seeds per cell of ``model``."""
    return ", ".join(f"{c['dataset']} {c['task']} {c[key]['mean']:.{digits}f}" for c in r["measures"]["cells"]
                     if c["model"] == model and key in c)


def _measure_lines(r: dict) -> list[str]:
    """The headline bullets of the measures of what training did (:func:`lgn.reproduce.results.run_measures`)."""
    m = r.get("measures")
    if not m or not m["cells"]:
        return []
    lines = []
    models = list(dict.fromkeys(c["model"] for c in m["cells"]))
    if any("data_free_cosine" in c for c in m["cells"]):
        lines.append("- *Data-free path* (lgn-free): Adam on the regulariser μ·Σ‖A·Ã − I‖ alone, from each run's own "
                     "initial weights, with its schedule, clipping, step count and projection but no data. Median "
                     "cosine of the trained generators with where that path ends: "
                     + _cells_text(r, "lgn-free", "data_free_cosine") + "; run distance from it: "
                     + _cells_text(r, "lgn-free", "data_free_distance") + ". Reconstruction leaves A on the data-free "
                     "path; classification moves it: the task dependence found is largely this.")
    for model in models:
        if model in (r.get("fixed") or {}):
            continue
        cells = [c for c in m["cells"] if c["model"] == model]
        moved = [x["analysis"]["moved_from_init"] for x in r["runs"] if x["model"] == model and x.get("analysis")
                 and x["analysis"].get("moved_from_init") is not None]
        floor = [d for d in [(r["distances"].get(model) or {}).get("mean")] if d]
        diag = [floor[0][i][i] for i in range(len(floor[0]))] if floor else []
        if model == "lgn-cyclic" and moved and diag:
            lines.append(f"- *{model}: the distance test is uninformative.* Its generators moved far from where they "
                         f"started (median cosine with the start {min(c['start_cosine']['mean'] for c in cells):.2f}–"
                         f"{max(c['start_cosine']['mean'] for c in cells):.2f}, ‖A − A₀‖/‖A₀‖ "
                         f"{min(c['start_change']['mean'] for c in cells):.2f}–"
                         f"{max(c['start_change']['mean'] for c in cells):.2f} per cell), yet the run distance from "
                         f"the start is {min(moved):.3f}–{max(moved):.3f}, as small as two different seeds' "
                         f"({min(diag):.3f}–{max(diag):.3f}): an exact cyclic generator is orthogonal, so its spectrum "
                         f"is flat and its eigenvalue angles are fixed by p, and the features left cannot tell one "
                         f"such generator from another. Its dependence tests say nothing either way.")
    fixed = r.get("fixed") or {}
    for model, candidates in fixed.items():
        lines.append(f"- *{model} is the {candidates[0]} baseline here.* With this grid's kernels its only candidates "
                     f"({', '.join(candidates)}) are powers of one another and give the same orbit, so it has no "
                     f"choice to learn: its rows are shown as `{candidates[0]} ({model})` (the fixed group plus "
                     f"its unused selection scores), and it is left out of the distances and dependence tests, where "
                     f"it would agree with itself by construction.")
    return lines


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


def _cell_sections(r: dict) -> list[dict]:
    """One table per (dataset, task) cell of the grid: finished models with their numbers, the rest marked."""
    out = []
    tables = {(t["dataset"], t["task"]): t for t in r["tables"]}
    missing: dict = {}
    for x in r.get("remaining", []):
        missing.setdefault((x["dataset"], x["task"]), []).append(x)
    cells = [tuple(c) for c in r.get("cells", [])] or list(tables)
    for cell in cells:
        dataset, task = cell
        t = tables.get(cell)
        score, digits, _ = _SCORES["test_acc" if task == "classify" else "test_psnr"]
        rows = [[_label(r, row["model"]), _pm(row["metric"], digits), str(row["metric"]["n"]), f"{row['params']:,}",
                 f"{row['params_export']:,}", f"{row['train_seconds']:.0f}", f"{row['epochs']} × {row['n_train']:,}"]
                for row in (t["models"] if t else [])]
        rows += [[x["model"], _projected(x), f"seeds {', '.join(map(str, x['seeds']))}", "–", "–", "–",
                  f"{x['epochs']} × {x['n_train']:,}"] for x in missing.get(cell, [])]
        out.append({"dataset": dataset, "task": task, "score": score, "rows": rows})
    return out


def _distance_sections(r: dict) -> list[dict]:
    """Per LGN model: its distance matrix as table rows, its figure, dependence tests and claim check."""
    out = []
    for model, entry in r["distances"].items():
        cells = entry["cells"]
        rows = [[f"**{c}**"] + ["–" if entry["mean"][i][j] is None else
                                f"{entry['mean'][i][j]:.3f}" + (f" ± {entry['std'][i][j]:.3f}"
                                                                if entry["std"][i][j] is not None else "")
                                for j in range(len(cells))] for i, c in enumerate(cells)]
        dep = r.get("dependence", {}).get(model)
        c = r["claim"].get(model)
        parts = entry.get("parts") or {}
        names = {"floor": "same cell (floor)", "data": "same task, other data", "task": "same data, other task"}
        out.append({"model": model, "cells": cells, "rows": rows, "same_seed": entry.get("pairing") == "same seed",
                    "parts": [[names[k]] + [f"{v[p] * 1e3:.2f}" for p in ("indices", "spectrum", "angles", "residuals")]
                              for k, v in parts.items() if v],
                    "figure": r["figures"]["distances"].get(model), "dependence": dep["verdict"] if dep else None,
                    "claim": c["verdict"] if c else None,
                    "comparisons": [[x["cell"], x["other_data"], fmt_num(x["same_task_distance"]), x["other_task"],
                                     fmt_num(x["same_data_distance"]),
                                     "yes" if x["favours_claim"] else "tie" if x["tie"] else "no"]
                                    for x in c["head_to_head"]["comparisons"]] if c else []})
    return out


def _summary_rows(r: dict) -> list[list[str]]:
    """One row per analysed LGN run: families, similarity, indices, order error, moved, code energy."""
    rows = []
    for x in r["runs"]:
        if x.get("analysis"):
            s = x["analysis"]["summary"]
            fams = ", ".join(f"{f} {n}" for f, n in s["families"].items())
            sims, energy = x["analysis"].get("layer0_similarity"), x["analysis"].get("code_energy")
            rows.append([x["name"], fams, f"{s['mean_similarity']:.2f}",
                         "–" if not sims else f"{sum(v >= 0.9 for v in sims)}/{len(sims)}",
                         fmt_num(s["indices"]["toeplitz"], 2), fmt_num(s["indices"]["skew"], 2),
                         fmt_num(s["indices"]["block"], 2), fmt_num(s["group_error"]["finite_order"], 3),
                         fmt_num(x["analysis"].get("moved_from_init"), 3),
                         "/".join(f"{f:.2f}" for f in energy) if energy else "–"])
    return rows


def _measure_rows(r: dict) -> dict | None:
    """The table of :func:`lgn.reproduce.results.run_measures` per cell, with its chance levels."""
    m = r.get("measures")
    if not m or not m["cells"]:
        return None

    def pm(c: dict, key: str, digits: int = 2) -> str:
        return _pm(c[key], digits) if key in c else "–"

    rows = [[f"{c['dataset']} {c['task']}", _label(r, c["model"]), pm(c, "start_cosine"), pm(c, "start_change"),
             pm(c, "data_free_cosine", 3), pm(c, "data_free_distance", 3), pm(c, "named_whole", 1),
             pm(c, "orbit_residual"), pm(c, "orbit_named", 1), "/".join(f"{n:.2f}" for n in c["norms"])]
            for c in m["cells"]]
    null = next(iter(m["null"].values()))
    per_run = {c["generators"] // c["seeds"] for c in m["cells"]}
    return {"rows": rows, "generators": "/".join(map(str, sorted(per_run))),
            "null": {"orbit": null["orbit"]["median"], "one_step": null["one_step"]["median"],
                     "q05": null["one_step"]["q05"], "samples": null["orbit"]["samples"]}}


def write_markdown(results: dict, path: Path) -> Path:
    """Write ``RESULTS.md`` from the ``results.json`` dict (the template ``templates/results.md.j2``)."""
    r = results
    b = r["time_budget"]
    d = r.get("discovery")
    fixed = r.get("fixed") or {}
    path.write_text(render(
        "results.md.j2", r=r, m=r["machine"], recipe=_recipe_text(r["recipe"], r["seeds"]),
        partial=None if r.get("complete", True) else _partial_text(r), headlines=_headlines(r),
        targets=[[t["target"], t["measured"], f"**{t['verdict']}**"] for t in r["targets"]],
        cells=_cell_sections(r), collapses=collapse_section(r),
        distances=_distance_sections(r), significance=SIGNIFICANCE, summary=_summary_rows(r),
        complete=r.get("complete", True), planted=d,
        discovery=[[x["dataset"], x["method"], f"{x['alignment_mean']:.3f} ± {x['alignment_std']:.3f}",
                    f"{x['accuracy_mean']:.4f} ± {x['accuracy_std']:.4f}", str(x["seeds"])]
                   for x in d["summary"]] if d else [],
        budget=[[x["dataset"], x["task"], x["model"], str(x["runs"]), f"{x['epochs']} × {x['n_train']:,}",
                 f"{x['seconds_per_epoch']:.1f}", f"{x['hours']:.2f}", x["how"]
                 + ("" if x["in_grid"] else " (not in this grid)")] for x in b["rows"]],
        budget_recipe=_recipe_text(b["recipe"], b["seeds"]) if b["rows"] else "",
        match_tolerance=MATCH_TOLERANCE, claims=[[c["claim"], c["number"], f"**{c['verdict']}**"]
                                                 for c in r.get("claims") or []],
        tests=next((d[f]["tests"] for d in (r.get("dependence") or {}).values() for f in ("data", "task")
                    if "tests" in d[f]), None),
        fixed_labels=[f"{c[0]} ({m})" for m, c in fixed.items()],
        fixed_note=(", ".join(f"`{c[0]} ({m})`" for m, c in fixed.items()) + " is left out: its groups are "
                    "the same fixed operation in every run by construction.") if fixed else None,
        measures=_measure_rows(r), named=NAMED))
    return path
