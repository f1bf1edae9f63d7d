"""Scoring rules, checked on hand-written cases (specs/benchmarks.md §1, §2f, §5e)."""

from dataclasses import dataclass, field

import pytest

from lawcat.eval.scoring import (
    TASKS,
    babilong_compare_answers,
    babilong_preprocess,
    ruler_postprocess,
    score,
    score_passkey,
    score_sample,
    string_match_all,
)


@dataclass
class _Sample:  # structurally identical to lawcat.data.sample.TaskSample
    task: str
    prompt: str
    answer: str
    target: str
    length: int
    n_tokens: int
    depth: float | None
    meta: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- passkey


@pytest.mark.parametrize(
    "output, expected",
    [
        (" 31415. Remember it. 31415 is the pass key.", 1.0),
        ("31415", 1.0),
        (" The pass key is 31415.", 1.0),  # leading text
        ("\n\n31415 is it", 1.0),
        ("031415", 1.0),  # compared as integers, like int(match) == pass_key
        ("314150", 0.0),  # a longer number is a different number
        ("3141", 0.0),  # a prefix is wrong
        (" 27182. Remember it.", 0.0),  # wrong number
        ("12 and then 31415", 0.0),  # only the first integer counts
        ("", 0.0),
        ("I do not know the pass key.", 0.0),  # no digits
        ("thirty-one thousand", 0.0),
        ("3.1415", 0.0),  # first integer is 3
    ],
)
def test_passkey(output, expected):
    assert score("passkey", output, "31415") == expected
    assert score_passkey(output, 31415) == expected


def test_passkey_bad_answer():
    with pytest.raises(ValueError, match="integer"):
        score("passkey", "123", "abc")


# ----------------------------------------------------------------------------- RULER


def test_ruler_postprocess_control_characters():
    assert ruler_postprocess("  \t 1234567\x00tail\x1f  ") == "1234567\ntail"
    assert ruler_postprocess("a\tb\rc\x0bd") == "a\nb\nc\nd"
    assert ruler_postprocess("\x00\x01 x \x02") == "x"  # controls at the ends vanish in the 2nd strip
    assert ruler_postprocess("é ü \x7f") == "é ü \x7f"  # only \x00-\x1f are control characters here


@pytest.mark.parametrize("task", ["niah1", "niah2", "niah3"])
def test_string_match_all_single(task):
    assert score(task, " 7654321.", "7654321") == 1.0
    assert score(task, "The special magic number is 7654321, I think", "7654321") == 1.0
    assert score(task, "76543210", "7654321") == 1.0  # substring match, as RULER does
    assert score(task, "765432", "7654321") == 0.0
    assert score(task, "", "7654321") == 0.0
    # a control character inside the value breaks it: it becomes a newline, no longer a match
    assert score(task, "765\x004321", "7654321") == 0.0


def test_string_match_all_case_and_uuid():
    u = "3F2504E0-4F89-41D3-9A0C-0305E82C3301"
    assert score("niah3", f" {u.lower()}.\n", u) == 1.0
    assert score("niah3", u[:-1], u) == 0.0


def test_string_match_all_multi_reference_fraction():
    assert string_match_all("1111111 and 3333333", ["1111111", "2222222", "3333333", "4444444"]) == 0.5
    with pytest.raises(ValueError):
        string_match_all("x", [])


# ----------------------------------------------------------------------------- BABILong

Q2 = "Where is the milk? "
Q3 = "Where was the apple before the kitchen? "


@pytest.mark.parametrize(
    "output, expected",
    [
        ("The milk is in the garden.", True),
        ("the MILK is in the GARDEN", True),  # case-insensitive
        ("Garden", True),
        ("The milk is in the garden. Earlier it was in the kitchen.", True),  # text after first '.' ignored
        ("The milk is in the kitchen. No, the garden.", False),  # only the first sentence counts
        ("The milk is in the garden or the kitchen.", False),  # two locations -> wrong
        ("The milk is in the kitchen.", False),
        ("", False),
        ("I don't know", False),
        ("The milk is in the garden\n<context>\nMary went to the kitchen", True),  # cut at <context>
        ("<context> the garden", False),  # nothing before <context>
        ("The milk is in the garden <example> John went to the office", True),  # cut at <example>
        # BABILong splits on 'Question' after lowercasing, so it never cuts: both labels count.
        ("The milk is in the garden Question: where is the office", False),
        ("The milk is in the bathroomgarden", False),  # labels are substrings: both found
    ],
)
def test_babilong_qa2(output, expected):
    assert babilong_compare_answers("garden", output, Q2) is expected
    assert score("babilong-qa2", output, "garden", question=Q2) == float(expected)


@pytest.mark.parametrize(
    "output, expected",
    [
        ("Before the kitchen the apple was in the bathroom.", True),  # kitchen is in the question
        ("before the KITCHEN the apple was in the Bathroom", True),
        ("The apple was in the bathroom.", True),
        ("Before the kitchen the apple was in the kitchen.", False),  # only question labels -> empty set
        ("Before the kitchen the apple was in the bathroom or the office.", False),
        ("Before the kitchen the apple was in the office. It was in the bathroom.", False),
    ],
)
def test_babilong_qa3_labels_in_question_removed(output, expected):
    assert score("babilong-qa3", output, "bathroom", question=Q3) == float(expected)


def test_babilong_target_case_and_preprocess():
    assert score("babilong-qa2", "the milk is in the Office.", "Office", question=Q2) == 1.0
    assert babilong_preprocess("The Milk is in the GARDEN. Then <context>") == "the milk is in the garden"
    assert babilong_preprocess("abc <example> def. ghi") == "abc "


def test_babilong_needs_question():
    with pytest.raises(ValueError, match="question"):
        score("babilong-qa2", "garden", "garden")


def test_unknown_task_names_valid_ones():
    with pytest.raises(ValueError) as e:
        score("niah4", "x", "x")
    for t in TASKS:
        assert t in str(e.value)


def test_score_sample_finds_question():
    prompt = "<context>\nMary went to the kitchen.\n</context>\n\nQuestion: Where was the apple before the kitchen? "
    s = _Sample("babilong-qa3", prompt, "bathroom", " Before the kitchen the apple was in the bathroom.", 0, 30, None)
    # from the prompt: "kitchen" is in the question, so it is not counted as an answer
    assert score_sample(s, "Before the kitchen the apple was in the bathroom.") == 1.0
    # from meta, when given
    s.meta["question"] = "Where is the apple? "
    assert score_sample(s, "Before the kitchen the apple was in the bathroom.") == 0.0
    p = _Sample("passkey", "...", "4242", " 4242.", 1024, 1000, 50.0)
    assert score_sample(p, " 4242. Remember it.") == 1.0
