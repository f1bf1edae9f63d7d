"""Charts of bench results (matplotlib object API + Agg, 150 dpi PNG; no display, no pyplot state).

One line per model (teacher, student) or per operator method, lengths on a log-2 axis. A point that ran out of
memory is drawn as an X at the top of the chart, at its length, labelled "OOM": the line stops where the model
stopped fitting. Points that were skipped are not drawn.

* prefill_latency.png  ms vs prompt tokens, log-log
* prefill_memory.png   peak GiB vs prompt tokens (GPU runs; the device's memory as a dashed line)
* decode_latency.png   ms per token vs context
* decode_memory.png    cache / state MiB vs context, log-log (KV cache grows, the LAWCAT state does not)
* op_latency.png       the attention operator alone, ms vs T, log-log
"""
from __future__ import annotations

import io
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, NullLocator

from ..atomic import atomic_write_bytes
from ..units import GiB, MiB, format_length

__all__ = ["DPI", "plot_all", "plot_decode_latency", "plot_decode_memory", "plot_op_latency",
           "plot_prefill_latency", "plot_prefill_memory", "plot_series", "series_figure"]

DPI = 150
_COLORS = {"teacher": "#d62728", "teacher-static": "#ff9896", "teacher-graph": "#ff7f0e", "teacher-compiled": "#8c564b",
           "student": "#1f77b4", "sdpa-flash": "#d62728", "sdpa-cudnn": "#ff7f0e",
           "sdpa-efficient": "#8c564b", "sdpa-math": "#7f7f7f", "gla": "#1f77b4", "gla-triton": "#2ca02c"}
_EXTRA = ["#9467bd", "#e377c2", "#17becf", "#bcbd22"]
_MARKERS = {"teacher": "s", "teacher-static": "s", "teacher-graph": "D", "teacher-compiled": "^", "student": "o"}
_ORDER = ("teacher", "teacher-static", "teacher-graph", "teacher-compiled", "student", "sdpa-flash", "sdpa-cudnn",
          "sdpa-efficient", "sdpa-math", "gla", "gla-triton")


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def _subtitle(results: dict) -> str:
    model = (results.get("model") or {}).get("name")
    mach = results["run"].get("machine", {})
    parts = [p for p in (model, mach.get("device"), results["run"].get("dtype")) if p]
    return ", ".join(parts)


def series_figure(results: dict, kind: str, value, ylabel: str, title: str, logy: bool | None = None,
                  hline: tuple[float, str] | None = None, xlabel: str = "tokens") -> Figure:
    """Generic chart: one line per `model` of records of `kind`, y = value(record) for ok records.

    logy None: log scale when the values span more than 20x. OOM records are X marks at the top.
    """
    recs = [r for r in results["records"] if r["kind"] == kind]
    names = list(dict.fromkeys(r["model"] for r in recs))
    names = [n for n in _ORDER if n in names] + [n for n in names if n not in _ORDER]
    fig = Figure(figsize=(7.0, 4.6))
    ax = fig.add_subplot(1, 1, 1)
    ys_all, lengths = [], sorted({r["length"] for r in recs})
    series = {}
    for i, name in enumerate(names):
        pts = sorted((r["length"], value(r)) for r in recs if r["model"] == name and r["status"] == "ok"
                     and value(r) is not None)
        ooms = sorted(r["length"] for r in recs if r["model"] == name and r["status"] == "oom")
        series[name] = (pts, ooms, _COLORS.get(name, _EXTRA[i % len(_EXTRA)]))
        ys_all += [y for _, y in pts]
    if logy is None:
        pos = [y for y in ys_all if y > 0]
        logy = bool(pos) and max(pos) / min(pos) > 20
    ymax = max(ys_all) if ys_all else 1.0
    ymin = min([y for y in ys_all if y > 0] or [1.0])
    if hline is not None:
        ymax = max(ymax, hline[0])
    y_oom = ymax * (2.0 if logy else 1.12)
    any_oom = False
    for name, (pts, ooms, color) in series.items():
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker=_MARKERS.get(name, "o"), color=color,
                    linewidth=2, markersize=5, label=name)
        for x in ooms:
            any_oom = True
            ax.plot([x], [y_oom], marker="X", markersize=11, color=color, markeredgecolor="black", linestyle="none")
            ax.annotate("OOM", (x, y_oom), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=9,
                        color=color, fontweight="bold")
        if pts and ooms:  # a dotted link from the last point that fitted to the OOM mark
            last = max((p for p in pts if p[0] < ooms[0]), default=None)
            if last:
                ax.plot([last[0], ooms[0]], [last[1], y_oom], color=color, linestyle=":", linewidth=1)
    if hline is not None:
        ax.axhline(hline[0], color="#404040", linestyle="--", linewidth=1)
        ax.annotate(hline[1], (lengths[0] if lengths else 1, hline[0]), textcoords="offset points", xytext=(2, -12),
                    fontsize=8, color="#404040")
    ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log")
        ax.set_ylim(ymin / 1.6, y_oom * 2.2 if any_oom else ymax * 1.8)
    else:
        ax.set_ylim(0, y_oom * 1.12 if any_oom else ymax * 1.12)
    if lengths:
        ax.xaxis.set_major_locator(FixedLocator(lengths))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([format_length(n) for n in lengths], rotation=45 if len(lengths) > 9 else 0)
        pad = 2 ** 0.3
        ax.set_xlim(lengths[0] / pad, lengths[-1] * pad)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title + (f"\n{_subtitle(results)}" if _subtitle(results) else ""), fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if any_oom:
        handles.append(Line2D([], [], marker="X", color="#808080", markeredgecolor="black", linestyle="none",
                              markersize=9))
        labels.append("out of memory")
    if handles:
        ax.legend(handles, labels, loc="upper left", frameon=False)
    if not ys_all and not any_oom:
        ax.text(0.5, 0.5, "no measurements", transform=ax.transAxes, ha="center", va="center", color="#808080")
    return fig


