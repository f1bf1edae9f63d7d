"""Markdown tables and the ``results.md`` + PNG report of one evaluation run.

Tables have one row per model and one column per length bucket; a cell is the accuracy in
percent with its sample count, e.g. ``96 (n=25)``, blank where a model was not evaluated at that
length. They are GitHub-flavoured markdown, ready to paste into a README.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lawcat.atomic import atomic_write_text
from lawcat.eval.accuracy import Cell, DepthTable, accuracy_by_length, accuracy_by_length_depth, models_of, tasks_of
from lawcat.eval.formatting import format_score
from lawcat.eval.plots import plot_accuracy_vs_length, plot_depth_heatmap
from lawcat.eval.records import ResultRecord
from lawcat.eval.results import Results, read_results
from lawcat.units import format_length

__all__ = [
    "TASK_TITLES",
    "task_title",
    "markdown_length_table",
    "markdown_table",
    "markdown_depth_table",
    "markers_from_settings",
    "slug",
    "write_report",
]

TASK_TITLES = {
    "passkey": "Passkey retrieval",
    "niah1": "S-NIAH-1 (noise haystack, number needle)",
    "niah2": "S-NIAH-2 (essay haystack, number needle)",
    "niah3": "S-NIAH-3 (essay haystack, uuid needle)",
    "babilong-qa2": "BABILong QA2 (two supporting facts)",
    "babilong-qa3": "BABILong QA3 (three supporting facts)",
}

#: run.settings keys that become vertical markers on the accuracy-vs-length chart.
MARKER_SETTINGS = {
    "distill_length": "distillation length",
    "train_length": "distillation length",
    "teacher_window": "teacher window",
    "teacher_max_positions": "teacher window",
}


def task_title(task: str) -> str:
    return TASK_TITLES.get(task, task)


def slug(name: str) -> str:
    """A file-name-safe version of a model or task name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _cell_text(cell: Cell | None, show_n: bool) -> str:
    if cell is None:
        return ""
    return f"{format_score(cell.score)} (n={cell.n})" if show_n else format_score(cell.score)


def markdown_length_table(
    rows: Mapping[str, Mapping[int, Cell]],
    *,
    lengths: Sequence[int] | None = None,
    row_header: str = "Model",
    show_n: bool = True,
) -> str:
    """``rows`` (``label -> {length: Cell}``) as a markdown table; one column per length (the
    union of all rows unless given), blank cells where a row has no result."""
    if lengths is None:
        lengths = sorted({int(k) for r in rows.values() for k in r})
    header = "| " + " | ".join([row_header, *(format_length(L) for L in lengths)]) + " |"
    align = "|:--" + "|--:" * len(lengths) + "|"
    body = [
        "| " + " | ".join([_md_escape(label), *(_cell_text(r.get(L), show_n) for L in lengths)]) + " |"
        for label, r in rows.items()
    ]
    return "\n".join([header, align, *body]) + "\n"


def markdown_table(
    records: Results | Iterable[ResultRecord],
    *,
    task: str | None = None,
    models: Sequence[str] | None = None,
    show_n: bool = True,
) -> str:
    """Accuracy (%) table for one task: rows = models, columns = lengths, cells ``score (n=N)``.

    ``task`` may be omitted when the records hold a single task.
    """
    recs = list(records.records if isinstance(records, Results) else records)
    tasks = tasks_of(recs)
    if task is None:
        if len(tasks) != 1:
            raise ValueError(f"records hold tasks {tasks}; pass task=... to pick one")
        task = tasks[0]
    recs = [r for r in recs if r.task == task]
    if not recs:
        raise ValueError(f"no records for task {task!r}")
    rows = {m: accuracy_by_length(recs, model=m) for m in (models or models_of(recs))}
    return markdown_length_table(rows, show_n=show_n)


def markdown_depth_table(table: DepthTable, *, show_n: bool = False, row_title: str = "Depth") -> str:
    """A depth x length table (rows = depth, or what ``row_title`` names, columns = length) of accuracy (%)."""
    header = "| " + " | ".join([row_title, *(format_length(L) for L in table.lengths)]) + " |"
    align = "|:--" + "|--:" * len(table.lengths) + "|"
    body = [
        "| " + " | ".join([label, *(_cell_text(table.cells.get((L, d)), show_n) for L in table.lengths)]) + " |"
        for d, label in zip(table.depths, table.labels)
    ]
    return "\n".join([header, align, *body]) + "\n"


