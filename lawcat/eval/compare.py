"""Compare several evaluation runs (teacher, LAWCAT, LoLCATs, ablations) side by side.

``lawcat compare DIR... --out DIR`` calls :func:`run_compare`. For every task found it writes
one markdown table (rows = models, columns = every length any of them was evaluated at, blank
where a model was not) into ``comparison.md``, one accuracy-vs-length chart
``compare_{task}.png`` and a model x length heatmap ``compare_{task}_heatmap.png`` (the layout
of the paper's BABILong figure).

Rows are named by the model name stored in each results file. When two files hold the same
model name *for the same task* (two ablations both called "lawcat"), the run directory's name is
appended, e.g. ``lawcat (nc-ablation)``, so no two runs are ever averaged together.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from lawcat.atomic import atomic_write_text
from lawcat.eval.accuracy import accuracy_by_length, accuracy_by_needle_position, models_of, tasks_of
from lawcat.eval.errors import ResultsError, ResultsNotFoundError
from lawcat.eval.plots import plot_accuracy_vs_length, plot_length_heatmap
from lawcat.eval.records import ResultRecord
from lawcat.eval.report import (
    markdown_depth_table,
    markdown_length_table,
    markers_from_settings,
    slug,
    task_title,
)
from lawcat.eval.results import RESULTS_FILENAME, Results, read_results, resolve_results_path
from lawcat.units import parse_lengths

__all__ = ["find_results_files", "load_runs", "label_records", "compare", "run_compare", "main"]


def find_results_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Expand run directories and ``.json`` paths into results files, in the order given.

    A directory contributes its ``results.json``, or if it has none, every ``results.json``
    below it (sorted), so ``runs/`` can be passed as a whole.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            direct = resolve_results_path(p)
            # One file per folder below: results.json, or results.json.gz where only that is there.
            below = {f.parent for name in (RESULTS_FILENAME, RESULTS_FILENAME + ".gz") for f in p.rglob(name)}
            found = [direct] if direct.is_file() else sorted(resolve_results_path(d) for d in below)
            if not found:
                raise ResultsNotFoundError(f"no {RESULTS_FILENAME} in or below {p}: evaluate that run first")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise ResultsNotFoundError(f"{p} does not exist: pass run directories or results .json files")
    return list(dict.fromkeys(f.resolve() for f in files))


def load_runs(paths: Sequence[str | os.PathLike]) -> list[Results]:
    return [read_results(f) for f in find_results_files(paths)]


def _run_name(res: Results, index: int) -> str:
    if res.path is None:
        return f"run {index + 1}"
    return res.path.parent.name if res.path.name == RESULTS_FILENAME else res.path.stem


def _row_names(runs: Sequence[Results], labels: Sequence[str] | None) -> list[dict[str, str]]:
    """Per run, ``model name in the file -> row label``; see :func:`label_records`."""
    if labels is not None and len(labels) != len(runs):
        raise ValueError(f"got {len(labels)} labels for {len(runs)} result files")
    owners: dict[tuple[str, str], set[int]] = defaultdict(set)  # (model, task) -> runs holding it
    for i, res in enumerate(runs):
        for r in res.records:
            owners[(r.model, r.task)].add(i)
    used: dict[tuple[str, str], int] = {}  # (label, task) -> run that owns it
    result: list[dict[str, str]] = []
    for i, res in enumerate(runs):
        models = models_of(res.records)
        names: dict[str, str] = {}
        for m in models:
            tasks = tasks_of(r for r in res.records if r.model == m)
            if labels is not None and len(models) == 1:
                name = labels[i]
            elif any(len(owners[(m, t)]) > 1 for t in tasks):
                name = f"{m} ({_run_name(res, i)})"
            else:
                name = m
            # still clashing (the same directory name twice, or a repeated explicit label): number it
            base, k = name, 2
            while any(used.get((name, t), i) != i for t in tasks):
                name, k = f"{base} #{k}", k + 1
            for t in tasks:
                used[(name, t)] = i
            names[m] = name
        result.append(names)
    return result


def label_records(runs: Sequence[Results], labels: Sequence[str] | None = None) -> list[ResultRecord]:
    """All records of ``runs`` with ``model`` replaced by a row label unique per run and task.

    Records of the same model name and task from different runs get the run directory's name
    appended. ``labels`` (one per run, optional) overrides the names of single-model runs.
    """
    names = _row_names(runs, labels)
    return [replace(r, model=names[i][r.model]) for i, res in enumerate(runs) for r in res.records]


def _agreed_markers(per_run: Sequence[Mapping[str, float]]) -> dict[str, float]:
    values: dict[str, set[float]] = defaultdict(set)
    for m in per_run:
        for k, v in m.items():
            values[k].add(v)
    return {k: next(iter(v)) for k, v in values.items() if len(v) == 1}


def compare(
    result_paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    labels: Sequence[str] | None = None,
    markers: Mapping[str, float] | None = None,
    needle_positions: Sequence[int] | None = None,
) -> list[Path]:
    """Write ``comparison.md`` and per-task charts into ``out_dir``; return the paths written.

    ``result_paths`` are run directories or results files. Markers (vertical lines on the charts)
    default, per task, to those set in the runs' settings (see
    :func:`lawcat.eval.report.markers_from_settings`) on whose value every run that sets them
    agrees: one distillation length is drawn, two different ones are left out.

    ``needle_positions`` (inner bin edges in tokens) adds, per task and model, a table of accuracy by where the
    needle sits in the prompt (:func:`lawcat.eval.accuracy.accuracy_by_needle_position`).
    """
    runs = load_runs(result_paths)
    if not runs:
        raise ResultsError("nothing to compare: pass at least one run directory or results file")
    names = _row_names(runs, labels)
    records = [replace(r, model=names[i][r.model]) for i, res in enumerate(runs) for r in res.records]
    run_markers = [markers_from_settings(r.run.settings) for r in runs]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    lines = ["# Comparison", "", "Accuracy in percent (mean per-sample score x 100); n = samples per cell; "
             "blank = not evaluated at that length.", "", "Runs:", ""]
    for i, res in enumerate(runs):
        where = f" - `{res.path}`" if res.path else ""
        lines.append(f"{i + 1}. {', '.join(names[i].values()) or res.run.model}{where}")
    lines.append("")
    for task in tasks_of(records):
        recs = [r for r in records if r.task == task]
        rows = {m: accuracy_by_length(recs, model=m) for m in models_of(recs)}
        lines += [f"## {task_title(task)}", "", markdown_length_table(rows)]
        task_markers = markers if markers is not None else _agreed_markers(
            [m for res, m in zip(runs, run_markers) if any(r.task == task for r in res.records)]
        )
        line_png = plot_accuracy_vs_length(
            rows, out / f"compare_{slug(task)}.png",
            title=f"{task_title(task)}: accuracy vs context length", markers=task_markers,
        )
        heat_png = plot_length_heatmap(rows, out / f"compare_{slug(task)}_heatmap.png", title=task_title(task))
        written += [line_png, heat_png]
        lines += [f"![{task_title(task)}]({line_png.name})", "", f"![{task_title(task)} heatmap]({heat_png.name})", ""]
        for m in models_of(recs) if needle_positions else ():
            table = accuracy_by_needle_position(recs, needle_positions, model=m)
            if table:
                lines += [f"### {m}: accuracy by the needle's token position", "",
                          markdown_depth_table(table, show_n=True, row_title="Needle at (tokens)")]
    written.append(atomic_write_text(out / "comparison.md", "\n".join(lines).rstrip() + "\n"))
    return written


def run_compare(paths: list[str], out: str, needle_positions: Sequence[int] | None = None) -> None:
    """Entry point for ``lawcat compare DIR... --out DIR``: run dirs or results.json paths in,
    ``comparison.md`` + PNGs out. Raises :class:`ResultsError` (a ValueError) on bad input."""
    compare(paths, out, needle_positions=needle_positions)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lawcat.eval.compare RUN... --out DIR``; returns the exit code."""
    ap = argparse.ArgumentParser(prog="lawcat compare", description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", help="run directories or results.json files")
    ap.add_argument("--out", required=True, help="directory for comparison.md and the charts")
    ap.add_argument("--label", action="append", default=None,
                    help="row label per path, in order (repeat once per path)")
    ap.add_argument("--needle-positions", default=None, metavar="EDGES",
                    help="also tabulate accuracy by the needle's token position, binned at these edges (1k,2k,4k)")
    args = ap.parse_args(argv)
    try:
        edges = parse_lengths(args.needle_positions) if args.needle_positions else None
        written = compare(args.paths, args.out, labels=args.label, needle_positions=edges)
    except ValueError as e:  # ResultsError included: missing, corrupt or unknown-format files
        print(f"lawcat compare: {e}", file=sys.stderr)
        return 2
    for p in written:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
