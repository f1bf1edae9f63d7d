"""One evaluated sample (ResultRecord) and what produced a run of them (RunInfo): the rows and the header of a
results file (lawcat.eval.results reads and writes the file; lawcat.eval.accuracy aggregates the rows)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from lawcat.eval.errors import ResultsError
from lawcat.eval.scoring import score as _score
from lawcat.eval.scoring import score_sample as _score_sample
from lawcat.machine import machine_info

__all__ = ["ResultRecord", "RunInfo", "RECORD_FIELDS", "REQUIRED_RECORD_FIELDS"]


@dataclass
class ResultRecord:
    """One evaluated sample: what was asked, what the model said, and its score in [0, 1]."""

    task: str
    model: str
    length: int
    n_tokens: int
    depth: float | None
    answer: Any  # str for every current task; a list of str for multi-needle RULER
    output: str
    score: float
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_sample(
        cls, sample: Any, model: str, output: str, score: float | None = None, **meta: Any
    ) -> ResultRecord:
        """Build a record from a ``TaskSample`` and the model's continuation; scores it with the
        task's own rule unless ``score`` is given. ``meta`` merges over ``sample.meta``."""
        if score is None:
            score = _score_sample(sample, output)
        return cls(
            task=sample.task,
            model=model,
            length=int(sample.length),
            n_tokens=int(sample.n_tokens),
            depth=None if sample.depth is None else float(sample.depth),
            answer=sample.answer,
            output=output,
            score=float(score),
            meta={**dict(getattr(sample, "meta", None) or {}), **meta},
        )

    def rescored(self, question: str | None = None) -> float:
        """The score this record's output gets under the current scoring rules."""
        return _score(self.task, self.output, self.answer, question or self.meta.get("question"))


RECORD_FIELDS = [f.name for f in fields(ResultRecord)]
REQUIRED_RECORD_FIELDS = [n for n in RECORD_FIELDS if n != "meta"]


@dataclass
class RunInfo:
    """What produced a results file: enough to reproduce the run and to label its plots."""

    model: str
    task: str | list[str]
    seed: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=lambda: machine_info())
    date: str | None = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunInfo:
        known = {f.name for f in fields(cls)}
        if "model" not in d or "task" not in d:
            raise ResultsError("run info needs at least 'model' and 'task'")
        kwargs = {k: v for k, v in d.items() if k in known}
        # A file without these says nothing about them: do not invent "now" or this machine.
        kwargs.setdefault("machine", {})
        kwargs.setdefault("date", None)
        extra = {k: v for k, v in d.items() if k not in known}
        info = cls(**kwargs)
        if extra:  # keep unknown keys rather than silently dropping them
            info.settings = {**info.settings, **{f"run.{k}": v for k, v in extra.items()}}
        return info
