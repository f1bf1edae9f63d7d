"""The one sample type every task generator returns (imported by eval and distill as is)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

TASKS = ("passkey", "niah1", "niah2", "niah3", "babilong-qa2", "babilong-qa3")


@dataclass
class TaskSample:
    """One generated example.

    ``prompt`` is exactly the text the model sees (no chat template) and ``target`` the
    continuation used as the training label right after it (``prompt + target`` is a training
    sequence).  ``answer`` is what scoring compares against.

    ``n_tokens`` always means the same thing: ``len(tokenizer(prompt)["input_ids"])``, i.e. the
    prompt as the model receives it, *including* the special tokens the tokenizer adds (BOS for
    Llama-style tokenizers).  The count a task's own length rule uses (RULER counts
    ``tokenizer.tokenize`` without BOS, BABILong counts facts + background only) is stored in
    ``meta["budget_tokens"]``.
    """

    task: str  # "passkey" | "niah1" | "niah2" | "niah3" | "babilong-qa2" | "babilong-qa3"
    prompt: str  # exactly the text the model sees (plain, no chat template)
    answer: str  # gold answer used by scoring (passkey digits, niah value, babilong location)
    target: str  # continuation used as the training label after the prompt, e.g. " 41234."
    length: int  # requested length budget in tokens (the bucket name, e.g. 4096)
    n_tokens: int  # measured prompt length in the given tokenizer's tokens (incl. special tokens)
    depth: float | None  # needle depth in percent where meaningful
    meta: dict = field(default_factory=dict)  # anything else (key, seed, supporting facts, ...)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TaskSample":
        return cls(**{k: d[k] for k in ("task", "prompt", "answer", "target", "length",
                                         "n_tokens", "depth")}, meta=dict(d.get("meta") or {}))


__all__ = ["TaskSample", "TASKS"]
