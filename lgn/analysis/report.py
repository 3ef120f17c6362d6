"""``DIR/report/index.html``: the figures and numbers of an analysis (and probe) for a person to read.

The report folder is self-contained: one HTML file with inline CSS and the
figures copied next to it as PNG files, no scripts and no network, so it can
be zipped, mailed or opened straight from disk.
"""

from __future__ import annotations

import html
import json
import math
import os
import shutil
from pathlib import Path

from lgn.analysis.measures import GROUP_ERROR_NAMES, INDEX_NAMES
from lgn.analysis.summary import ANALYSIS_FILE, GROUPS_FILE, MATCH_THRESHOLD, load_groups, write_analysis
from lgn.parsing import load_json
from lgn.train.run import read_metrics

__all__ = ["write_report", "find_inputs"]

REPORT_DIR = "report"

_FIGURE_CAPTIONS = {
    "generators": "Every generator A as a heat map, all on one shared symmetric colour scale "
                  "(red positive, blue negative). Row = layer; column = group (and channel).",
    "dft": "|F·A·F⁻¹| with F the 2-D DFT of the k×k kernel, zero frequency at the centre of each "
           "k×k frequency grid. A cyclic shift or convolution is diagonal here; a 90° rotation, flip "
           "or transpose is a permutation.",
    "orbits": "The orbit filter bank of each layer: for every group the base filter B and Aⁱ·B. Each "
              "filter is scaled to its own peak; the column labels say how much the powers shrink.",
    "identity_action": "The generators applied to the k×k identity image (ones on the diagonal), "
                       "Aⁱ·I: a rotation turns the diagonal, a shift moves it, pooling blurs it.",
    "training": "Training curves from metrics.jsonl.",
    "probe": "The probe: for each known operation, the exact operation on the patch alone, the "
             "least-squares map fitted on natural patches (where the operation also sees the pixels "
             "around the patch), and both applied to the identity image.",
    "similarity": "Cosine similarity of every learned generator with every fitted probe map.",
}

