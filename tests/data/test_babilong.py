import random

import pytest

from lawcat.data import DataError
from lawcat.data.babilong import babilong_prompt, make_babilong_samples, sample_background
from lawcat.data.haystack import load_corpus

from ._replay import check_answer

# benchmarks.md §5e, written out by hand.
QA2_FULL = (
    "I give you context with the facts about locations and actions of different persons hidden in "
    "some random text and a question.You need to answer the question based only on the information "
    "from the facts.\nIf a person got an item in the first location and travelled to the second "
    "location the item is also in the second location. If a person dropped an item in the first "
    "location and moved to the second location the item remains in the first location.\n\n"
    "<example>\nCharlie went to the kitchen. Charlie got a bottle. Charlie moved to the balcony. "
    "Where is the bottle?\nAnswer: The bottle is in the balcony.\n</example>\n<example>\nAlan moved "
    "to the garage. Alan got a screw driver. Alan moved to the kitchen. Where is the screw driver?\n"
    "Answer: The screw driver is in the kitchen.\n</example>\n\n"
    "Always return your answer in the following format: The \u2019item\u2019 is in \u2019location\u2019. "
    "Do not write anything else after that.\n\n"
    "<context>\nMary went to the garden.\n</context>\n\nQuestion: Where is the milk?"
)
QA3_FULL = (
    "I give you context with the facts about locations and actions of different persons hidden in "
    "some random text and a question. You need to answer the question based only on the information "
    "from the facts.\nIf a person got an item in the first location and travelled to the second "
    "location the item is also in the second location. If a person dropped an item in the first "
    "location and moved to the second location the item remains in the first location.\n\n"
    "<example>\nJohn journeyed to the bedroom. Mary grabbed the apple. Mary went back to the "
    "bathroom. Daniel journeyed to the bedroom. Daniel moved to the garden. Mary travelled to the "
    "kitchen. Where was the apple before the kitchen?\nAnswer: Before the kitchen the apple was in "
    "the bathroom.\n</example>\n<example>\nJohn went back to the bedroom. John went back to the "
    "garden. John went back to the kitchen. Sandra took the football. Sandra travelled to the "
    "garden. Sandra journeyed to the bedroom. Where was the football before the bedroom?\nAnswer: "
    "Before the bedroom the football was in the garden.\n</example>\n\n"
    "Always return your answer in the following format: Before the $location_1$ the $item$ was in "
    "the $location_2$. Do not write anything else after that.\n\n"
    "<context>\nMary went to the garden.\n</context>\n\nQuestion: Where was the milk before the garden?"
)


def test_prompts_are_verbatim():
    assert babilong_prompt(" Mary went to the garden. ", "Where is the milk? ", "qa2") == QA2_FULL
    assert babilong_prompt("Mary went to the garden.", "Where was the milk before the garden? ",
                           "qa3") == QA3_FULL
    assert babilong_prompt("Mary went to the garden.", "Where is the milk? ", "qa2", "bare") == (
        "<context>\nMary went to the garden.\n</context>\n\nQuestion: Where is the milk?")


def _context(s):
    start = s.prompt.index("<context>\n") + len("<context>\n")
    return s.prompt[start:s.prompt.index("\n</context>")]


@pytest.mark.parametrize("task", ["qa2", "qa3"])
def test_zero_length_is_facts_only(tok_bpe, task):
    for s in make_babilong_samples(tok_bpe, 0, 10, seed=0, task=task, prompt="bare"):
        facts = s.meta["facts"]
        assert _context(s) == " ".join(facts)
        assert s.prompt.endswith("\n</context>\n\nQuestion: " + s.meta["question"].strip())
        check_answer(facts, s.meta["question"], s.answer)


