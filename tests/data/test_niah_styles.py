"""S-NIAH prompt parts (lawcat.data.niah_styles). Held-out variants: each swaps the part it names and nothing else,
fits the length budget, keeps the standard sample's key and depth, and shows text no training sample contains,
diverse or not. The diverse training style: RULER's format for a quarter of the samples, the training pools and
value forms for the rest, never a held-out string or value form."""
import re

import pytest

from lawcat.data import DataError, make_samples
from lawcat.data import niah_styles as nv
from lawcat.data.niah import NEEDLE, NOISE_LINE, make_niah_samples, singular_template
from lawcat.data.passkey_styles import TRAIN_FILLER_GROUPS, TRAIN_NEEDLES, TRAIN_QUESTIONS, TRAIN_TASKS

TASKS = ("niah1", "niah2", "niah3")
LENGTH, N = 700, 6
UUID4_UPPER = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$")


@pytest.fixture(scope="module")
def samples(tok_smol):
    return {(task, v): make_samples(task, tok_smol, LENGTH, N, seed=3, variant=v)
            for task in TASKS for v in nv.NIAH_VARIANTS}


def _head_tail(prompt):
    head, rest = prompt.split("\n", 1)
    return head, rest.rsplit("\n", 1)[1]


def _template_parts(value_type):
    """RULER's first line and question for one value type, with the key left as {query}."""
    intro, _, question = singular_template().partition("\n{context}\n")
    t = value_type[:-1]
    return intro.format(type_needle_v=t), question.replace("{type_needle_v}", t)


@pytest.mark.parametrize("task", TASKS)
def test_standard_variant_is_the_default(tok_smol, samples, task):
    default = make_niah_samples(tok_smol, LENGTH, N, 3, task=task)
    assert [s.prompt for s in samples[task, "standard"]] == [s.prompt for s in default]
    assert all("variant" not in s.meta for s in default)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("variant", nv.NIAH_VARIANTS[1:])
def test_variant_swaps_its_parts_only(samples, task, variant):
    value_type = "uuids" if task == "niah3" else "numbers"
    intro, question = _template_parts(value_type)
    every = variant == "heldout"
    for std, s in zip(samples[task, "standard"], samples[task, variant]):
        m = s.meta
        assert s.n_tokens + m["tokens_to_generate"] <= LENGTH + 1  # the budget rule (BOS counted in n_tokens)
        assert m["key"] == std.meta["key"]
        if task == "niah1":  # the same uniform draw, placed among a different number of noise lines
            lines = min(m["num_haystack_lines"], std.meta["num_haystack_lines"])
            assert abs(s.depth - std.depth) <= 100 / lines
        else:
            assert s.depth == std.depth
        assert m["variant"] == variant and s.answer == m["value"] and s.target == f" {m['value']}."
        assert m["needle"] in s.prompt and s.prompt.count(m["value"]) == 1
        head, tail = _head_tail(s.prompt)
        assert (head != intro) == every
        assert (tail != question.format(query=m["key"])) == (every or variant == "question")
        assert tail.endswith(" is") and m["key"] in tail
        standard_needle = NEEDLE.format(type_needle_v=value_type, key=m["key"], value=m["value"])
        assert (m["needle"] != standard_needle) == (every or variant == "needle")
        held_values = every or variant == "values"
        assert (m["value"] != std.meta["value"]) == held_values
        if held_values and value_type == "numbers":
            assert len(m["value"]) == 9 and m["value"].isdigit()
        elif held_values:
            assert UUID4_UPPER.match(m["value"])
        held_filler = every or variant == "filler"
        if task == "niah1":
            assert (NOISE_LINE in s.prompt) != held_filler
        else:
            assert m["haystack"] == ("books:test" if held_filler else "essays")
        assert m["parts"]["filler"] != "standard" if held_filler else m["parts"]["filler"] == "standard"


def _held_out_fragments():
    """Every held-out string cut into the literal pieces a prompt would contain: at its placeholders, and at the
    benchmark's noun ("special magic"), which held-out strings share with RULER's on purpose."""
    pieces = set()
    for text in nv.HELDOUT_INTROS + nv.HELDOUT_NEEDLES + nv.HELDOUT_QUESTIONS + nv.HELDOUT_NOISE_LINES:
        pieces |= {p.strip() for p in re.split(r"\{\w+\}|special magic", text) if len(p.strip()) > 12}
    return pieces


def test_held_out_strings_appear_in_no_training_text():
    fragments = _held_out_fragments()
    published = [singular_template(), NEEDLE, NOISE_LINE]
    passkey_training = [*TRAIN_TASKS, *TRAIN_QUESTIONS, *(p.needle for p in TRAIN_NEEDLES),
                        *(p.question for p in TRAIN_NEEDLES), *(" ".join(g) for g in TRAIN_FILLER_GROUPS)]
    for text in published + passkey_training:
        assert not any(f in text for f in fragments), text
    assert len(set(nv.HELDOUT_NOISE_LINES)) == len(nv.HELDOUT_NOISE_LINES)


