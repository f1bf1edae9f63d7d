"""Charts of evaluation results (matplotlib, Agg, 150 dpi PNG).

* :func:`plot_accuracy_vs_length` - accuracy (%) against context length on a log-2 axis, one
  line per model, with optional vertical markers (distillation length, teacher window), like
  the paper's Fig. 2.
* :func:`plot_depth_heatmap` - the needle-in-a-haystack picture: length on x, needle depth on y,
  each cell coloured red (0 %) -> yellow -> green (100 %) and annotated with its score.
* :func:`plot_length_heatmap` - models (or tasks) x lengths, the BABILong layout of the
  paper's Fig. 3.

Figures are built with the object API (``matplotlib.figure.Figure`` + the Agg canvas), so
plotting neither needs a display nor switches the user's backend or leaves figures open in
pyplot. Files are written atomically like every other result file.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap, to_rgb
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

from lawcat.atomic import atomic_write_bytes
from lawcat.eval.accuracy import Cell, DepthTable
from lawcat.eval.formatting import format_score
from lawcat.units import format_length

__all__ = [
    "DPI",
    "ACCURACY_CMAP",
    "plot_accuracy_vs_length",
    "plot_depth_heatmap",
    "plot_length_heatmap",
    "plot_heatmap",
]

DPI = 150

#: Red (0 %) -> amber -> green (100 %), softer than RdYlGn so black annotations stay readable.
ACCURACY_CMAP = LinearSegmentedColormap.from_list(
    "lawcat_accuracy", ["#d7263d", "#f46d43", "#fdd835", "#a6d96a", "#1a9850"]
).with_extremes(bad="#e6e6e6")  # bad = cells with no samples

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "h", "<"]
_MARKER_COLORS = ["#404040", "#7b3294", "#b15928"]
_MARKER_DASHES = [(0, (5, 3)), (0, (7, 2, 1.5, 2)), (0, (2, 2))]
_STYLE = {
    "font.size": 11,
    "axes.titlesize": 13,
    "axes.labelsize": 11,
    "legend.fontsize": 10,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
}

Series = Mapping[int, "Cell | float | None"]


def _value(v: Cell | float | None) -> float | None:
    if v is None:
        return None
    x = v.score if isinstance(v, Cell) else float(v)
    return None if math.isnan(x) else x


def _count(v: Cell | float | None) -> int | None:
    return v.n if isinstance(v, Cell) else None


def _n_label(ns: Sequence[int]) -> str:
    ns = sorted(set(ns))
    if not ns:
        return ""
    return f"n={ns[0]}" if len(ns) == 1 else f"n={ns[0]}–{ns[-1]}"


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    return atomic_write_bytes(path, buf.getvalue())


def _x_positions(lengths: Sequence[int], extra: Sequence[float] = ()) -> dict[int, float]:
    """Where each length sits on the log-2 axis. Length 0 (BABILong's "0K", facts only) has no
    place on a log axis; it is drawn one octave left of the smallest positive length."""
    positive = [v for v in [*lengths, *extra] if v > 0]
    zero_at = (min(positive) / 2.0) if positive else 1.0
    return {length: (float(length) if length > 0 else zero_at) for length in lengths}


def plot_accuracy_vs_length(
    curves: Mapping[str, Series],
    path: str | os.PathLike,
    *,
    title: str,
    subtitle: str | None = None,
    markers: Mapping[str, float] | None = None,
    xlabel: str = "Context length (tokens)",
    ylabel: str = "Accuracy (%)",
) -> Path:
    """Accuracy vs length, one line per entry of ``curves`` (``label -> {length: Cell or %}``).

    ``markers`` (``label -> length in tokens``) draws dashed vertical lines, e.g.
    ``{"distillation length": 1162, "teacher window": 8192}``. Lengths a model was not
    evaluated at are simply absent from its line. Returns the written path.
    """
    markers = {k: float(v) for k, v in (markers or {}).items() if v is not None and float(v) > 0}
    all_lengths = sorted({int(length) for s in curves.values() for length, v in s.items() if _value(v) is not None})
    xpos = _x_positions(all_lengths, list(markers.values()))

    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(max(6.4, 0.55 * len(all_lengths) + 3.5), 4.4))
        ax = fig.add_subplot()
        for i, (label, series) in enumerate(curves.items()):
            pts = sorted((int(k), _value(v), _count(v)) for k, v in series.items() if _value(v) is not None)
            if not pts:
                continue
            ns = [n for _, _, n in pts if n is not None]
            legend = f"{label} ({_n_label(ns)})" if ns else label
            ax.plot(
                [xpos[k] for k, _, _ in pts],
                [y for _, y, _ in pts],
                color=_COLORS[i % len(_COLORS)],
                marker=_MARKERS[i % len(_MARKERS)],
                markersize=6.5,
                linewidth=2.0,
                alpha=0.9,
                label=legend,
                clip_on=False,
                zorder=3,
            )
        # Vertical markers go into the legend rather than onto the plot, where a label would
        # sit on top of some model's line whatever place we picked.
        for j, (label, x) in enumerate(markers.items()):
            ax.axvline(
                x, color=_MARKER_COLORS[j % 3], linestyle=_MARKER_DASHES[j % 3],
                linewidth=1.7, zorder=2, label=f"{label} ({int(round(x))} tokens)",
            )

        ax.set_xscale("log", base=2)
        if all_lengths:
            ax.xaxis.set_major_locator(FixedLocator([xpos[k] for k in all_lengths]))
            ax.set_xticklabels([format_length(k) for k in all_lengths])
        ax.xaxis.set_minor_locator(NullLocator())
        xs = [*xpos.values(), *markers.values()]
        if xs:
            lo, hi = min(xs), max(xs)
            ax.set_xlim(lo / 2**0.35, hi * 2**0.35) if lo != hi else ax.set_xlim(lo / 2, hi * 2)
        if len(all_lengths) > 12:
            for t in ax.get_xticklabels():
                t.set_rotation(45)
        ax.set_ylim(-4, 104)
        ax.set_yticks([0, 20, 40, 60, 80, 100])
        ax.grid(True, which="major", color="0.88", linewidth=0.8, zorder=0)
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontweight="bold", loc="left", pad=18 if subtitle else 6)
        if subtitle:
            ax.text(0, 1.01, subtitle, transform=ax.transAxes, fontsize=9, color="0.35", va="bottom")
        if curves or markers:
            ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        return _save(fig, path)


def _text_color(rgba: Sequence[float]) -> str:
    r, g, b = to_rgb(rgba)
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.45 else "white"


def plot_heatmap(
    values: Sequence[Sequence[float | None]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    path: str | os.PathLike,
    *,
    title: str,
    subtitle: str | None = None,
    xlabel: str = "Context length (tokens)",
    ylabel: str = "",
    colorbar_label: str = "Accuracy (%)",
) -> Path:
    """A 0..100 heatmap with every cell annotated; ``None`` cells are grey and marked "–"."""
    nrows, ncols = len(row_labels), len(col_labels)
    data = [[math.nan if v is None else float(v) for v in row] for row in values]
    if len(data) != nrows or any(len(row) != ncols for row in data):
        raise ValueError(f"heatmap values must be {nrows} x {ncols}")
    longest = max((len(s) for s in row_labels), default=0)
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(max(5.0, 0.85 * ncols + 0.09 * longest + 2.4), max(2.6, 0.48 * nrows + 1.6)))
        ax = fig.add_subplot()
        im = ax.imshow(data, cmap=ACCURACY_CMAP, vmin=0, vmax=100, aspect="auto", interpolation="nearest")
        for i in range(nrows):
            for j in range(ncols):
                v = data[i][j]
                if math.isnan(v):
                    ax.text(j, i, "–", ha="center", va="center", fontsize=10, color="0.45")
                else:
                    ax.text(
                        j, i, format_score(v), ha="center", va="center",
                        fontsize=10 if ncols <= 10 else 8, color=_text_color(im.cmap(im.norm(v))),
                    )
        ax.set_xticks(range(ncols), labels=list(col_labels))
        ax.set_yticks(range(nrows), labels=list(row_labels))
        ax.tick_params(length=0)
        # white grid lines between cells
        ax.set_xticks([x - 0.5 for x in range(1, ncols)], minor=True)
        ax.set_yticks([y - 0.5 for y in range(1, nrows)], minor=True)
        ax.grid(which="minor", color="white", linewidth=1.5)
        ax.tick_params(which="minor", length=0)
        for s in ax.spines.values():
            s.set_visible(False)
        ax.set_xlabel(xlabel)
        if ylabel:
            ax.set_ylabel(ylabel)
        ax.set_title(title, fontweight="bold", loc="left", pad=18 if subtitle else 6)
        if subtitle:
            ax.text(0, 1.01, subtitle, transform=ax.transAxes, fontsize=9, color="0.35", va="bottom")
        cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        cbar.set_label(colorbar_label)
        cbar.outline.set_visible(False)
        return _save(fig, path)


def plot_depth_heatmap(
    table: DepthTable, path: str | os.PathLike, *, title: str, subtitle: str | None = None
) -> Path:
    """Length (x) x needle depth (y, 0 % = start of the context at the top) heatmap."""
    if not table:
        raise ValueError("no samples with a needle depth to plot")
    values = [[(c.score if (c := table.cells.get((L, d))) else None) for L in table.lengths] for d in table.depths]
    if subtitle is None:
        subtitle = _n_label([c.n for c in table.cells.values()]) + " per cell"
    return plot_heatmap(
        values, table.labels, [format_length(L) for L in table.lengths], path,
        title=title, subtitle=subtitle, ylabel="Needle depth (% of context)",
    )


def plot_length_heatmap(
    rows: Mapping[str, Series], path: str | os.PathLike, *, title: str, subtitle: str | None = None
) -> Path:
    """Rows (models or tasks) x lengths heatmap, blank where a row has no result at a length."""
    lengths = sorted({int(k) for s in rows.values() for k, v in s.items() if _value(v) is not None})
    values = [[_value(s.get(L)) for L in lengths] for s in rows.values()]
    if subtitle is None:
        ns = [c.n for s in rows.values() for c in s.values() if isinstance(c, Cell)]
        subtitle = (_n_label(ns) + " per cell") if ns else None
    return plot_heatmap(values, list(rows), [format_length(L) for L in lengths], path, title=title, subtitle=subtitle)
