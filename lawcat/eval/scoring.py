"""Per-sample scoring, exactly as each original benchmark scores.

Every scorer returns a float in [0, 1] for one sample; aggregation (and the x100 that the
benchmarks report) lives in :mod:`lawcat.eval.results`.

The rules are the ones in ``specs/benchmarks.md``:

* **passkey** (Mohtashami & Jaggi 2023, §1a): the first run of digits in the continuation,
  read as an integer, must equal the pass key. No digits -> wrong. We use this rather than
  LongLoRA's exact token match because it does not depend on how a tokenizer splits digits.
* **niah1/2/3** (RULER ``string_match_all``, §2f): post-process the prediction (strip, every
  control character ``\\x00-\\x1f`` -> ``\\n``, strip again), then the score is the fraction
  of references that occur in it as a case-insensitive substring.
* **babilong-qa2/qa3** (booydar/babilong ``metrics.compare_answers``, §5e): lowercase, keep the
  text before the first ``.``, cut at ``<context>`` and ``<example>``; collect the location
  labels found in what is left, drop those that occur in the question; correct iff exactly
  the target remains. BABILong also cuts at ``'Question'`` *after* lowercasing, which can never
  match; we keep that behaviour (so ``"... question ..."`` is not cut) to score identically.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "TASKS",
    "BABILONG_LABELS",
    "score",
    "score_sample",
    "score_passkey",
    "ruler_postprocess",
    "string_match_all",
    "babilong_preprocess",
    "babilong_compare_answers",
    "check_task",
]

#: The task names this module scores, in the order they are usually reported.
TASKS: tuple[str, ...] = ("passkey", "niah1", "niah2", "niah3", "babilong-qa2", "babilong-qa3")

#: BABILong's answer vocabulary for QA2/QA3 (``TASK_LABELS`` in babilong/metrics.py).
BABILONG_LABELS: tuple[str, ...] = ("bathroom", "bedroom", "garden", "hallway", "kitchen", "office")

_FIRST_INT = re.compile(r"\d+")
_CONTROL = re.compile(r"[\x00-\x1f]")


def check_task(task: str) -> str:
    """Return ``task`` if we can score it, else raise a ValueError naming the valid tasks."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
    return task


# ----------------------------------------------------------------------------- passkey


def score_passkey(output: str, answer: str | int) -> float:
    """1.0 iff the first integer in ``output`` equals the pass key ``answer``.

    Integers are compared as numbers, as the original does (``int(match) == pass_key``), so a
    leading zero does not matter. Only the *first* integer counts: "12 or 34567" is wrong for 34567.
    """
    try:
        key = int(str(answer).strip())
    except ValueError:
        raise ValueError(f"passkey answer must be an integer, got {answer!r}") from None
    match = _FIRST_INT.search(output)
    return 1.0 if match is not None and int(match.group()) == key else 0.0


# ----------------------------------------------------------------------------- RULER


def ruler_postprocess(prediction: str) -> str:
    """RULER's ``postprocess_pred``: strip, control characters -> newline, strip."""
    return _CONTROL.sub("\n", prediction.strip()).strip()


def string_match_all(prediction: str, references: str | Sequence[str]) -> float:
    """RULER's per-sample ``string_match_all``: the fraction of references found in the
    post-processed prediction, case-insensitively, anywhere in the text."""
    refs = [references] if isinstance(references, str) else list(references)
    if not refs:
        raise ValueError("string_match_all needs at least one reference answer")
    pred = ruler_postprocess(prediction).lower()
    return sum(1.0 for r in refs if r.lower() in pred) / len(refs)


# ----------------------------------------------------------------------------- BABILong


def babilong_preprocess(output: str) -> str:
    """BABILong's ``preprocess_output``: lowercase, first sentence, cut at a repeated prompt."""
    out = output.lower()
    out = out.split(".")[0]
    out = out.split("<context>")[0]
    out = out.split("<example>")[0]
    # BABILong also splits on 'Question' here; after lower() that never matches. Kept as a no-op
    # on purpose: scoring must agree with the published numbers, quirks included.
    out = out.split("Question")[0]
    return out


def babilong_compare_answers(
    target: str, output: str, question: str, labels: Sequence[str] = BABILONG_LABELS
) -> bool:
    """BABILong's ``compare_answers``: correct iff the labels in the (preprocessed) output,
    minus those mentioned in the question, are exactly ``{target}``."""
    out = babilong_preprocess(output)
    target = target.lower().strip()
    label_set = {label.lower() for label in labels}
    in_question = {label for label in label_set if label in question.lower()}
    in_output = {label for label in label_set if label in out} - in_question
    return in_output == {target}


# ----------------------------------------------------------------------------- dispatch


def _passkey(output: str, answer: Any, question: str | None) -> float:
    return score_passkey(output, answer)


def _ruler(output: str, answer: Any, question: str | None) -> float:
    return string_match_all(output, answer)


def _babilong(output: str, answer: Any, question: str | None) -> float:
    if question is None:
        raise ValueError(
            "BABILong scoring needs the question (labels named in it are not counted as answers); "
            "pass question=... or use score_sample()"
        )
    return 1.0 if babilong_compare_answers(str(answer), output, question) else 0.0


_SCORERS: dict[str, Callable[[str, Any, str | None], float]] = {
    "passkey": _passkey,
    "niah1": _ruler,
    "niah2": _ruler,
    "niah3": _ruler,
    "babilong-qa2": _babilong,
    "babilong-qa3": _babilong,
}
assert tuple(_SCORERS) == TASKS


def score(task: str, output: str, answer: str | Sequence[str], question: str | None = None) -> float:
    """Score one model continuation ``output`` against the reference ``answer``; in [0, 1].

    ``answer`` is the pass key for passkey, the needle value (or a list of values) for niah*,
    and the target location for babilong-*. ``question`` is required for babilong-* only.
    """
    return _SCORERS[check_task(task)](output, answer, question)


def _question_of(sample: Any) -> str | None:
    meta = getattr(sample, "meta", None) or {}
    if meta.get("question") is not None:
        return str(meta["question"])
    # BABILong prompts end with "Question: {question}" (specs/benchmarks.md §5e).
    prompt = getattr(sample, "prompt", "") or ""
    idx = prompt.rfind("Question:")
    return prompt[idx + len("Question:"):].lstrip() if idx >= 0 else None


def score_sample(sample: Any, output: str) -> float:
    """Score ``output`` for a ``lawcat.data.sample.TaskSample`` (or anything shaped like one).

    The BABILong question is taken from ``sample.meta["question"]`` if present, otherwise from
    the text after the last ``Question:`` in the prompt.
    """
    question = _question_of(sample) if sample.task.startswith("babilong") else None
    return score(sample.task, output, sample.answer, question)
