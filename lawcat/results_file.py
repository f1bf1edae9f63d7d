"""The JSON envelope every lawcat results file shares (`lawcat eval`'s results.json, `lawcat bench`'s bench.json).

    {"format": "<kind>", "version": <int>, "run": {...where and how it was measured...}, "records": [...], ...}

This module knows the envelope only: reading (plain or gzipped, the way committed results keep large per-sample
files), checking format and version, writing atomically with JSON-safe values. What a run or a record holds, and
how runs merge, belongs to the module that owns the format (lawcat.eval.results, lawcat.bench.report).
"""
from __future__ import annotations

import gzip
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes

__all__ = ["ResultsFileError", "jsonable", "locate", "read_envelope", "write_envelope"]


class ResultsFileError(ValueError):
    """A results file that cannot be read: missing, not JSON, not gzip, another format or a newer version."""


def jsonable(x: Any) -> Any:
    """JSON-safe copy: tuples and sets -> lists, numpy/torch scalars -> Python, NaN/inf -> None, paths -> str,
    anything else -> str."""
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in x]
    if hasattr(x, "item") and callable(x.item):  # numpy / torch scalars
        try:
            return jsonable(x.item())
        except (TypeError, ValueError):
            pass
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    return str(x)


def locate(path: str | os.PathLike, filename: str) -> Path:
    """The results file `path` names: `path` itself when it is a .json or .json.gz file, else the folder's
    `filename`, or its `filename`.gz when only that exists (committed results keep large files gzipped)."""
    path = Path(path)
    if path.name.endswith((".json", ".json.gz")) and not path.is_dir():
        return path
    plain, packed = path / filename, path / (filename + ".gz")
    return packed if packed.is_file() and not plain.is_file() else plain


def write_envelope(path: str | os.PathLike, fmt: str, version: int, run: Mapping, records: list,
                   **sections) -> Path:
    """Write {"format", "version", "run", <sections...>, "records"} to `path` atomically (gzipped when the name
    ends in .gz) and return the path. Values go through :func:`jsonable`, so the file is strict JSON."""
    doc = {"format": fmt, "version": version, "run": jsonable(run), **jsonable(sections), "records": jsonable(records)}
    data = (json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    path = Path(path)
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)  # mtime 0: the same results give the same bytes
    return atomic_write_bytes(path, data)


def read_envelope(path: str | os.PathLike, fmt: str, max_version: int, *, error=ResultsFileError,
                  made_by: str = "lawcat") -> dict:
    """The document at `path` (a .json or .json.gz file) after checking its envelope; raises `error` (the
    caller's exception class, ResultsFileError by default) with one sentence saying what is wrong.

    `made_by` names the command that writes this format, for the messages."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path} does not exist: give a results file written by `{made_by}` or its folder") from None
    except IsADirectoryError:
        raise error(f"{path} is a folder; give a results file written by `{made_by}`") from None
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise error(f"{path} is not a readable gzip file ({e}); it is truncated or corrupt") from None
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise error(f"{path} is not valid JSON ({e}); it is truncated or corrupt: run `{made_by}` again") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        found = doc.get("format") if isinstance(doc, dict) else None
        raise error(f"{path} is not a {fmt} file (its format is {found!r}); give a file written by `{made_by}`")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= max_version:
        raise error(f"{path} has {fmt} version {version!r}; this lawcat reads versions 1 to {max_version}: "
                    f"upgrade lawcat")
    if not isinstance(doc.get("run"), dict) or not isinstance(doc.get("records"), list):
        raise error(f"{path} lacks its 'run' object or its 'records' list; it is corrupt: run `{made_by}` again")
    return doc