def test_training_pools_are_disjoint_from_held_out_ones():
    fragments = _held_out_fragments()
    train = nv.TRAIN_INTROS + nv.TRAIN_NEEDLES + nv.TRAIN_QUESTIONS + nv.TRAIN_NOISE_LINES
    for text in train:
        assert not any(f in text for f in fragments), text
    ruler = (singular_template(), NEEDLE, NOISE_LINE)
    assert not set(train) & set(ruler) and not set(nv.TRAIN_NOISE_LINES) & set(nv.HELDOUT_NOISE_LINES)
    assert nv.HELDOUT_DIGITS not in nv.TRAIN_DIGITS and max(nv.TRAIN_DIGITS) > nv.HELDOUT_DIGITS
    for pool in (nv.TRAIN_NEEDLES, nv.HELDOUT_NEEDLES):  # every needle gives the value for the key
        assert all("{key}" in t and "{value}" in t and "special magic {t}" in t for t in pool)
    for pool in (nv.TRAIN_QUESTIONS, nv.HELDOUT_QUESTIONS):  # the continuation is " {value}."
        assert all(t.endswith(" is") and t.count("{query}") == 2 for t in pool)


@pytest.fixture(scope="module")
def diverse(tok_smol):
    return {task: make_samples(task, tok_smol, LENGTH, 40, seed=3, purpose="train", style="diverse",
                               haystack=None if task == "niah1" else "books:train") for task in TASKS}


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("style", ["standard", "diverse"])
def test_training_samples_show_no_held_out_text(tok_smol, samples, diverse, task, style):
    train = diverse[task] if style == "diverse" else make_samples(
        task, tok_smol, LENGTH, 8, seed=3, purpose="train", haystack=None if task == "niah1" else "books:train")
    fragments = _held_out_fragments()
    for s in train:
        assert s.meta.get("variant", "standard") == "standard"
        assert not any(f in s.prompt for f in fragments)
        assert not any(v.startswith("heldout") or v == "books:test" for v in s.meta.get("parts", {}).values())
        assert s.meta["value"] in s.prompt and s.target == f" {s.meta['value']}."
        if task == "niah3":
            assert s.meta["value"] == s.meta["value"].lower()
        else:
            assert len(s.meta["value"]) != nv.HELDOUT_DIGITS
    # and what the variants show is new: no held-out prompt's needle or question is a training one
    train_needles = {s.meta["needle"] for s in train}
    train_tails = {_head_tail(s.prompt)[1] for s in train}
    for v in ("needle", "question", "heldout"):
        for s in samples[task, v]:
            assert s.meta["needle"] not in train_needles
            if v != "needle":
                assert _head_tail(s.prompt)[1] not in train_tails


def test_refusals(tok_word):
    with pytest.raises(DataError, match="evaluation-only"):
        make_samples("niah1", tok_word, LENGTH, 1, variant="needle", purpose="train")
    with pytest.raises(DataError, match="unknown S-NIAH variant"):
        make_samples("niah2", tok_word, LENGTH, 1, variant="natural")
    with pytest.raises(DataError, match="unknown BABILong variant 'values'"):
        make_samples("babilong-qa2", tok_word, 1000, 1, variant="values")
    assert make_samples("babilong-qa2", tok_word, 1000, 1, variant="standard")


def test_variant_picks_are_deterministic_and_spread(tok_smol):
    a = make_samples("niah1", tok_smol, LENGTH, 12, seed=5, variant="heldout")
    b = make_samples("niah1", tok_smol, LENGTH, 12, seed=5, variant="heldout")
    assert [s.prompt for s in a] == [s.prompt for s in b]
    assert len({s.meta["parts"]["needle"] for s in a}) > 1 and len({s.meta["parts"]["filler"] for s in a}) > 1


@pytest.mark.parametrize("task", TASKS)
def test_diverse_mix(diverse, task):
    published = [s for s in diverse[task] if set(s.meta["parts"].values()) == {"standard"}]
    assert 0.1 <= len(published) / len(diverse[task]) <= 0.45  # PUBLISHED_SHARE = 0.25 of 40 samples
    rest = [s for s in diverse[task] if s not in published]
    for part in ("intro", "needle", "question"):
        assert len({s.meta["parts"][part] for s in rest}) >= 3
    assert all(s.meta["parts"]["values"] == "train" for s in rest)
    if task == "niah3":
        assert len({len(s.meta["value"]) for s in rest}) >= 3  # uuids with and without hyphens, other hex
    else:
        assert len({len(s.meta["value"]) for s in rest}) >= 4
    for s in diverse[task]:
        assert s.n_tokens + s.meta["tokens_to_generate"] <= LENGTH + 1
        assert s.meta["needle"] in s.prompt and s.prompt.endswith(" is")


def test_style_and_variant_refusals(tok_word):
    with pytest.raises(DataError, match="cannot be combined"):
        make_niah_samples(tok_word, LENGTH, 1, task="niah1", variant="needle", style="diverse")
    with pytest.raises(DataError, match="unknown S-NIAH style"):
        make_samples("niah1", tok_word, LENGTH, 1, style="fancy", purpose="train")
    with pytest.raises(DataError, match="applies only to"):
        make_samples("babilong-qa3", tok_word, 1000, 1, style="diverse", purpose="train")

