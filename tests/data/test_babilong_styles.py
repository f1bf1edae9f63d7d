"""Held-out BABILong variants (lawcat.data.babilong_styles): each swaps the background or the question wording and
nothing else (the same story, facts, object and answer as the standard sample), is scored on the question it asks,
and shows text no training sample contains."""
import re

import pytest

from lawcat.data import DataError, make_samples
from lawcat.data import babilong_styles as bs
from lawcat.data.babi import LOCATIONS
from lawcat.data.babilong import make_babilong_samples
from lawcat.eval.scoring import score_sample

TASKS = ("babilong-qa2", "babilong-qa3")
LENGTH, N = 1000, 5


@pytest.fixture(scope="module")
def samples(tok_smol):
    return {(task, v): make_samples(task, tok_smol, LENGTH, N, seed=2, variant=v)
            for task in TASKS for v in bs.BABILONG_VARIANTS}


def _asked(prompt):
    return prompt.rsplit("Question: ", 1)[1]


def _context(prompt):
    return prompt.split("<context>\n", 1)[1].split("\n</context>", 1)[0]


@pytest.mark.parametrize("task", TASKS)
def test_standard_variant_is_the_default(tok_smol, samples, task):
    default = make_babilong_samples(tok_smol, LENGTH, N, 2, task=task.split("-")[1])
    assert [s.prompt for s in samples[task, "standard"]] == [s.prompt for s in default]
    assert all("variant" not in s.meta for s in default)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("variant", bs.BABILONG_VARIANTS[1:])
def test_variant_swaps_its_part_only(samples, task, variant):
    held_background = variant in ("background", "heldout")
    held_question = variant in ("question", "heldout")
    for std, s in zip(samples[task, "standard"], samples[task, variant]):
        m = s.meta
        assert (m["facts"], m["object"], m["before"], s.answer, s.target) == \
            (std.meta["facts"], std.meta["object"], std.meta["before"], std.answer, std.target)
        assert m["variant"] == variant and m["standard_question"] == std.meta["question"]
        assert m["background"] == ("essays" if held_background else "books:test")
        assert (_context(s.prompt) != _context(std.prompt)) == held_background
        assert all(f in _context(s.prompt) for f in m["facts"])
        asked = _asked(s.prompt)
        assert asked == m["question"].strip() and (asked != std.meta["question"].strip()) == held_question
        assert m["object"] in asked and (m["before"] is None or m["before"] in asked)
        assert m["parts"]["question"].startswith("heldout") == held_question
        # the prompt around the story and question is the benchmark's
        assert s.prompt.split("<context>")[0] == std.prompt.split("<context>")[0]


@pytest.mark.parametrize("task", TASKS)
def test_held_out_questions_are_scored_on_what_they_ask(samples, task):
    for s in samples[task, "question"]:
        right = f"The {s.meta['object']} is in the {s.answer}."
        wrong_place = next(loc for loc in LOCATIONS if loc not in (s.answer, s.meta["before"]))
        assert score_sample(s, right) == 1.0
        assert score_sample(s, f"The {s.meta['object']} is in the {wrong_place}.") == 0.0


def test_held_out_questions_appear_in_no_training_sample(tok_smol):
    fragments = {p.strip() for pool in bs.HELDOUT_QUESTIONS.values() for t in pool
                 for p in re.split(r"\{\w\}", t) if len(p.strip()) > 8}
    assert fragments
    for task in TASKS:
        for s in make_samples(task, tok_smol, LENGTH, 6, seed=2, purpose="train", haystack="books:train"):
            assert not any(f in s.prompt for f in fragments)
            assert s.meta["background"] == "books:train"
    for pool in bs.HELDOUT_QUESTIONS.values():  # BABILong's questions end in "? "; the scorer reads locations only
        assert all(t.endswith(" ") and not any(loc in t for loc in LOCATIONS) for t in pool)


def test_refusals(tok_word):
    with pytest.raises(DataError, match="evaluation-only"):
        make_samples("babilong-qa2", tok_word, LENGTH, 1, variant="question", purpose="train")
    with pytest.raises(DataError, match="unknown BABILong variant"):
        make_samples("babilong-qa3", tok_word, LENGTH, 1, variant="needle")
    with pytest.raises(DataError, match="applies only to passkey, niah1"):
        make_samples("babilong-qa3", tok_word, LENGTH, 1, style="diverse")