_GLOSSARY = [
    ("nearest op", "the library operation M maximising |⟨A, M⟩_F| / (‖A‖_F‖M‖_F); a leading '-' means "
                   "A ≈ −M. Families: identity, flip/transpose, rot, shift (cyclic or zero-padded), pool, "
                   "pool+rot, and small powers of these."),
    ("skew / symmetric", "‖(A ∓ Aᵀ)/2‖_F / ‖A‖_F; skew² + symmetric² = 1."),
    ("toeplitz", "energy fraction of A's projection onto block-Toeplitz-with-Toeplitz-blocks matrices "
                 "(2-D shift structure, zero-padded convolution)."),
    ("circulant", "the same for doubly-circulant matrices (cyclic convolution)."),
    ("dft_diagonal", "energy fraction on the diagonal of F·A·F⁻¹ (equals circulant)."),
    ("dft_top", "energy fraction in the k² largest entries of F·A·F⁻¹ (1 for shifts, 90° rotations, "
                "flips; ≈ (1 + ln k²)/k² for noise)."),
    ("block", "energy in the k strongest k×k blocks, rescaled so an even spread is 0 and full "
              "concentration 1."),
    ("min_singular / cond", "smallest singular value of A and σ_max/σ_min."),
    ("finite_order", "min over c of ‖(cA)^p − I‖_F / ‖I‖_F: 0 for a finite group of order dividing p."),
    ("orthogonality", "min over c of ‖(cA)ᵀ(cA) − I‖_F / ‖I‖_F: 0 for a multiple of an orthogonal matrix."),
]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
th { background: #f3f3f3; position: sticky; top: 0; }
td.name { text-align: left; font-family: monospace; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; max-width: 60em; }
.note { color: #666; font-size: 0.9em; } dl dt { font-weight: bold; } dl dd { margin: 0 0 0.4em 1.5em; }
"""


def find_inputs(directory: str | os.PathLike) -> tuple[Path | None, Path | None, Path | None]:
    """(analysis folder, probe folder, run folder) found in or under ``directory``; None where absent.

    The analysis is ``directory/analysis.json`` or ``directory/analysis/analysis.json``;
    the probe ``directory/probe.json`` or ``directory/probe/probe.json``; the run is
    ``directory`` itself when it holds ``model.json``.
    """
    d = Path(directory)
    analysis = next((p for p in (d, d / "analysis") if (p / ANALYSIS_FILE).is_file()), None)
    probe = next((p for p in (d, d / "probe") if (p / "probe.json").is_file()), None)
    run = d if (d / "model.json").is_file() else None
    return analysis, probe, run


def _read_json(path: Path) -> dict:
    try:
        return load_json(path.read_bytes(), str(path))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None


def _training_figure(rows: list[dict], path: Path) -> Path | None:
    """Small multiples of every numeric series in metrics.jsonl, against epoch or step when present."""
    xkey = next((k for k in ("epoch", "step") if any(k in r for r in rows)), None)
    keys = []
    for r in rows:
        for k, v in r.items():
            if k != xkey and k not in keys and isinstance(v, (int, float)) and not isinstance(v, bool):
                keys.append(k)
    keys = keys[:9]
    if not keys:
        return None
    from lgn.analysis.figures import new_figure
    cols = min(3, len(keys))
    nrows = math.ceil(len(keys) / cols)
    fig = new_figure((4 * cols, 2.6 * nrows))
    axes = fig.subplots(nrows, cols, squeeze=False)
    for ax, key in zip(axes.flat, keys):
        pts = [(r.get(xkey, i), r[key]) for i, r in enumerate(rows)
               if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]
        xs, ys = zip(*pts)
        ax.plot(xs, ys, marker="." if len(pts) < 50 else None)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel(xkey or "record", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _shade(value: float) -> str:
    """A background from white (0) to green (1) for an index in [0, 1]."""
    v = min(1.0, max(0.0, value))
    r, g, b = (int(255 - v * (255 - c)) for c in (120, 200, 140))
    return f"background: rgb({r},{g},{b})"


def _num(value, digits=3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "inf"
    if isinstance(value, float) and (abs(value) >= 1e4 or (0 < abs(value) < 1e-3)):
        return f"{value:.2e}"
    return f"{value:.{digits}f}" if isinstance(value, float) else html.escape(str(value))


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(rows_) + "</tr>" for rows_ in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(name: str, file: str, title: str | None = None) -> str:
    caption = _FIGURE_CAPTIONS.get(name, "")
    return (f"<figure><a href='{html.escape(file)}'><img src='{html.escape(file)}' alt='{html.escape(name)}'></a>"
            f"<figcaption>{html.escape(title or name)}: {html.escape(caption)}</figcaption></figure>")


def _generator_rows(analysis: dict) -> str:
    header = ["layer", "group", "channel", "nearest op", "similarity", *INDEX_NAMES, *GROUP_ERROR_NAMES]
    rows = []
    for e in analysis["generators"]:
        cells = [f"<td>{e['layer']}</td>", f"<td>{e['group']}</td>", f"<td>{e['channel']}</td>",
                 f"<td class='name'>{html.escape(e['nearest_op']['name'])}</td>",
                 f"<td style='{_shade(e['nearest_op']['similarity'])}'>{_num(e['nearest_op']['similarity'])}</td>"]
        cells += [f"<td style='{_shade(e['indices'][n])}'>{_num(e['indices'][n])}</td>" for n in INDEX_NAMES]
        cells += [f"<td>{_num(e['group_error'][n])}</td>" for n in GROUP_ERROR_NAMES]
        rows.append(cells)
    return _table(header, rows)


def _analysis_section(analysis: dict, figures: dict[str, str]) -> str:
    s = analysis["summary"]
    fams = ", ".join(f"{html.escape(f)}: {n}" for f, n in s["families"].items())
    parts = [
        "<h2>Learned generators</h2>",
        f"<p>{analysis['n_layers']} layers × {analysis['n_groups']} groups, {analysis['action']} action on "
        f"{analysis['channels']}-channel {analysis['kernel_size']}×{analysis['kernel_size']} kernels, "
        f"p = {analysis['order']}. Source: <code>{html.escape(str(analysis['source']))}</code>.</p>",
        f"<p>Nearest known operations by family ('none': similarity below {MATCH_THRESHOLD}): {fams}; "
        f"mean similarity {s['mean_similarity']:.3f} (library of {analysis['library']['size']} operations).</p>",
        "<h3>Over all generators: mean of each index, median of each group error</h3>",
        _table([*INDEX_NAMES, *GROUP_ERROR_NAMES],
               [[f"<td style='{_shade(s['indices'][n])}'>{_num(s['indices'][n])}</td>" for n in INDEX_NAMES]
                + [f"<td>{_num(s['group_error'][n])}</td>" for n in GROUP_ERROR_NAMES]]),
    ]
    for name in ("generators", "dft", "orbits", "identity_action"):
        if name in figures:
            parts.append(_figure(name, figures[name]))
    parts += ["<h3>Every generator</h3>", _generator_rows(analysis)]
    return "\n".join(parts)


def _probe_section(probe: dict, figures: dict[str, str]) -> str:
    header = ["operation", "rel. error", "similarity to exact", "nearest op", "similarity",
              *INDEX_NAMES, *GROUP_ERROR_NAMES]
    rows = []
    for m in probe["maps"]:
        rows.append([f"<td class='name'>{html.escape(m['name'])}</td>", f"<td>{_num(m['rel_error'], 4)}</td>",
                     f"<td>{_num(m['exact_similarity'])}</td>",
                     f"<td class='name'>{html.escape(m['nearest_op']['name'])}</td>",
                     f"<td>{_num(m['nearest_op']['similarity'])}</td>"]
                    + [f"<td style='{_shade(m['indices'][n])}'>{_num(m['indices'][n])}</td>" for n in INDEX_NAMES]
                    + [f"<td>{_num(m['group_error'][n])}</td>" for n in GROUP_ERROR_NAMES])
    parts = [
        "<h2>Probe: known operations on natural patches</h2>",
        f"<p>{probe['n_patches']} {html.escape(probe['dataset'])} patches of "
        f"{probe['kernel_size']}×{probe['kernel_size']} (windows {probe['window']}×{probe['window']}, "
        f"{probe['channels']} channel(s), each a sample). Pooling radius r is a box of side 2r + 1.</p>",
        _table(header, rows),
    ]
    if "probe" in figures:
        parts.append(_figure("probe", figures["probe"]))
    if "compare" in probe:
        c = probe["compare"]
        parts.append(f"<h3>Learned generators of <code>{html.escape(c['run'])}</code> against the probe maps</h3>")
        if "similarity" in figures:
            parts.append(_figure("similarity", figures["similarity"]))
        rows = [[f"<td>{g['layer']}</td>", f"<td>{g['group']}</td>", f"<td>{g['channel']}</td>"]
                + [f"<td style='{_shade(abs(g['similarity'][n]))}'>{_num(g['similarity'][n])}</td>" for n in c["maps"]]
                for g in c["generators"]]
        parts.append(_table(["layer", "group", "channel", *c["maps"]], rows))
    return "\n".join(parts)


def _run_section(run: Path, figures: dict[str, str]) -> str:
    parts = ["<h2>Run</h2>"]
    for name in ("config.json", "model.json"):
        path = run / name
        if path.is_file():
            cfg = _read_json(path)
            flat = {k: v for k, v in cfg.items() if not isinstance(v, dict)}
            for k, v in cfg.items():
                if isinstance(v, dict):
                    flat.update({f"{k}.{kk}": vv for kk, vv in v.items()})
            parts.append(f"<h3>{name}</h3>")
            parts.append(_table(["key", "value"], [[f"<td class='name'>{html.escape(k)}</td>",
                                                    f"<td class='name'>{html.escape(json.dumps(v))}</td>"]
                                                   for k, v in flat.items()]))
    metrics = run / "metrics.jsonl"
    if metrics.is_file():
        rows = read_metrics(run, skip_damaged=True)
        if rows:
            last = rows[-1]
            parts.append("<h3>Last record of metrics.jsonl</h3>")
            parts.append(_table(list(last), [[f"<td>{f'{v:.4g}' if isinstance(v, float) else html.escape(str(v))}</td>"
                                              for v in last.values()]]))
        if "training" in figures:
            parts.append(_figure("training", figures["training"]))
    return "\n".join(parts)


def write_report(directory: str | os.PathLike) -> Path:
    """Write ``directory/report/index.html`` from what ``directory`` holds; returns its path.

    ``directory`` may be a run folder (its analysis is read from ``analysis/``, and
    computed there first if missing), an analysis folder (``lgn analyze --out``),
    or a probe folder (``lgn probe --out``); a ``probe/`` subfolder is included
    too. Figures are copied into the report folder; figures the analysis skipped
    are drawn from ``groups.npz`` when it is there.
    """
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"no such folder: {d}")
    analysis_dir, probe_dir, run = find_inputs(d)
    if analysis_dir is None and run is not None:
        from lgn.analysis.summary import load_run_groups

        analysis_dir = d / "analysis"
        write_analysis(load_run_groups(run), analysis_dir, figures=True, save_arrays=True)
    if analysis_dir is None and probe_dir is None:
        raise FileNotFoundError(f"{d} holds no analysis.json, probe.json or saved model: run `lgn analyze` "
                                "or `lgn probe --out` first")
    out = d / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    sections, figures = [], {}

    def copy(src_dir: Path, name: str, file: str) -> None:
        src = src_dir / file
        if src.is_file():
            shutil.copyfile(src, out / file)
            figures[name] = file

    if run is not None and (run / "metrics.jsonl").is_file():
        rows = read_metrics(run, skip_damaged=True)
        if rows and _training_figure(rows, out / "training.png") is not None:
            figures["training"] = "training.png"
    if run is not None:
        sections.append(_run_section(run, figures))
    if analysis_dir is not None:
        analysis = _read_json(analysis_dir / ANALYSIS_FILE)
        for name, file in analysis.get("figures", {}).items():
            copy(analysis_dir, name, file)
        if not analysis.get("figures") and (analysis_dir / GROUPS_FILE).is_file():
            from lgn.analysis.figures import analysis_figures

            figures.update(analysis_figures(load_groups(analysis_dir / GROUPS_FILE), out))
        sections.append(_analysis_section(analysis, figures))
    if probe_dir is not None:
        probe = _read_json(probe_dir / "probe.json")
        for name, file in probe.get("figures", {}).items():
            copy(probe_dir, name, file)
        sections.append(_probe_section(probe, figures))
    glossary = "".join(f"<dt>{html.escape(t)}</dt><dd>{html.escape(x)}</dd>" for t, x in _GLOSSARY)
    title = f"LGN report: {d.resolve().name}"
    page = (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>\n"
            + "\n".join(sections)
            + f"\n<h2>How to read the numbers</h2><dl>{glossary}</dl>"
            + "<p class='note'>Every index is scale-invariant and lies in [0, 1]. Generated by <code>lgn report"
              "</code>.</p></body></html>\n")
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
