"""``DIR/report/index.html``: the figures and numbers of an analysis (and probe) for a person to read.

The report folder is self-contained: one HTML file with inline CSS and the
figures copied next to it as PNG files, no scripts and no network, so it can
be zipped, mailed or opened straight from disk. A figure an analysis lists is
a file name inside its folder: an entry that leads anywhere else (``..``, an
absolute path, a symbolic link out of the folder) is refused, naming it, and
the report's files are written by :func:`lgn.files.atomic_write`, never through
a link. It opens with what the analysis found in a sentence or two
(:func:`lgn.analysis.verdict.verdict`); results come next (a discovery's verdict,
the run's last epoch and curves, the learned generators with the code's energy per
orbit power), the settings last, folded. The page is a jinja2 template with autoescaping:
every value read from a file is shown as text.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from pathlib import Path

from lgn.analysis.energy import add_code_energy, describe_code_energy
from lgn.analysis.measures import GROUP_ERROR_NAMES, INDEX_NAMES
from lgn.analysis.summary import ANALYSIS_FILE, GROUPS_FILE, MATCH_THRESHOLD, load_groups, write_analysis
from lgn.analysis.verdict import verdict
from lgn.files import MAX_JSON_BYTES, atomic_write, read_file
from lgn.parsing import load_json
from lgn.runs import ANALYSIS_DIR, CONFIG_FILE, MODEL_CONFIG_FILE, read_metrics

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
details { margin: 0.5em 0; } summary { cursor: pointer; color: #225; }
.verdict { font-size: 1.05em; padding: 0.5em 0.8em; border-left: 4px solid #999; background: #f7f7f7; }
.verdict.found { border-color: #3a3; } .verdict.none { border-color: #c33; }
"""


def find_inputs(directory: str | os.PathLike) -> tuple[Path | None, Path | None, Path | None]:
    """(analysis folder, probe folder, run folder) found in or under ``directory``; None where absent.

    The analysis is ``directory/analysis.json`` or ``directory/analysis/analysis.json``;
    the probe ``directory/probe.json`` or ``directory/probe/probe.json``; the run is
    ``directory`` itself when it holds ``model.json``.
    """
    d = Path(directory)
    analysis = next((p for p in (d, d / ANALYSIS_DIR) if (p / ANALYSIS_FILE).is_file()), None)
    probe = next((p for p in (d, d / "probe") if (p / "probe.json").is_file()), None)
    run = d if (d / MODEL_CONFIG_FILE).is_file() else None
    return analysis, probe, run


def _read_json(path: Path) -> dict:
    try:
        return load_json(read_file(path, MAX_JSON_BYTES), str(path))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None


_TITLES = {"loss": "loss", "acc": "accuracy", "psnr": "PSNR (dB, raw scale)", "lr": "learning rate"}
_NOT_CURVES = ("epoch", "step", "skipped_batches")  # counters, not curves; so are the *_seconds timings


def _curves(rows: list[dict]) -> dict[str, list[str]]:
    """The numeric series of ``rows`` by panel: ``train_X`` and ``test_X`` share panel X, in first-seen order."""
    panels: dict[str, list[str]] = {}
    for r in rows:
        for k, v in r.items():
            if k in _NOT_CURVES or k.endswith("seconds") or isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            panel = k.split("_", 1)[1] if k.startswith(("train_", "test_")) else k
            if k not in panels.setdefault(panel, []):
                panels[panel].append(k)
    order = sorted(panels, key=lambda p: (p == "lr", list(panels).index(p)))  # the learning rate last
    return {p: panels[p] for p in order[:4]}


def _listed_figure(folder: Path, source: str, name, file) -> Path:
    """``folder/file`` for the entry ``figures.<name>`` of ``folder/source``: a file name whose path,
    links resolved, lies in ``folder``; ``ValueError`` naming the entry for anything else."""
    where = f"{folder / source}: figures.{name}"
    if not isinstance(file, str) or not file or Path(file).name != file or file in (".", ".."):
        raise ValueError(f"{where} must be a file name in {folder}, got {file!r}"[:500])
    path = folder / file
    if path.resolve().parent != folder.resolve():
        raise ValueError(f"{where} = {file!r} leads out of {folder} (a symbolic link)")
    return path


