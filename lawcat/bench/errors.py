"""The one error `lawcat bench` raises for a bad request (unknown measurement, missing model, ...).

It lives in its own module because the settings, the measurements and the attention-operator code all raise
it, and harness.py imports those: defining it there would make them import each other.
"""
from __future__ import annotations

from ..errors import LawcatError

__all__ = ["BenchError"]


class BenchError(LawcatError):
    pass
