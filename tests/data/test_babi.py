import random
import re

import pytest

from lawcat.data import DataError
from lawcat.data.babi import simulate_story

from ._replay import DROP, GET, MOVE, check_answer, replay

N_STORIES = 300


@pytest.fixture(scope="module", params=["qa2", "qa3"])
def stories(request):
    return request.param, [simulate_story(request.param, random.Random(i)) for i in range(N_STORIES)]


def test_answers_match_an_independent_replay(stories):
    task, ss = stories
    for st in ss:
        facts = [f.text for f in st.facts]
        replay(facts)  # every action is possible (strict replay raises otherwise)
        for q in st.questions:
            check_answer(facts[: q.n_facts], q.text, q.answer)


def test_supporting_facts_alone_give_the_answer(stories):
    task, ss = stories
    for st in ss:
        for q in st.questions:
            assert len(q.supporting) == (2 if task == "qa2" else 3)
            assert all(0 <= k < q.n_facts for k in q.supporting)
            sup = [st.facts[k].text for k in sorted(q.supporting)]
            check_answer(sup, q.text, q.answer, strict=False)


def test_question_timing_and_count(stories):
    task, ss = stories
    for st in ss:
        assert len(st.questions) == 5
        prev = 0
        for q in st.questions:
            assert q.n_facts - prev >= 3  # at least 3 new facts before each question
            prev = q.n_facts
        assert st.questions[-1].n_facts == len(st.facts)  # a story ends with its 5th question


def test_vocabulary_and_there_rates(stories):
    task, ss = stories
    gets = drops = get_there = drop_there = moves = 0
    for st in ss:
        for f in st.facts:
            assert "table" not in f.text
            assert f.text.split()[0] in {"John", "Mary", "Sandra", "Daniel"}
            if MOVE.match(f.text):
                moves += 1
                assert "there" not in f.text
            elif GET.match(f.text):
                gets += 1
                get_there += f.text.endswith(" there.")
            else:
                assert DROP.match(f.text), f.text
                drops += 1
                drop_there += f.text.endswith(" there.")
        for q in st.questions:
            assert q.answer in {"bathroom", "bedroom", "garden", "hallway", "kitchen", "office"}
            assert q.text.endswith("? ")  # BABILong keeps the trailing space
    assert moves > gets + drops  # moves dominate, as in the published files
    if task == "qa2":
        assert 0.4 < get_there / gets < 0.6 and drop_there == 0
    else:
        assert 0.12 < get_there / gets < 0.28 and 0.1 < drop_there / drops < 0.3


def test_all_surface_forms_occur(stories):
    _task, ss = stories
    text = " ".join(f.text for st in ss for f in st.facts)
    for verb in ("went to", "journeyed to", "travelled to", "moved to", "went back to", "got",
                 "took", "grabbed", "picked up", "dropped", "discarded", "put down", "left"):
        assert f" {verb} the " in text, verb


def test_babi_file_format():
    st = simulate_story("qa2", random.Random(0))
    lines = st.to_babi().split("\n")
    assert len(lines) == len(st.facts) + len(st.questions)
    qlines = [ln for ln in lines if "\t" in ln]
    assert len(qlines) == 5
    for ln, q in zip(qlines, st.questions):
        assert re.fullmatch(r"\d+ Where is the \w+\? \t\w+\t\d+ \d+", ln), ln
        assert ln.split("\t")[1] == q.answer
    assert [int(ln.split(" ")[0]) for ln in lines] == list(range(1, len(lines) + 1))


def test_deterministic_and_seed_dependent():
    a = simulate_story("qa3", random.Random(11))
    assert a == simulate_story("qa3", random.Random(11))
    assert a.facts != simulate_story("qa3", random.Random(12)).facts


def test_max_facts_and_bad_task():
    st = simulate_story("qa3", random.Random(0), max_facts=5)
    assert len(st.facts) <= 5
    with pytest.raises(DataError):
        simulate_story("qa1", random.Random(0))
