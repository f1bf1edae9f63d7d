"""How scores are written in tables and plots: "97.4" percentages (lengths: lawcat.units.format_length)."""

from __future__ import annotations

import math

__all__ = ["format_score"]


def format_score(score: float | None) -> str:
    """Percent with at most one decimal, no trailing ".0": 100 -> "100", 97.4 -> "97.4"."""
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return ""
    s = f"{score:.1f}"
    return s[:-2] if s.endswith(".0") else s
