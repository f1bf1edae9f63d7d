"""Accuracy from result records: per length, per (length, depth), and per model and task.

Every aggregate is accuracy in percent, 0..100: the mean of the per-sample scores (each in [0, 1]) x 100,
as RULER and BABILong report (see :mod:`lawcat.eval.results` for the record conventions). Each :class:`Cell`
carries its sample count, so a table can show how much a number rests on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lawcat.units import format_length

if TYPE_CHECKING:
    from lawcat.eval.records import ResultRecord

__all__ = [
    "Cell",
    "DepthTable",
    "accuracy_by_length",
    "accuracy_by_length_depth",
    "accuracy_by_needle_position",
    "needle_position",
    "models_of",
    "summarize",
    "tasks_of",
]


@dataclass(frozen=True)
class Cell:
    """An aggregate over ``n`` samples: ``score`` is accuracy in percent (0..100)."""

    score: float
    n: int
    mean_tokens: float | None = None


def _cell(recs: Sequence[ResultRecord]) -> Cell:
    n = len(recs)
    tokens = [r.n_tokens for r in recs if r.n_tokens is not None]
    return Cell(
        score=100.0 * sum(r.score for r in recs) / n,
        n=n,
        mean_tokens=sum(tokens) / len(tokens) if tokens else None,
    )


def _select(records: Iterable[ResultRecord], task: str | None, model: str | None) -> list[ResultRecord]:
    return [r for r in records if (task is None or r.task == task) and (model is None or r.model == model)]


def models_of(records: Iterable[ResultRecord]) -> list[str]:
    """Model names in order of first appearance."""
    return list(dict.fromkeys(r.model for r in records))


def tasks_of(records: Iterable[ResultRecord]) -> list[str]:
    """Task names in order of first appearance."""
    return list(dict.fromkeys(r.task for r in records))


def accuracy_by_length(
    records: Iterable[ResultRecord], *, task: str | None = None, model: str | None = None
) -> dict[int, Cell]:
    """``{length: Cell}`` sorted by length, over the records of ``task``/``model`` (None = all).

    Mixing tasks or models in one call averages them together; pass both to get one curve.
    """
    groups: dict[int, list[ResultRecord]] = defaultdict(list)
    for r in _select(records, task, model):
        groups[r.length].append(r)
    return {length: _cell(groups[length]) for length in sorted(groups)}


@dataclass
class DepthTable:
    """Accuracy on a length x depth grid.

    ``depths`` are the row keys (ascending): the exact depths when there are few of them,
    otherwise the centres of equal-width depth bins; ``labels`` are their display names.
    """

    lengths: list[int]
    depths: list[float]
    labels: list[str]
    cells: dict[tuple[int, float], Cell]

    def __bool__(self) -> bool:
        return bool(self.cells)


def _pct(x: float) -> str:
    return f"{x:.0f}%" if float(x).is_integer() else f"{x:.1f}%"


def accuracy_by_length_depth(
    records: Iterable[ResultRecord],
    *,
    task: str | None = None,
    model: str | None = None,
    max_depths: int = 11,
    n_bins: int = 10,
) -> DepthTable:
    """Accuracy per (length, depth) with counts. Records without a depth are left out.

    If there are at most ``max_depths`` distinct depths (a fixed depth grid) each is its own row;
    otherwise (uniformly drawn depths, RULER's 40-point grid) depths in percent are put into
    ``n_bins`` equal bins over [0, 100], labelled by their range, keyed by their centre.
    """
    recs = [r for r in _select(records, task, model) if r.depth is not None]
    distinct = sorted({float(r.depth) for r in recs})
    if len(distinct) <= max_depths:
        key_of = {d: d for d in distinct}
        depths = distinct
        labels = [_pct(d) for d in distinct]
    else:
        width = 100.0 / n_bins

        def bin_of(d: float) -> int:
            return min(max(int(d // width), 0), n_bins - 1)  # 100% falls into the last bin

        used = sorted({bin_of(d) for d in distinct})
        key_of = {d: (bin_of(d) + 0.5) * width for d in distinct}
        depths = [(b + 0.5) * width for b in used]
        labels = [f"{b * width:.0f}–{(b + 1) * width:.0f}%" for b in used]
    groups: dict[tuple[int, float], list[ResultRecord]] = defaultdict(list)
    for r in recs:
        groups[(r.length, key_of[float(r.depth)])].append(r)
    lengths = sorted({r.length for r in recs})
    return DepthTable(lengths=lengths, depths=depths, labels=labels, cells={k: _cell(v) for k, v in groups.items()})


def needle_position(record: ResultRecord) -> float | None:
    """Roughly where the needle sits, in tokens from the prompt's start: its depth (the depth the sample actually
    got, ``meta["actual_depth"]``, where the generator records one) times the prompt's length. The instruction
    and question around the haystack make it a few dozen tokens off, which is small against bins of ~1K tokens.
    None for a record without a depth."""
    depth = record.meta.get("actual_depth", record.depth) if record.meta else record.depth
    if depth is None or record.n_tokens is None:
        return None
    return float(depth) / 100.0 * record.n_tokens


def accuracy_by_needle_position(
    records: Iterable[ResultRecord],
    edges: Sequence[int],
    *,
    task: str | None = None,
    model: str | None = None,
) -> DepthTable:
    """Accuracy per (length, needle token position bin), with counts: whether a long-context miss is a needle
    far from the question (decayed memory) or a needle written late in the prompt (a position never trained on).

    ``edges`` are the inner bin edges in tokens, ascending (``[1024, 2048]`` gives 0-1K, 1K-2K and 2K on); rows
    are keyed by bin index. Records without a depth are left out."""
    edges = [int(e) for e in edges]
    if not edges or any(b <= a for a, b in zip(edges, edges[1:])) or edges[0] <= 0:
        raise ValueError(f"needle position edges must be positive and ascending, got {edges}")
    groups: dict[tuple[int, float], list[ResultRecord]] = defaultdict(list)
    for r in _select(records, task, model):
        pos = needle_position(r)
        if pos is not None:
            groups[(r.length, float(sum(pos >= e for e in edges)))].append(r)
    names = ["0", *(format_length(e) for e in edges)]
    labels = [f"{names[i]}-{names[i + 1]}" for i in range(len(edges))] + [f"{names[-1]}+"]
    used = sorted({k[1] for k in groups})
    return DepthTable(lengths=sorted({k[0] for k in groups}), depths=used, labels=[labels[int(b)] for b in used],
                      cells={k: _cell(v) for k, v in groups.items()})


def summarize(records: Iterable[ResultRecord]) -> dict[str, dict[str, dict[int, Cell]]]:
    """``{model: {task: {length: Cell}}}`` for every model and task present."""
    records = list(records)
    return {
        m: {t: accuracy_by_length(records, task=t, model=m) for t in tasks_of(_select(records, None, m))}
        for m in models_of(records)
    }