def _training_figure(rows: list[dict], path: Path) -> Path | None:
    """Training curves of metrics.jsonl against the epoch: train and test of one quantity on one panel."""
    panels = _curves(rows)
    if not panels:
        return None
    from lgn.analysis.figures import new_figure

    xkey = "epoch" if any("epoch" in r for r in rows) else None
    fig = new_figure((4.2 * len(panels), 3.2))  # first: without matplotlib, its one-line error
    from matplotlib.ticker import MaxNLocator

    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (panel, keys) in zip(axes, panels.items()):
        for key in keys:
            pts = [(r.get(xkey, i + 1), r[key]) for i, r in enumerate(rows)
                   if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o" if len(pts) < 50 else None, markersize=3,
                    label=key.split("_", 1)[0] if key != panel else key)
        ax.set_title(_TITLES.get(panel, panel), fontsize=11)
        ax.set_xlabel(xkey or "record", fontsize=10)
        ax.tick_params(labelsize=9)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if panel == "lr":
            ax.set_yscale("log")
        if len(keys) > 1:
            ax.legend(fontsize=9)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    atomic_write(path, png.getvalue())
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
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _cell(text, style: str = "", name: bool = False) -> dict:
    """One table cell for the template: its text (escaped there), an inline style, monospace for names."""
    return {"text": str(text), "style": style, "cls": "name" if name else ""}


def _shaded(value) -> dict:
    return _cell(_num(value), _shade(value) if isinstance(value, (int, float)) and math.isfinite(value) else "")


def _table(header: list[str], rows: list[list[dict]]) -> dict:
    return {"header": header, "rows": rows}


def _figure(name: str, file: str, title: str | None = None) -> dict:
    return {"file": file, "name": name, "title": title or name, "caption": _FIGURE_CAPTIONS.get(name, "")}


def _generator_table(analysis: dict) -> dict:
    header = ["layer", "group", "channel", "nearest op", "similarity", *INDEX_NAMES, *GROUP_ERROR_NAMES]
    rows = []
    for e in analysis["generators"]:
        rows.append([_cell(e["layer"]), _cell(e["group"]), _cell(e["channel"]),
                     _cell(e["nearest_op"]["name"], name=True), _shaded(e["nearest_op"]["similarity"])]
                    + [_shaded(e["indices"][n]) for n in INDEX_NAMES]
                    + [_cell(_num(e["group_error"][n])) for n in GROUP_ERROR_NAMES])
    return _table(header, rows)


def _analysis_section(analysis: dict, figures: dict[str, str]) -> dict:
    s = analysis["summary"]
    return {
        "shape": f"{analysis['n_layers']} layers × {analysis['n_groups']} groups, {analysis['action']} action on "
                 f"{analysis['channels']}-channel {analysis['kernel_size']}×{analysis['kernel_size']} kernels, "
                 f"p = {analysis['order']}.",
        "source": str(analysis["source"]),
        "families": ", ".join(f"{f}: {n}" for f, n in s["families"].items()),
        "threshold": MATCH_THRESHOLD, "mean_similarity": f"{s['mean_similarity']:.3f}",
        "library_size": analysis["library"]["size"],
        "code_energy": describe_code_energy(analysis["code_energy"]) if "code_energy" in analysis else None,
        "summary": _table([*INDEX_NAMES, *GROUP_ERROR_NAMES],
                          [[_shaded(s["indices"][n]) for n in INDEX_NAMES]
                           + [_cell(_num(s["group_error"][n])) for n in GROUP_ERROR_NAMES]]),
        "figures": [_figure(n, figures[n]) for n in ("generators", "dft", "orbits", "identity_action")
                    if n in figures],
        "generators": _generator_table(analysis),
    }


def _probe_section(probe: dict, figures: dict[str, str]) -> dict:
    header = ["operation", "rel. error", "similarity to exact", "nearest op", "similarity",
              *INDEX_NAMES, *GROUP_ERROR_NAMES]
    rows = [[_cell(m["name"], name=True), _cell(_num(m["rel_error"], 4)), _cell(_num(m["exact_similarity"])),
             _cell(m["nearest_op"]["name"], name=True), _cell(_num(m["nearest_op"]["similarity"]))]
            + [_shaded(m["indices"][n]) for n in INDEX_NAMES]
            + [_cell(_num(m["group_error"][n])) for n in GROUP_ERROR_NAMES] for m in probe["maps"]]
    section = {
        "text": f"{probe['n_patches']} {probe['dataset']} patches of {probe['kernel_size']}×{probe['kernel_size']} "
                f"(windows {probe['window']}×{probe['window']}, {probe['channels']} channel(s), each a sample). "
                "Pooling radius r is a box of side 2r + 1.",
        "table": _table(header, rows),
        "figures": [_figure("probe", figures["probe"])] if "probe" in figures else [],
        "compare": None,
    }
    if "compare" in probe:
        c = probe["compare"]
        rows = [[_cell(g["layer"]), _cell(g["group"]), _cell(g["channel"])]
                + [_cell(_num(g["similarity"][n]), _shade(abs(g["similarity"][n]))) for n in c["maps"]]
                for g in c["generators"]]
        section["compare"] = {"run": c["run"], "table": _table(["layer", "group", "channel", *c["maps"]], rows),
                              "figures": [_figure("similarity", figures["similarity"])] if "similarity" in figures
                              else []}
    return section


