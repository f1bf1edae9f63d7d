"""Errors raised by the data layer.

Every problem a user can cause with their data (a wrong path, an empty file, a malformed JSONL
line, a missing corpus package, a length too small for the task's fixed text) is reported as a
``DataError``: one sentence that names the problem and the fix.  It subclasses ``ValueError`` so
callers that already catch ``ValueError`` keep working.
"""

from __future__ import annotations


class DataError(ValueError):
    """A problem with input data or data settings, with a message that says how to fix it."""


def check_choice(value, choices: tuple, what: str):
    """``value`` if it is one of ``choices``, else a DataError naming ``what`` and listing them."""
    if value not in choices:
        raise DataError(f"unknown {what} {value!r}; use one of {', '.join(choices)}")
    return value


__all__ = ["DataError", "check_choice"]
