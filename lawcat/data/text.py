"""Training text: a packaged corpus or the user's own local files and `datasets` folders.

Sources accepted by :func:`load_texts`:

* a corpus name from :mod:`lawcat.data.haystack` (``"books"``, ``"kjv"``, ``"wiki"``, with an
  optional ``:train`` / ``:test``); the evaluation-only ``"essays"`` is refused;
* a ``.txt`` file (one document: the whole file);
* a ``.jsonl`` file, one JSON object per line, each one of: a ``"text"`` string; ``"prompt"`` and
  ``"completion"`` strings (the completion loss then covers the completion only); a chat,
  ``"messages"``: a list of ``{"role": ..., "content": ...}``, which is rendered with the teacher
  tokenizer's chat template when encoded, the completion loss covering the assistant turns
  (:class:`ChatExample`, :mod:`packing`);
* ``.parquet``, ``.arrow`` and ``.json`` files and folders written by Hugging Face ``datasets``
  (``save_to_disk``: a Dataset, or a DatasetDict whose ``train`` split, or only split, is read),
  with the same fields as columns; the optional ``datasets`` package reads them (``pip install
  'lawcat[data]'``);
* a directory of such files (not recursive), in sorted order;
* a list of any of these.

Only local data is read: a name that looks like a hub dataset (``owner/name``) is refused, never
downloaded. Every problem (missing path, unknown extension, empty file, malformed JSON line or row,
wrong field types) raises :class:`~lawcat.data.errors.DataError` naming the file, the line or row
and the fix.
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


@dataclass(frozen=True)
class ChatExample:
    """A conversation, ``((role, content), ...)``, rendered by the tokenizer's chat template when it is encoded;
    the completion loss covers the assistant turns."""

    messages: tuple[tuple[str, str], ...]
    source: str = ""


_FIX_ROW = ('each line or row must hold {"text": "..."}, {"prompt": "...", "completion": "..."} or '
            '{"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}')
_FIELDS = ("text", "prompt", "completion", "messages")


def _read_txt(path: Path) -> list[TextExample]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not valid UTF-8 text (byte {e.start}); save the file as UTF-8") from e
    if not text.strip():
        raise DataError(f"{path}: the file is empty; put training text in it or remove it")
    return [TextExample(completion=text, source=str(path))]


def _chat(messages, where: str) -> ChatExample:
    if not isinstance(messages, list) or not messages:
        raise DataError(f'{where}: "messages" must be a non-empty list of {{"role", "content"}} objects; {_FIX_ROW}')
    turns = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise DataError(f'{where}: message {i} must be an object with string "role" and "content" (got '
                            f'{json.dumps(m, default=str)[:80]}); {_FIX_ROW}')
        turns.append((m["role"], m["content"]))
    if not any(role == "assistant" and content.strip() for role, content in turns):
        raise DataError(f'{where}: the chat has no non-empty "assistant" message, so there is nothing to learn; '
                        "add the assistant's answer or drop the line")
    return ChatExample(tuple(turns), source=where)


def _example(obj, where: str) -> TextExample | ChatExample | None:
    """One JSONL line or dataset row as an example (None: blank text, skipped)."""
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}; {_FIX_ROW}")
    if obj.get("messages") is not None:
        return _chat(obj["messages"], where)
    if obj.get("text") is not None:
        if not isinstance(obj["text"], str):
            raise DataError(f'{where}: "text" must be a string; {_FIX_ROW}')
        return TextExample(completion=obj["text"], source=where) if obj["text"].strip() else None
    if obj.get("prompt") is not None or obj.get("completion") is not None:
        p, c = obj.get("prompt"), obj.get("completion")
        if not isinstance(p, str) or not isinstance(c, str):
            raise DataError(f'{where}: "prompt" and "completion" must both be strings; {_FIX_ROW}')
        if not c.strip():
            raise DataError(f'{where}: "completion" is empty, so there is nothing to learn; '
                            f"fill it in or drop the line")
        return TextExample(completion=c, prompt=p, source=where)
    raise DataError(f'{where}: no "text", "prompt"/"completion" or "messages" field (found '
                    f'{sorted(obj)[:5]}); {_FIX_ROW}')


def _usable(examples: list, path: Path) -> list:
    if not examples:
        raise DataError(f"{path}: no usable lines or rows (it is empty or all texts are blank); "
                        f"add text")
    return examples


def _read_jsonl(path: Path) -> list[TextExample | ChatExample]:
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise DataError(f"{path}: cannot open ({e.strerror}); check the path and permissions") from e
    with f:
        try:
            lines = list(f)
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: not valid UTF-8 text; save the file as UTF-8") from e
    out = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue  # blank lines are harmless
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: malformed JSON ({e.msg} at column {e.colno}); {_FIX_ROW}") from e
        example = _example(obj, where)
        if example is not None:
            out.append(example)
    return _usable(out, path)


# ---- Hugging Face `datasets` (optional) -------------------------------------------------------------------------
DATASET_SUFFIXES = (".parquet", ".arrow", ".json")
TEXT_SUFFIXES = (".txt", ".jsonl")


def _datasets():
    try:
        import datasets
    except ImportError as e:
        raise DataError("reading a Hugging Face `datasets` folder or a .parquet/.arrow/.json file needs the "
                        "`datasets` package: pip install 'lawcat[data]' (or convert the data to .jsonl)") from e
    return datasets


def _is_saved_dataset(path: Path) -> bool:
    """A folder written by `save_to_disk` (a Dataset: state.json; a DatasetDict: dataset_dict.json)."""
    return (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()


def _load_saved_dataset(path: Path):
    datasets = _datasets()
    try:
        ds = datasets.load_from_disk(str(path))
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable `datasets` folder ({e}); write it with save_to_disk") from e
    if isinstance(ds, datasets.DatasetDict):
        splits = list(ds)
        if "train" not in ds and len(splits) != 1:
            raise DataError(f"{path}: a DatasetDict with splits {splits} and no 'train'; point data.source at "
                            f"one split's folder ({path / splits[0]})")
        ds = ds["train"] if "train" in ds else ds[splits[0]]
    return ds


def _load_dataset_file(path: Path):
    datasets = _datasets()
    try:
        if path.suffix == ".arrow":
            return datasets.Dataset.from_file(str(path))
        if path.suffix == ".parquet":
            return datasets.Dataset.from_parquet(str(path))
        return datasets.Dataset.from_json(str(path))
    except Exception as e:  # pyarrow and datasets raise many types for a damaged or foreign file
        raise DataError(f"{path}: could not be read as a {path.suffix[1:]} dataset file ({type(e).__name__}: "
                        f"{e}); check the file") from e


def _dataset_examples(ds, path: Path) -> list[TextExample | ChatExample]:
    columns = [c for c in _FIELDS if c in ds.column_names]
    if not columns:
        raise DataError(f'{path}: no "text", "prompt"/"completion" or "messages" column (found '
                        f"{ds.column_names[:8]}); rename the column that holds the training text")
    out = []
    for i, row in enumerate(ds.select_columns(columns)):
        example = _example(row, f"{path}[row {i}]")
        if example is not None:
            out.append(example)
    return _usable(out, path)


def _read_file(path: Path) -> list[TextExample | ChatExample]:
    if path.suffix == ".txt":
        return _read_txt(path)
    if path.suffix == ".jsonl":
        return _read_jsonl(path)
    if path.suffix in DATASET_SUFFIXES:
        return _dataset_examples(_load_dataset_file(path), path)
    raise DataError(f"{path}: unsupported file type '{path.suffix}'; use .txt (plain text), .jsonl (one JSON "
                    f"object per line) or a `datasets` file ({', '.join(DATASET_SUFFIXES)})")


def _read_path(path: Path) -> list[TextExample | ChatExample]:
    if path.is_dir():
        if _is_saved_dataset(path):
            return _dataset_examples(_load_saved_dataset(path), path)
        files = sorted(p for p in path.iterdir() if p.suffix in TEXT_SUFFIXES + DATASET_SUFFIXES and p.is_file())
        if not files:
            raise DataError(f"{path}: the directory has no .txt, .jsonl or `datasets` files "
                            f"({', '.join(DATASET_SUFFIXES)}) and is no save_to_disk folder; add some or point "
                            f"to a file")
        return [ex for p in files for ex in _read_file(p)]
    if not path.exists():
        raise DataError(f"{path}: no such file or directory; check the path (corpus names are "
                        f"{', '.join(n for n in CORPUS_NAMES if n != 'essays')}; data is read from local paths only, "
                        "never downloaded)")
    return _read_file(path)


def _looks_like_hub_name(source: str) -> bool:
    """`owner/name` or `hf://...`: what one would pass to datasets.load_dataset to download."""
    if source.startswith("hf://"):
        return True
    parts = source.split("/")
    return (len(parts) == 2 and all(parts) and not source.startswith(("~", "."))
            and not Path(source).suffix and not Path(source).exists())


def load_texts(source) -> list[TextExample | ChatExample]:
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
    if _looks_like_hub_name(source):
        raise DataError(f"{source!r} is not a local path, and lawcat never downloads data: on a machine with "
                        "access, save the dataset with datasets' save_to_disk (or as .parquet/.jsonl files) and "
                        "give that folder")
    return _read_path(Path(source))


__all__ = ["ChatExample", "TextExample", "load_texts"]