def _flat(config: dict) -> list[tuple[str, str]]:
    flat = [(k, v) for k, v in config.items() if not isinstance(v, dict)]
    for k, v in config.items():
        if isinstance(v, dict):
            flat += [(f"{k}.{kk}", vv) for kk, vv in v.items()]
    return [(k, json.dumps(v)) for k, v in flat]


def _run_section(run: Path, figures: dict[str, str]) -> dict:
    """The run's results (last record of metrics.jsonl, training curves) and its settings."""
    section = {"last": None, "figures": [], "configs": []}
    rows = read_metrics(run, skip_damaged=True)
    if rows:
        last = rows[-1]
        section["last"] = _table(list(last), [[_cell(f"{v:.4g}" if isinstance(v, float) else v) for v in last.values()]])
    if "training" in figures:
        section["figures"].append(_figure("training", figures["training"]))
    for name in (CONFIG_FILE, MODEL_CONFIG_FILE):
        if (run / name).is_file():
            section["configs"].append({"name": name, "rows": _flat(_read_json(run / name))})
    return section


def _discovery_section(analysis: dict, analysis_dir: Path) -> dict | None:
    """``lgn discover``'s verdict and numbers, when the analysis is one of its folders."""
    found = analysis.get("discovery")
    if not isinstance(found, dict):
        return None
    verdict_file = analysis_dir / "verdict.txt"
    lines = verdict_file.read_text(encoding="utf-8").splitlines() if verdict_file.is_file() else []
    judged = found.get("verdict", {})
    return {"lines": [line for line in lines if line.strip()],
            "found": judged.get("found") if isinstance(judged, dict) else None,
            "numbers": [(k, _num(v) if isinstance(v, float) else json.dumps(v)) for k, v in found.items()
                        if k not in ("verdict", "config", "options")]
                       + ([(f"verdict.{k}", _num(v) if isinstance(v, float) else json.dumps(v))
                           for k, v in judged.items()] if isinstance(judged, dict) else [])}


_TEMPLATE = """<!DOCTYPE html>
{%- macro table(t) %}
<table><thead><tr>{% for h in t.header %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>
{%- for row in t.rows %}<tr>{% for c in row %}<td{% if c.cls %} class="{{ c.cls }}"{% endif %}
{%- if c.style %} style="{{ c.style }}"{% endif %}>{{ c.text }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{%- endmacro %}
{%- macro figure(f) %}
<figure><a href="{{ f.file }}"><img src="{{ f.file }}" alt="{{ f.name }}"></a>
<figcaption>{{ f.title }}: {{ f.caption }}</figcaption></figure>
{%- endmacro %}
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title><style>{{ css | safe }}</style></head>
<body><h1>{{ title }}</h1>
{% if found %}<p class="verdict">{{ found }}</p>{% endif %}
{% if discovery %}<h2>Discovery verdict</h2>
<p class="verdict {{ 'found' if discovery.found else 'none' }}">{% for line in discovery.lines %}{{ line }}<br>
{% endfor %}</p>
<table><tbody>{% for k, v in discovery.numbers %}<tr><td class="name">{{ k }}</td><td class="name">{{ v }}</td></tr>
{% endfor %}</tbody></table>{% endif %}
{% if run %}<h2>Results</h2>
{% if run.last %}<h3>Last epoch (metrics.jsonl)</h3>{{ table(run.last) }}{% endif %}
{% for f in run.figures %}{{ figure(f) }}{% endfor %}{% endif %}
{% if analysis %}<h2>Learned generators</h2>
<p>{{ analysis.shape }} Source: <code>{{ analysis.source }}</code>.</p>
<p>Nearest known operations by family ('none': similarity below {{ analysis.threshold }}): {{ analysis.families }};
mean similarity {{ analysis.mean_similarity }} (library of {{ analysis.library_size }} operations).</p>
{% if analysis.code_energy %}<p>The {{ analysis.code_energy }}.</p>{% endif %}
<h3>Over all generators: mean of each index, median of each group error</h3>{{ table(analysis.summary) }}
{% for f in analysis.figures %}{{ figure(f) }}{% endfor %}
<details><summary>Every generator ({{ analysis.generators.rows | length }})</summary>{{ table(analysis.generators) }}</details>
{% endif %}
{% if probe %}<h2>Probe: known operations on natural patches</h2><p>{{ probe.text }}</p>{{ table(probe.table) }}
{% for f in probe.figures %}{{ figure(f) }}{% endfor %}
{% if probe.compare %}<h3>Learned generators of <code>{{ probe.compare.run }}</code> against the probe maps</h3>
{% for f in probe.compare.figures %}{{ figure(f) }}{% endfor %}{{ table(probe.compare.table) }}{% endif %}{% endif %}
{% if run and run.configs %}<h2>Settings</h2>
{% for c in run.configs %}<details><summary>{{ c.name }} ({{ c.rows | length }} keys)</summary>
<table><thead><tr><th>key</th><th>value</th></tr></thead><tbody>
{% for k, v in c.rows %}<tr><td class="name">{{ k }}</td><td class="name">{{ v }}</td></tr>
{% endfor %}</tbody></table></details>
{% endfor %}{% endif %}
<h2>How to read the numbers</h2><dl>{% for term, text in glossary %}<dt>{{ term }}</dt><dd>{{ text }}</dd>{% endfor %}</dl>
<p class="note">Every index is scale-invariant and lies in [0, 1]. Generated by <code>lgn report</code>.</p>
</body></html>
"""


