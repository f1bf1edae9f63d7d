"""Plain-text training data: a packaged corpus or the user's own files.

Sources accepted by :func:`load_texts`:

* a corpus name from :mod:`lawcat.data.haystack` (``"books"``, ``"kjv"``, ``"wiki"``, with an
  optional ``:train`` / ``:test``); the evaluation-only ``"essays"`` is refused;
* a ``.txt`` file (one document: the whole file);
* a ``.jsonl`` file, one JSON object per line with either a ``"text"`` string, or ``"prompt"`` and
  ``"completion"`` strings (the loss then covers the completion only, see :mod:`packing`);
* a directory: every ``*.txt`` and ``*.jsonl`` file in it (not recursive), in sorted order;
* a list of any of these.

Every problem (missing path, unknown extension, empty file, malformed JSON line, wrong field
types) raises :class:`~lawcat.data.errors.DataError` naming the file, the line and the fix.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError
from .haystack import CORPUS_NAMES, check_training_corpus, load_corpus


@dataclass(frozen=True)
class TextExample:
    """``prompt + completion`` is the sequence; the loss covers ``completion`` (plain text: all)."""

    completion: str
    prompt: str = ""
    source: str = ""  # "file.jsonl:12", "books:train#3", ...

    @property
    def text(self) -> str:
        return self.prompt + self.completion


_FIX_JSONL = ('each line must be a JSON object like {"text": "..."} or '
              '{"prompt": "...", "completion": "..."}')


def _read_txt(path: Path) -> list[TextExample]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not valid UTF-8 text (byte {e.start}); save the file as UTF-8") from e
    if not text.strip():
        raise DataError(f"{path}: the file is empty; put training text in it or remove it")
    return [TextExample(completion=text, source=str(path))]


def _read_jsonl(path: Path) -> list[TextExample]:
    out: list[TextExample] = []
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise DataError(f"{path}: cannot open ({e.strerror}); check the path and permissions") from e
    with f:
        try:
            lines = list(f)
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: not valid UTF-8 text; save the file as UTF-8") from e
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue  # blank lines are harmless
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: malformed JSON ({e.msg} at column {e.colno}); {_FIX_JSONL}") from e
        if not isinstance(obj, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}; {_FIX_JSONL}")
        if "text" in obj:
            if not isinstance(obj["text"], str):
                raise DataError(f'{where}: "text" must be a string; {_FIX_JSONL}')
            if obj["text"].strip():
                out.append(TextExample(completion=obj["text"], source=where))
            continue
        if "prompt" in obj or "completion" in obj:
            p, c = obj.get("prompt"), obj.get("completion")
            if not isinstance(p, str) or not isinstance(c, str):
                raise DataError(f'{where}: "prompt" and "completion" must both be strings; {_FIX_JSONL}')
            if not c.strip():
                raise DataError(f'{where}: "completion" is empty, so there is nothing to learn; '
                                f"fill it in or drop the line")
            out.append(TextExample(completion=c, prompt=p, source=where))
            continue
        raise DataError(f'{where}: no "text" or "prompt"/"completion" field (found '
                        f'{sorted(obj)[:5]}); {_FIX_JSONL}')
    if not out:
        raise DataError(f"{path}: no usable lines (the file is empty or all texts are blank); "
                        f"add JSON lines with text")
    return out


def _read_path(path: Path) -> list[TextExample]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".txt", ".jsonl") and p.is_file())
        if not files:
            raise DataError(f"{path}: the directory has no .txt or .jsonl files; add some or point "
                            f"to a file")
        return [ex for p in files for ex in _read_path(p)]
    if not path.exists():
        raise DataError(f"{path}: no such file or directory; check the path (corpus names are "
                        f"{', '.join(n for n in CORPUS_NAMES if n != 'essays')})")
    if path.suffix == ".txt":
        return _read_txt(path)
    if path.suffix == ".jsonl":
        return _read_jsonl(path)
    raise DataError(f"{path}: unsupported file type '{path.suffix}'; use .txt (plain text) or "
                    f".jsonl (one JSON object per line)")


def load_texts(source) -> list[TextExample]:
    """Training texts from a corpus name, a file, a directory, or a list of these (see module doc)."""
    if isinstance(source, (list, tuple)):
        if not source:
            raise DataError("the list of text sources is empty; give a corpus name or file paths")
        return [ex for s in source for ex in load_texts(s)]
    if isinstance(source, os.PathLike):
        return _read_path(Path(source))
    if not isinstance(source, str):
        raise DataError(f"cannot read training text from a {type(source).__name__}; give a corpus "
                        f"name, a path or a list of them")
    if source.partition(":")[0] in CORPUS_NAMES and not Path(source).exists():
        corpus = check_training_corpus(load_corpus(source))
        return [TextExample(completion=d, source=f"{corpus.name}#{i}")
                for i, d in enumerate(corpus.documents)]
    return _read_path(Path(source))


__all__ = ["TextExample", "load_texts"]