@pytest.mark.parametrize("length", [1000, 2000, 4000])
def test_length_rule_and_fact_order(any_tok, length):
    budget = length - 300
    for task in ("qa2", "qa3"):
        for s in make_babilong_samples(any_tok, length, 2, seed=1, task=task):
            assert s.meta["budget_tokens"] == budget  # facts + background == L - 300 exactly
            ctx = _context(s)
            # Re-tokenized, the context stays within a couple of tokens of the budget.
            assert abs(len(any_tok(ctx, add_special_tokens=False)["input_ids"]) - budget) <= 3
            facts = s.meta["facts"]
            assert len(facts) <= budget // 8
            pos, at = [], 0
            for f in facts:  # every fact, in story order
                at = ctx.index(f, at)
                pos.append(at)
                at += len(f)
            assert pos == sorted(pos)
            assert s.n_tokens == len(any_tok(s.prompt)["input_ids"])
            check_answer(facts, s.meta["question"], s.answer)
            for k in s.meta["supporting"]:
                assert s.meta["supporting_facts"][s.meta["supporting"].index(k)] == facts[k]


def test_gaps_sorted_with_replacement_and_spread(tok_bpe):
    samples = make_babilong_samples(tok_bpe, 4000, 20, seed=2, task="qa2")
    shared_gap = False
    for s in samples:
        gaps = s.meta["fact_gaps"]
        assert gaps == sorted(gaps) and len(gaps) == len(s.meta["facts"])
        assert all(0 <= g <= s.meta["n_background_sentences"] for g in gaps)
        shared_gap |= len(set(gaps)) < len(gaps)
    assert shared_gap  # drawn with replacement: some facts share a gap
    first = [s.meta["fact_gaps"][0] / s.meta["n_background_sentences"] for s in samples]
    assert min(first) < 0.3


def test_background_sentences(tok_meta):
    corpus = load_corpus("books:test")
    pieces, counts = sample_background(tok_meta, corpus, 1500, random.Random(0))
    assert sum(counts) == 1500
    for p, c in zip(pieces, counts):
        assert p.startswith(" ") and p.strip() in corpus.text
        assert len(tok_meta(p, add_special_tokens=False)["input_ids"]) == c
    assert all(c >= 10 for c in counts[:-1])  # the >= 10-token filter; the last one is cut


def test_smollm2_prompt_fits(tok_smol):
    for length in (1000, 8000, 16000):
        for task in ("qa2", "qa3"):
            (s,) = make_babilong_samples(tok_smol, length, 1, seed=0, task=task)
            assert length - 300 < s.n_tokens <= length
            assert s.meta["budget_tokens"] == length - 300


def test_target_and_answer(tok_word):
    for s in make_babilong_samples(tok_word, 0, 5, seed=0, task="qa2"):
        obj = s.meta["object"]
        assert s.target == f"\nAnswer: The {obj} is in the {s.answer}."
        assert s.task == "babilong-qa2" and s.depth is None
    for s in make_babilong_samples(tok_word, 0, 5, seed=0, task="qa3"):
        assert s.target == f"\nAnswer: Before the {s.meta['before']} the {s.meta['object']} was in the {s.answer}."


def test_deterministic_and_seed_dependent(tok_bpe):
    a = make_babilong_samples(tok_bpe, 1000, 3, seed=4, task="qa3")
    assert a == make_babilong_samples(tok_bpe, 1000, 3, seed=4, task="qa3")
    b = make_babilong_samples(tok_bpe, 1000, 3, seed=5, task="qa3")
    assert [s.prompt for s in a] != [s.prompt for s in b]


def test_training_background_differs(tok_bpe):
    (s,) = make_babilong_samples(tok_bpe, 2000, 1, seed=0, background="books:train")
    assert s.meta["background"] == "books:train"


def test_bad_inputs(tok_word):
    with pytest.raises(DataError, match="larger than 300"):
        make_babilong_samples(tok_word, 200, 1)
    with pytest.raises(DataError, match="depth"):
        make_babilong_samples(tok_word, 1000, 1, depth=50)
    with pytest.raises(DataError, match="prompt variant"):
        make_babilong_samples(tok_word, 1000, 1, prompt="chat")
    with pytest.raises(DataError, match="qa2"):
        make_babilong_samples(tok_word, 1000, 1, task="qa1")
    with pytest.raises(DataError, match="too short"):
        make_babilong_samples(tok_word, 1000, 1, background=["A tiny text."])
