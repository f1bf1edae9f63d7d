import pytest

from lawcat.data import (
    TASKS,
    DataError,
    TaskSample,
    make_samples,
    parse_lengths,
)
from lawcat.units import LengthError


@pytest.mark.parametrize("task", TASKS)
def test_dispatch_every_task(tok_bpe, task):
    length = 1000 if task.startswith("babilong") else 1024
    samples = make_samples(task, tok_bpe, length, 2, seed=0)
    assert len(samples) == 2 and all(isinstance(s, TaskSample) and s.task == task for s in samples)
    assert all(s.length == length for s in samples)
    if task.startswith("babilong"):  # BABILong's rule: facts + background = L - 300
        assert all(s.meta["budget_tokens"] == length - 300 for s in samples)
    else:
        assert all(s.n_tokens <= length for s in samples)
    assert make_samples(task, tok_bpe, length, 0) == []


def test_eval_and_train_defaults(tok_bpe):
    (ev,) = make_samples("niah2", tok_bpe, 1024, 1, seed=0)
    assert ev.meta["haystack"] == "essays" and ev.meta["haystack_start_word"] == 0
    (tr,) = make_samples("niah2", tok_bpe, 1024, 1, seed=0, purpose="train")
    assert tr.meta["haystack"] == "books:train" and tr.meta["haystack_start_word"] > 0
    (bl,) = make_samples("babilong-qa2", tok_bpe, 1000, 1, seed=0, purpose="train")
    assert bl.meta["background"] == "books:train"
    (be,) = make_samples("babilong-qa3", tok_bpe, 1000, 1, seed=0, prompt="bare")
    assert be.meta["background"] == "books:test" and be.prompt.startswith("<context>\n")
    (pk,) = make_samples("passkey", tok_bpe, 512, 1, seed=0, depth=25)
    assert pk.depth == 25


def test_training_refuses_eval_text(tok_bpe):
    with pytest.raises(DataError, match="reserved for evaluation"):
        make_samples("niah2", tok_bpe, 1024, 1, haystack="essays", purpose="train")
    with pytest.raises(DataError, match="reserved for evaluation"):
        make_samples("babilong-qa2", tok_bpe, 1000, 1, haystack="essays", purpose="train")


def test_registry_errors(tok_bpe):
    with pytest.raises(DataError, match="unknown task"):
        make_samples("qa2", tok_bpe, 1000, 1)
    with pytest.raises(DataError, match="purpose"):
        make_samples("passkey", tok_bpe, 1000, 1, purpose="test")
    with pytest.raises(DataError, match="unknown corpus"):
        make_samples("niah2", tok_bpe, 1000, 1, haystack="bookz")


def test_fixed_filler_tasks_ignore_the_haystack(tok_bpe):
    # One haystack setting can serve a task mix: passkey and niah1 keep their fixed filler.
    for task in ("passkey", "niah1"):
        assert make_samples(task, tok_bpe, 600, 1, haystack="books:train", purpose="train") == \
            make_samples(task, tok_bpe, 600, 1, purpose="train")
        assert make_samples(task, tok_bpe, 600, 1, haystack="books:test") == \
            make_samples(task, tok_bpe, 600, 1)


@pytest.mark.parametrize("task", TASKS)
def test_training_stream_differs_from_eval(tok_bpe, task):
    length = 1000 if task.startswith("babilong") else 600
    ev = make_samples(task, tok_bpe, length, 3, seed=0)
    tr = make_samples(task, tok_bpe, length, 3, seed=0, purpose="train")
    assert {s.prompt for s in ev}.isdisjoint(s.prompt for s in tr)
    assert [s.answer for s in ev] != [s.answer for s in tr]


def test_parse_lengths_in_the_tasks_units():
    assert parse_lengths("4k") == [4096] and parse_lengths("1K,2k", "niah1") == [1024, 2048]
    assert parse_lengths("0k,4k", "babilong-qa2") == [0, 4000] and parse_lengths("1k..4k", "babilong-qa3") == [
        1000, 2000, 4000]
    assert parse_lengths("2048,1.5k") == [1536, 2048]
    for bad in ("long", "0"):  # 0 tokens is a length for BABILong only
        with pytest.raises(LengthError):
            parse_lengths(bad)


def test_sample_dict_roundtrip(tok_bpe):
    (s,) = make_samples("niah1", tok_bpe, 1024, 1)
    d = s.to_dict()
    assert set(d) == {"task", "prompt", "answer", "target", "length", "n_tokens", "depth", "meta"}
    assert TaskSample.from_dict(d) == s