def markers_from_settings(settings: Mapping[str, Any] | None) -> dict[str, float]:
    """Vertical chart markers from a run's settings: ``settings["markers"]`` (``label -> tokens``)
    plus the keys in :data:`MARKER_SETTINGS` (distill_length, teacher_window, ...)."""
    settings = settings or {}
    out: dict[str, float] = {}
    for key, label in MARKER_SETTINGS.items():
        v = settings.get(key)
        if isinstance(v, (int, float)) and v > 0 and label not in out:
            out[label] = float(v)
    extra = settings.get("markers")
    if isinstance(extra, Mapping):
        out.update({str(k): float(v) for k, v in extra.items() if isinstance(v, (int, float)) and v > 0})
    return out


def _as_results(results: Results | str | os.PathLike | Iterable[ResultRecord]) -> Results:
    if isinstance(results, Results):
        return results
    if isinstance(results, (str, os.PathLike)):
        return read_results(results)
    from lawcat.eval.records import RunInfo

    recs = list(results)
    models, tasks = models_of(recs), tasks_of(recs)
    run = RunInfo(model=", ".join(models), task=tasks[0] if len(tasks) == 1 else tasks, machine={}, date=None)
    return Results(run=run, records=recs)


def _n_caption(cells: Iterable[Cell]) -> str:
    ns = sorted({c.n for c in cells})
    if not ns:
        return ""
    return f"{ns[0]} samples per cell" if len(ns) == 1 else f"{ns[0]}–{ns[-1]} samples per cell"


def write_report(
    out_dir: str | os.PathLike,
    results: Results | str | os.PathLike | Iterable[ResultRecord],
    *,
    markers: Mapping[str, float] | None = None,
) -> list[Path]:
    """Write ``results.md`` and its PNGs into ``out_dir``; return the paths written.

    ``results`` is a :class:`Results`, a path to a results file/run directory, or records.
    Per task: ``{task}_accuracy.png`` (accuracy vs length, one line per model) and, when samples
    carry a needle depth, ``{task}_depth.png`` (``{task}_depth_{model}.png`` if several models).
    Chart markers come from ``markers`` or else from the run settings (:func:`markers_from_settings`).
    """
    res = _as_results(results)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if markers is None:
        markers = markers_from_settings(res.run.settings)
    written: list[Path] = []
    run = res.run
    lines = [f"# Evaluation results: {_md_escape(run.model)}", ""]
    lines += [f"- **Model:** `{run.model}`"]
    lines += [f"- **Task:** {', '.join(run.task) if isinstance(run.task, list) else run.task}"]
    if run.seed is not None:
        lines += [f"- **Seed:** {run.seed}"]
    if run.date:
        lines += [f"- **Date:** {run.date}"]
    if run.machine:
        lines += ["- **Machine:** " + ", ".join(f"{k} {v}" for k, v in run.machine.items() if v is not None)]
    if run.settings:
        lines += [f"- **Settings:** `{json.dumps(run.settings, sort_keys=True, default=str)}`"]
    lines += ["", "Accuracy in percent (mean per-sample score x 100); n = samples per cell.", ""]

    for task in tasks_of(res.records):
        recs = [r for r in res.records if r.task == task]
        models = models_of(recs)
        by_model = {m: accuracy_by_length(recs, model=m) for m in models}
        lines += [f"## {task_title(task)}", "", markdown_length_table(by_model)]
        mean_tokens = {
            format_length(L): round(c.mean_tokens)
            for L, c in accuracy_by_length(recs).items()
            if c.mean_tokens is not None
        }
        if mean_tokens:
            lines += ["Mean measured prompt tokens per length: "
                      + ", ".join(f"{k}: {v}" for k, v in mean_tokens.items()), ""]
        png = plot_accuracy_vs_length(
            by_model, out / f"{slug(task)}_accuracy.png",
            title=f"{task_title(task)}: accuracy vs context length",
            subtitle=", ".join(models) if len(models) == 1 else None,
            markers=markers,
        )
        written.append(png)
        lines += [f"![{task_title(task)}: accuracy vs length]({png.name})", ""]
        for m in models:
            table = accuracy_by_length_depth(recs, model=m)
            if not table:
                continue
            name = f"{slug(task)}_depth.png" if len(models) == 1 else f"{slug(task)}_depth_{slug(m)}.png"
            png = plot_depth_heatmap(
                table, out / name, title=f"{task_title(task)}: {m}",
                subtitle=f"accuracy (%) by needle depth and context length, {_n_caption(table.cells.values())}",
            )
            written.append(png)
            lines += [f"### {_md_escape(m)}: by needle depth", "", markdown_depth_table(table),
                      f"![{task_title(task)}: {m} by depth]({png.name})", ""]
    written.append(atomic_write_text(out / "results.md", "\n".join(lines).rstrip() + "\n"))
    return written