def plot_series(results: dict, kind: str, value, path, ylabel: str, title: str, **kw) -> Path:
    """series_figure(...) written to `path` as PNG."""
    return _save(series_figure(results, kind, value, ylabel, title, **kw), Path(path))


def _device_line(results):
    total = results["run"].get("machine", {}).get("device_total_bytes")
    return (total / GiB, f"device memory {total / GiB:.0f} GiB") if total else None


def plot_prefill_latency(results, path):
    return plot_series(results, "prefill", lambda r: r["ms"], path, "prefill latency (ms)",
                       "Prefill latency vs prompt length", logy=True, xlabel="prompt tokens")


def plot_prefill_memory(results, path):
    return plot_series(results, "prefill", lambda r: None if r.get("peak_bytes") is None else r["peak_bytes"] / GiB,
                       path, "peak memory (GiB)", "Prefill peak memory vs prompt length", logy=False,
                       hline=_device_line(results), xlabel="prompt tokens")


def plot_decode_latency(results, path):
    return plot_series(results, "decode", lambda r: r["ms"], path, "ms per token", "Decode latency vs context",
                       xlabel="context tokens")


def plot_decode_memory(results, path):
    return plot_series(results, "decode", lambda r: r.get("state_bytes", 0) / MiB if r.get("state_bytes") else None,
                       path, "cache / state (MiB)", "Decoding cache size vs context", logy=True,
                       xlabel="context tokens")


def plot_op_latency(results, path):
    shp = next((r["shape"] for r in results["records"] if r["kind"] == "op" and r.get("shape")), None)
    title = "Attention operator alone vs sequence length"
    if shp:
        title += f" ({shp['heads']} heads, {shp['kv_heads']} KV, d={shp['head_dim']})"
    return plot_series(results, "op", lambda r: r["ms"], path, "ms", title, logy=True, xlabel="sequence length T")


def plot_all(results: dict, out_dir) -> dict[str, Path]:
    """Every chart the results have data for; returns {name: path}."""
    out = Path(out_dir)
    recs = results["records"]
    have = {k: any(r["kind"] == k for r in recs) for k in ("prefill", "decode", "op")}
    paths = {}
    if have["prefill"]:
        paths["prefill_latency"] = plot_prefill_latency(results, out / "prefill_latency.png")
        if any(r["kind"] == "prefill" and r.get("peak_bytes") for r in recs):
            paths["prefill_memory"] = plot_prefill_memory(results, out / "prefill_memory.png")
    if have["decode"]:
        paths["decode_latency"] = plot_decode_latency(results, out / "decode_latency.png")
        paths["decode_memory"] = plot_decode_memory(results, out / "decode_memory.png")
    if have["op"]:
        paths["op_latency"] = plot_op_latency(results, out / "op_latency.png")
    return paths
