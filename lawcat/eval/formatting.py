"""How lengths and scores are written in tables and plots: "32K" / "8k" column labels and "97.4" percentages."""

from __future__ import annotations

import math

__all__ = ["format_length", "format_score"]


def format_length(length: int) -> str:
    """Column label for a length bucket: 1024 -> "1K", 32768 -> "32K"; multiples of 1000
    (BABILong's and LongLoRA's buckets) use a small k, as BABILong names them: 1000 -> "1k",
    0 -> "0k". So 8000 and 8192 stay distinguishable in one table."""
    length = int(length)
    if length == 0:
        return "0k"
    if length % 1024 == 0:
        return f"{length // 1024}K"
    if length % 1000 == 0:
        return f"{length // 1000}k"
    if length >= 1024:
        return f"{length / 1024:.1f}K"
    return str(length)


def format_score(score: float | None) -> str:
    """Percent with at most one decimal, no trailing ".0": 100 -> "100", 97.4 -> "97.4"."""
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return ""
    s = f"{score:.1f}"
    return s[:-2] if s.endswith(".0") else s
