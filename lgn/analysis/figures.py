"""Figures of learned groups and probe maps (matplotlib, imported only when drawing).

Each figure is a :class:`matplotlib.figure.Figure` with its own Agg canvas: drawing
never touches pyplot or the process-wide backend, so a notebook keeps its own.

Every figure is one or a few mosaics: many small matrices or images tiled into
one array with thin blank gaps and drawn by a single ``imshow``, which keeps a
4-layer × 5-group model's figures well under a second or two to draw.

- :func:`generator_heatmaps`: every generator on one shared symmetric colour scale.
- :func:`dft_heatmaps`: |F·A·F⁻¹| on one shared scale, frequencies centred.
- :func:`orbit_figure`: each layer's orbit filter bank A^i·B.
- :func:`identity_action_figure`: A^i applied to the k×k identity image.
- :func:`probe_figure`, :func:`similarity_figure`: the probe's maps, and learned
  generators against them.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from lgn.analysis.measures import dft_conjugate
from lgn.files import atomic_write

__all__ = ["new_figure", "save_figure", "generator_heatmaps", "dft_heatmaps", "orbit_figure", "identity_action_figure",
           "probe_figure", "similarity_figure", "analysis_figures"]

_CMAP = "RdBu_r"  # diverging: negative blue, zero white, positive red


def _matplotlib():
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ValueError("figures need the optional matplotlib package: pip install 'lgn[figures]'") from None
    return matplotlib, Figure, FigureCanvasAgg


def new_figure(figsize):
    """A new figure on its own Agg canvas, outside pyplot: nothing global is registered or switched."""
    _, Figure, FigureCanvasAgg = _matplotlib()
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _cmap(name: str):
    return _matplotlib()[0].colormaps[name]


def save_figure(fig, path) -> Path:
    """Write ``fig`` as a PNG to ``path`` through :func:`lgn.files.atomic_write` (never through a link there)."""
    path = Path(path)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100, bbox_inches="tight", pad_inches=0.1)
    atomic_write(path, png.getvalue())
    return path


def _mosaic(tiles: np.ndarray, gap: int = 1, fill: float = np.nan) -> np.ndarray:
    """Tile ``(R, C, h, w[, 3])`` into one ``(R·(h+gap)−gap, C·(w+gap)−gap[, 3])`` array, gaps = ``fill``."""
    R, C, h, w = tiles.shape[:4]  # tile rows, tile columns, tile height, tile width
    out = np.full((R * (h + gap) - gap, C * (w + gap) - gap) + tiles.shape[4:], fill, dtype=np.float64)
    for i in range(R):
        for j in range(C):
            out[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = tiles[i, j]
    return out


def _draw(tiles, path, *, vmin, vmax, cmap=_CMAP, row_labels=(), col_labels=(), title="",
          colorbar="", gap=None, tile_inches=None):
    """Draw a mosaic of ``tiles`` (R, C, h, w[, 3]) with labelled rows/columns; returns the path."""
    tiles = np.asarray(tiles, dtype=np.float64)
    R, C, h, w = tiles.shape[:4]
    gap = max(1, h // 12) if gap is None else gap
    image = _mosaic(tiles, gap, fill=np.nan if tiles.ndim == 4 else 1.0)
    if tile_inches is None:  # at most about 12 inches of tiles: 1,200 px at 100 dpi, shown unscaled in the report
        tile_inches = min(1.6, 12.0 / max(C, 1), 20.0 / max(R, 1))
    width = C * tile_inches + (1.6 if colorbar else 0.4) + (1.0 if row_labels else 0.0)
    height = R * tile_inches * h / w + (0.9 if title else 0.4) + (0.5 if col_labels else 0.0)
    fig = new_figure((max(width, 3.0), max(height, 2.0)))
    ax = fig.subplots()
    cm = _cmap(cmap).with_extremes(bad="white")
    im = ax.imshow(image, cmap=cm, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([j * (w + gap) + (w - 1) / 2 for j in range(C)] if col_labels else [])
    ax.set_xticklabels(list(col_labels), fontsize=9)
    ax.xaxis.tick_top()
    ax.set_yticks([i * (h + gap) + (h - 1) / 2 for i in range(R)] if row_labels else [])
    ax.set_yticklabels(list(row_labels), fontsize=9)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=11, pad=26 if col_labels else 6, wrap=True)
    if colorbar and tiles.ndim == 4:
        cb = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
        cb.set_label(colorbar, fontsize=9)
        cb.ax.tick_params(labelsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def _grid(A: np.ndarray):
    """Generators ``(L, K, C', m, m)`` → tiles ``(L, K·C', m, m)`` with row and column labels."""
    L, K, Cb = A.shape[:3]  # layers, groups, action blocks
    tiles = A.reshape(L, K * Cb, *A.shape[-2:])
    cols = [f"g{g}" + (f" c{c}" if Cb > 1 else "") for g in range(K) for c in range(Cb)]
    rows = [f"layer {l}" for l in range(L)]
    return tiles, rows, cols


def generator_heatmaps(A: np.ndarray, path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Heat maps of all generators ``(L, K, C', m, m)`` on one shared symmetric colour scale ±max|A|."""
    A = np.asarray(A, dtype=np.float64)
    tiles, rows, cols = _grid(A)
    v = float(np.abs(A).max()) or 1.0
    return _draw(tiles, path, vmin=-v, vmax=v, row_labels=rows, col_labels=cols, colorbar="A entries",
                 title=title or f"generators A (shared colour scale ±{v:.3g})")


