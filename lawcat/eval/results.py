"""Result records, the ``results.json`` file, and aggregation.

Conventions (one for every task, passkey included):

* A record's ``score`` is the per-sample score in **[0, 1]** as returned by
  :func:`lawcat.eval.scoring.score` (1/0 for passkey and BABILong, a fraction for RULER with
  several needles).
* Every aggregate (:class:`Cell`, tables, plots) is **accuracy in percent, 0..100**: the mean
  of the per-sample scores x 100, as RULER and BABILong report. (The LAWCAT paper prints
  passkey as 0..1 in Table 2; multiply by 100 to compare.)
* ``length`` is the requested length bucket in tokens (the column a table shows), and
  ``n_tokens`` the measured prompt length; a cell also reports the mean ``n_tokens``.

File format (``results.json``, UTF-8 JSON, written atomically; the envelope of :mod:`lawcat.results_file`)::

    {"format": "lawcat-results", "version": 1,
     "run": {"model": ..., "task": ..., "seed": ..., "settings": {...},
             "machine": {...}, "date": "2026-...Z"},
     "summary": {"<model>": {"<task>": {"<length>": {"score": .., "n": .., "mean_tokens": ..}}}},
     "records": [{"task": .., "model": .., "length": .., "n_tokens": .., "depth": ..,
                  "answer": .., "output": .., "score": .., "meta": {...}}, ...]}

``summary`` is a convenience for people reading the file; :func:`read_results` ignores it and
recomputes everything from ``records``.

This module holds the file; its rows and header are :mod:`lawcat.eval.records`, the aggregates are computed
in :mod:`lawcat.eval.accuracy` and written as labels by :mod:`lawcat.eval.formatting`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lawcat.eval.accuracy import models_of, summarize, tasks_of
from lawcat.eval.errors import ResultsError, ResultsNotFoundError
from lawcat.eval.records import REQUIRED_RECORD_FIELDS, ResultRecord, RunInfo
from lawcat.results_file import locate, read_envelope, write_envelope

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "RESULTS_FILENAME",
    "Results",
    "merge_runs",
    "read_results",
    "resolve_results_path",
    "write_results",
]

FORMAT = "lawcat-results"
FORMAT_VERSION = 1
RESULTS_FILENAME = "results.json"


@dataclass
class Results:
    """A read (or about-to-be-written) results file."""

    run: RunInfo
    records: list[ResultRecord]
    path: Path | None = None

    @property
    def models(self) -> list[str]:
        return models_of(self.records)

    @property
    def tasks(self) -> list[str]:
        return tasks_of(self.records)


# ----------------------------------------------------------------------------- read / write


def resolve_results_path(path: str | os.PathLike) -> Path:
    """``path`` itself if it names a ``.json`` (or gzipped ``.json.gz``) file, else the folder's ``results.json``,
    or its ``results.json.gz`` when only that exists (committed results keep their per-sample records gzipped)."""
    return locate(path, RESULTS_FILENAME)


def _summary_dict(records: Sequence[ResultRecord]) -> dict[str, Any]:
    """The file's ``summary`` block: :func:`summarize` with JSON keys (lengths as strings, cells as dicts)."""
    return {
        m: {t: {str(length): asdict(c) for length, c in by_len.items()} for t, by_len in per_task.items()}
        for m, per_task in summarize(records).items()
    }


def write_results(
    path: str | os.PathLike,
    records: Iterable[ResultRecord],
    run_info: RunInfo | Mapping[str, Any],
) -> Path:
    """Write ``results.json`` atomically and return its path.

    ``path`` is a run/output directory (the file goes to ``path/results.json``) or a path ending
    in ``.json``. ``run_info`` is a :class:`RunInfo` or a dict with at least model and task.
    """
    records = list(records)
    for i, r in enumerate(records):
        if not isinstance(r, ResultRecord):
            raise TypeError(f"record {i} is a {type(r).__name__}, expected ResultRecord")
        if not (0.0 <= r.score <= 1.0):
            raise ValueError(f"record {i} has score {r.score}; scores are per sample in [0, 1]")
    run = run_info if isinstance(run_info, RunInfo) else RunInfo.from_dict(run_info)
    return write_envelope(resolve_results_path(path), FORMAT, FORMAT_VERSION, asdict(run),
                          [asdict(r) for r in records], summary=_summary_dict(records))


def read_results(path: str | os.PathLike) -> Results:
    """Read a results file written by :func:`write_results` (a directory or the file itself).

    Raises :class:`ResultsError` (a ValueError; :class:`ResultsNotFoundError` is also a
    FileNotFoundError) with one sentence saying what is wrong and what to do.
    """
    file = resolve_results_path(path)
    if not file.is_file():
        raise ResultsNotFoundError(
            f"no results file at {file}: pass a run directory containing {RESULTS_FILENAME} "
            f"or the path of a results .json file (run `lawcat eval ... --out DIR` to make one)"
        )
    doc = read_envelope(file, FORMAT, FORMAT_VERSION, error=ResultsError, made_by="lawcat eval")
    try:
        run = RunInfo.from_dict(doc["run"])
    except (ResultsError, TypeError) as e:
        raise ResultsError(f"{file}: bad run info ({e})") from None
    records = []
    for i, d in enumerate(doc["records"]):
        missing = [k for k in REQUIRED_RECORD_FIELDS if not isinstance(d, dict) or k not in d]
        if missing:
            raise ResultsError(f"{file}: record {i} lacks {', '.join(missing)}; the file is corrupt")
        try:
            records.append(
                ResultRecord(
                    task=str(d["task"]),
                    model=str(d["model"]),
                    length=int(d["length"]),
                    n_tokens=int(d["n_tokens"]),
                    depth=None if d["depth"] is None else float(d["depth"]),
                    answer=d["answer"],
                    output=str(d["output"]),
                    score=float(d["score"]),
                    meta=dict(d.get("meta") or {}),
                )
            )
        except (TypeError, ValueError) as e:
            raise ResultsError(f"{file}: record {i} has a bad value ({e}); the file is corrupt") from None
    return Results(run=run, records=records, path=file)


def merge_runs(runs: Sequence[Results]) -> tuple[list[ResultRecord], RunInfo]:
    """One model's evaluation of one task split over several runs (e.g. GPU calls) as one run.

    A length present in several runs is taken from the last run that has it. The merged run info is the first
    run's, with every length and, under settings["merged_from"], each source's path, lengths and date."""
    if not runs:
        raise ResultsError("nothing to merge: give at least one results file")
    keys = {(r.run.model, json.dumps(r.run.task)) for r in runs}
    if len(keys) != 1:
        raise ResultsError(f"these results mix models or tasks ({sorted(keys)}); merge one model and task at a time")
    by_length: dict[int, list[ResultRecord]] = {}
    for run in runs:
        for length in sorted({rec.length for rec in run.records}):
            by_length[length] = [rec for rec in run.records if rec.length == length]
    records = [rec for length in sorted(by_length) for rec in by_length[length]]
    settings = {**runs[0].run.settings, "lengths": sorted(by_length),
                "merged_from": [{"path": str(run.path), "lengths": sorted({r.length for r in run.records}),
                                 "date": run.run.date, "settings": run.run.settings} for run in runs]}
    first = runs[0].run
    return records, RunInfo(model=first.model, task=first.task, seed=first.seed, settings=settings,
                            machine=first.machine, date=first.date)