def _render(**context) -> str:
    """The page: a jinja2 template with autoescaping, so every value from a file is shown, never run."""
    from jinja2 import Environment, StrictUndefined

    env = Environment(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)
    return env.from_string(_TEMPLATE).render(css=_CSS, glossary=_GLOSSARY, **context)


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

        analysis_dir = d / ANALYSIS_DIR
        analysis = write_analysis(load_run_groups(run), analysis_dir, figures=True, save_arrays=True)
        add_code_energy(analysis, run, analysis_dir / ANALYSIS_FILE)
    if analysis_dir is None and probe_dir is None:
        raise FileNotFoundError(f"{d} holds no analysis.json, probe.json or saved model: run `lgn analyze` "
                                "or `lgn probe --out` first")
    out = d / REPORT_DIR
    if out.is_symlink():
        raise ValueError(f"{out} is a symbolic link: the report is written only inside {d}")
    out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, str] = {}
    sections = {"run": None, "analysis": None, "probe": None, "discovery": None, "found": None}

    def copy(src_dir: Path, source: str, listed) -> None:
        if not isinstance(listed, dict):
            raise ValueError(f"{src_dir / source}: figures must be an object, got {type(listed).__name__}")
        paths = {name: _listed_figure(src_dir, source, name, file) for name, file in listed.items()}
        for name, src in paths.items():  # every entry checked before anything is copied
            if src.is_file():
                atomic_write(out / src.name, src.read_bytes())
                figures[name] = src.name

    if run is not None:
        rows = read_metrics(run, skip_damaged=True)
        if rows and _training_figure(rows, out / "training.png") is not None:
            figures["training"] = "training.png"
        sections["run"] = _run_section(run, figures)
    if analysis_dir is not None:
        analysis = _read_json(analysis_dir / ANALYSIS_FILE)
        copy(analysis_dir, ANALYSIS_FILE, analysis.get("figures", {}))
        if not analysis.get("figures") and (analysis_dir / GROUPS_FILE).is_file():
            from lgn.analysis.figures import analysis_figures

            figures.update(analysis_figures(load_groups(analysis_dir / GROUPS_FILE), out))
        sections["analysis"] = _analysis_section(analysis, figures)
        sections["found"] = verdict(analysis)
        sections["discovery"] = _discovery_section(analysis, analysis_dir)
    if probe_dir is not None:
        probe = _read_json(probe_dir / "probe.json")
        copy(probe_dir, "probe.json", probe.get("figures", {}))
        sections["probe"] = _probe_section(probe, figures)
    index = out / "index.html"
    atomic_write(index, _utf8(_render(title=f"LGN report: {d.resolve().name}", **sections)))
    return index


def _utf8(page: str) -> bytes:
    """``page`` as UTF-8; a byte of a path that is not UTF-8 (Python decodes it to a lone surrogate) shows as U+FFFD."""
    return re.sub("[\ud800-\udfff]", "\ufffd", page).encode("utf-8")