def _centred_dft(a: np.ndarray, k: int) -> np.ndarray:
    """|F·A·F⁻¹| with zero frequency at the centre of every channel's k×k frequency grid."""
    m = a.shape[-1]
    c = m // (k * k)
    mag = np.abs(dft_conjugate(a, k)).reshape(c, k, k, c, k, k)
    mag = np.fft.fftshift(mag, axes=(1, 2, 4, 5))
    return mag.reshape(m, m)


def dft_heatmaps(A: np.ndarray, kernel_size: int, path: str | os.PathLike) -> Path:
    """|F·A·F⁻¹| of all generators, F the 2-D DFT, frequencies centred, one shared scale [0, max]."""
    A = np.asarray(A, dtype=np.float64)
    conj = np.stack([_centred_dft(a, kernel_size) for a in A.reshape(-1, *A.shape[-2:])]).reshape(A.shape)
    tiles, rows, cols = _grid(conj)
    v = float(conj.max()) or 1.0
    return _draw(tiles, path, vmin=0.0, vmax=v, cmap="magma_r", row_labels=rows, col_labels=cols,
                 colorbar="|F·A·F⁻¹|", title="generators in the Fourier basis, |F·A·F⁻¹| "
                                           "(zero frequency centred, shared scale)")


def _normalise(images: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Scale each image to max |value| 1 over ``axes``; returns (scaled, the divisors)."""
    peak = np.abs(images).max(axis=axes, keepdims=True)
    return np.divide(images, peak, out=np.zeros_like(images), where=peak > 0), peak


def _powers_applied(A: np.ndarray, x: np.ndarray, order: int) -> np.ndarray:
    """A^i·x for i < ``order``: A ``(..., m, m)``, x ``(..., m)`` → ``(order, ..., m)``."""
    out = [x]
    for _ in range(order - 1):
        out.append(np.einsum("...ij,...j->...i", A, out[-1]))
    return np.stack(out)


_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power(i: int) -> str:
    return "A" + str(i).translate(_SUPERSCRIPT)


def _layout(tiles: np.ndarray, col_names: list[str]):
    """Per-layer tiles ``(L, K, cols, h, w[, 3])`` → a mosaic grid with row and column labels.

    Up to 24 columns in all, layers sit side by side (rows = groups, a blank tile
    between layers, columns named ``l{layer} …``); beyond that, rows are
    (layer, group) and columns the ``col_names``, which keeps the tiles large
    enough to read.
    """
    L, K, cols = tiles.shape[:3]  # layers, groups, columns per layer
    if L * cols <= 24:
        blank = np.full((K, 1) + tiles.shape[3:], np.nan if tiles.ndim == 5 else 1.0)
        parts = []
        for l in range(L):
            parts += ([blank] if l else []) + [tiles[l]]
        names = []
        for l in range(L):
            names += ([""] if l else []) + [f"l{l} {c}" if j == 0 else c for j, c in enumerate(col_names)]
        return np.concatenate(parts, axis=1), [f"group {g}" for g in range(K)], names
    rows = [f"l{l} g{g}" for l in range(L) for g in range(K)]
    return tiles.reshape(L * K, *tiles.shape[2:]), rows, col_names


def _orbit_tiles(A: np.ndarray, B: np.ndarray, order: int) -> np.ndarray:
    """Orbit filters ``(L, K, p, C, k, k)`` of generators A ``(L, K, C', m, m)`` and bases B ``(L, K, C, k, k)``."""
    L, K, C, k, _ = B.shape  # layers, groups, channels, kernel size
    Cb = A.shape[2]
    base = B.reshape(L, K, Cb, -1)  # (L, K, C', m)
    orbit = _powers_applied(A, base, order)  # (p, L, K, C', m)
    return np.moveaxis(orbit, 0, 2).reshape(L, K, order, C, k, k)


def orbit_figure(A: np.ndarray, B: np.ndarray, order: int, path: str | os.PathLike) -> Path:
    """Each layer's orbit filter bank: for every group, the filters A^i·B, i = 0..p−1.

    Every filter is scaled to its own peak, since the powers of a unit-norm
    generator shrink; the column label gives ‖A^i·B‖/‖B‖ averaged over the
    layer's groups. 3-channel filters are drawn in colour (mid-grey is zero),
    others one channel per column block.
    """
    A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    L, K, C, k, _ = B.shape
    orbit = _orbit_tiles(A, B, order)  # (L, K, p, C, k, k)
    norms = np.linalg.norm(orbit.reshape(L, K, order, -1), axis=-1)
    shrink = (norms / np.maximum(norms[:, :, :1], 1e-300)).mean(axis=1)  # (L, p)
    scaled, _ = _normalise(orbit, axes=(3, 4, 5))
    if C == 3:
        tiles = np.clip(np.moveaxis(0.5 + 0.5 * scaled, 3, -1), 0, 1)  # (L, K, p, k, k, 3)
        names = [f"{_power(i)}B" for i in range(order)]
        kind = "RGB, "
    else:
        tiles = np.moveaxis(scaled, 3, 2).reshape(L, K, C * order, k, k)  # channel-major column blocks
        names = [(f"c{c} " if C > 1 else "") + f"{_power(i)}B" for c in range(C) for i in range(order)]
        kind = ""
    grid, rows, cols = _layout(tiles, names)
    if len(cols) > len(names):  # layers side by side: add each layer's shrink factors
        per = len(names) + 1
        cols = [c if not c else f"{c}\n×{shrink[j // per, (j % per) % order]:.2g}" for j, c in enumerate(cols)]
    else:
        cols = [f"{c}\n×{shrink.mean(0)[j % order]:.2g}" for j, c in enumerate(cols)]
    return _draw(grid, path, vmin=0 if C == 3 else -1, vmax=1, row_labels=rows, col_labels=cols,
                 colorbar="filter value / the filter's peak |value|",
                 title=f"orbit filter banks {_power(0)}B … {_power(order - 1)}B\n"
                       f"({kind}each filter scaled to its peak; ×: norm relative to B)")


def identity_action_figure(A: np.ndarray, kernel_size: int, order: int, path: str | os.PathLike) -> Path:
    """A^i applied to the k×k identity image (ones on the diagonal), i = 0..p−1.

    One row per group; for C' > 1 blocks, or a joint generator on C channels,
    one block of p columns per channel. A joint generator acts on the identity
    image repeated on every channel. Each image is scaled to its peak.
    """
    A = np.asarray(A, dtype=np.float64)
    L, K, Cb, m, _ = A.shape
    k = kernel_size
    c = m // (k * k)  # channels inside one block: C for a joint generator, else 1
    x = np.tile(np.eye(k).reshape(-1), c)  # (m,)
    images = _powers_applied(A, np.broadcast_to(x, A.shape[:-1]), order)  # (p, L, K, C', m)
    channels = Cb * c
    images = images.reshape(order, L, K, channels, k, k)
    scaled, _ = _normalise(images, axes=(4, 5))
    tiles = np.moveaxis(scaled, 0, 3).reshape(L, K, channels * order, k, k)  # channel-major powers
    names = [(f"c{ch} " if channels > 1 else "") + f"{_power(i)}I" for ch in range(channels) for i in range(order)]
    grid, rows, cols = _layout(tiles, names)
    return _draw(grid, path, vmin=-1, vmax=1, row_labels=rows, col_labels=cols,
                 colorbar="pixel value / the image's peak |value|",
                 title="action on the identity image I: $A^i \\cdot I$\n(each image scaled to its peak)")


def probe_figure(fits, path: str | os.PathLike) -> Path:
    """Each probe operation: the exact operation on the patch, the fitted map, and both applied to
    the identity image. Each row is scaled to the peak of its two matrices (shown in its label)."""
    k = int(round(fits[0].matrix.shape[0] ** 0.5))
    n = k * k
    eye = np.eye(k).reshape(-1)
    rows, tiles = [], []
    for f in fits:
        peak = max(np.abs(f.exact).max(), np.abs(f.matrix).max()) or 1.0
        exact_i = (f.exact @ eye).reshape(k, k)
        fit_i = (f.matrix @ eye).reshape(k, k)
        ipeak = max(np.abs(exact_i).max(), np.abs(fit_i).max()) or 1.0

        def tile(img):  # a k×k image blown up to fill an n×n tile
            return np.kron(img, np.ones((k, k)))

        tiles.append([f.exact / peak, f.matrix / peak, tile(exact_i / ipeak), tile(fit_i / ipeak)])
        rows.append(f"{f.name}\n±{peak:.2g}, err {f.rel_error:.2f}")
    cols = ["exact on patch", "fitted map", "exact · I", "fitted · I"]
    return _draw(np.array(tiles), path, vmin=-1, vmax=1, row_labels=rows, col_labels=cols,
                 title="probe: least-squares maps on natural patches")


def similarity_figure(compare: dict, path: str | os.PathLike) -> Path:
    """Heat map of the cosine similarity of every learned generator (rows) with every probe map (columns)."""
    names = compare["maps"]
    gens = compare["generators"]
    sims = np.array([[g["similarity"][n] for n in names] for g in gens])  # (G, E)
    per_channel = any(g["channel"] > 0 for g in gens)
    labels = [f"l{g['layer']} g{g['group']}" + (f" c{g['channel']}" if per_channel else "") for g in gens]
    fig = new_figure((1.0 + 0.7 * len(names), 1.2 + 0.22 * len(gens)))
    ax = fig.subplots()
    im = ax.imshow(sims, cmap=_CMAP, vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(gens)))
    ax.set_yticklabels(labels, fontsize=7)
    for i in range(sims.shape[0]):
        for j in range(sims.shape[1]):
            ax.text(j, i, f"{sims[i, j]:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if abs(sims[i, j]) > 0.6 else "black")
    ax.set_title("cosine similarity: learned generators × probe maps", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    fig.tight_layout()
    return save_figure(fig, path)


def analysis_figures(groups, directory: str | os.PathLike) -> dict[str, str]:
    """All figures of a :class:`lgn.analysis.Groups` into ``directory``; returns {figure: file name}."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = {
        "generators": generator_heatmaps(groups.A, directory / "generators.png"),
        "dft": dft_heatmaps(groups.A, groups.kernel_size, directory / "dft.png"),
        "identity_action": identity_action_figure(groups.A, groups.kernel_size, groups.order,
                                                  directory / "identity_action.png"),
    }
    if groups.B is not None:
        out["orbits"] = orbit_figure(groups.A, groups.B, groups.order, directory / "orbits.png")
    return {name: p.name for name, p in out.items()}
