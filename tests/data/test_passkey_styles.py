"""Passkey prompt styles: held-out evaluation variants and the diverse training mix (issue 18)."""

import hashlib
import re

import pytest

from lawcat.data import DataError, make_samples
from lawcat.data import passkey_styles as ps
from lawcat.data.passkey import (
    FINAL_QUESTION,
    GARBAGE,
    NEEDLE,
    TASK_DESCRIPTION,
    make_passkey_samples,
    passkey_prompt,
)

LENGTH = 512
HELD_OUT = ("filler", "natural", "needle", "question", "keys", "heldout")


def _digest(samples):
    return hashlib.sha256("\x00".join(s.prompt for s in samples).encode()).hexdigest()


@pytest.fixture(scope="module")
def diverse(tok_smol):
    return make_samples("passkey", tok_smol, LENGTH, 300, seed=11, purpose="train", style="diverse")


@pytest.fixture(scope="module")
def evals(tok_smol):
    return {v: make_samples("passkey", tok_smol, LENGTH, 40, seed=5, variant=v) for v in ps.PASSKEY_VARIANTS}


def _sentences(text):
    return {s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()}


# ------------------------------------------------------------------------------------------------
# The published format is untouched.

def test_published_output_is_byte_identical(tok_smol):
    # Digests of the generator's output before the styles existed (SmolLM2 tokenizer, 1024 tokens).
    a = make_passkey_samples(tok_smol, 1024, 5, seed=0)
    b = make_passkey_samples(tok_smol, 1024, 5, seed=0, stream="train:")
    assert _digest(a) == "2f7b5fe2c3a0bd1ad8cc1964a289e1cc89f1a434fed2c395fad5ee2cd5c9d989"
    assert [s.meta["key"] for s in a] == [4161, 33079, 30545, 7501, 39756]
    assert _digest(b) == "8d5a9718ea74f3574128a2e45edd7411055ae895d8bdd685e0e0fcbc2bf664ee"
    assert make_passkey_samples(tok_smol, 1024, 5, seed=0, variant="standard") == a
    assert make_passkey_samples(tok_smol, 1024, 5, seed=0, style="standard") == a
    assert make_samples("passkey", tok_smol, 1024, 5, seed=0, purpose="train", style="standard") == b
    assert "parts" not in a[0].meta  # the published meta keeps its old keys


# ------------------------------------------------------------------------------------------------
# Every style is within budget and answerable.

_PUBLISHED_META = {"needle_template": NEEDLE, "question": FINAL_QUESTION, "noun": "pass key",
                   "task_description": TASK_DESCRIPTION, "filler": "repeat", "parts": {}}


def _check_answerable(tok, s, length=LENGTH):
    m = _PUBLISHED_META | s.meta  # the published format keeps its old, shorter meta
    key = m["key"]
    ids = tok(s.prompt)["input_ids"]
    assert s.n_tokens == len(ids) <= length
    assert s.n_tokens >= length - 3, (s.n_tokens, m["parts"])
    assert s.answer == str(key) and s.target == f" {key}."
    needle = m["needle_template"].format(key=key)
    assert m["needle"] == needle and str(key) in needle and m["noun"] in needle.lower()
    a, b = m["needle_char_span"]
    assert s.prompt[a:b] == needle
    assert s.prompt.startswith(m["task_description"] + "\n")
    assert s.prompt.endswith("\n" + m["question"])
    assert m["question"].lower().endswith(f"{m['noun']} is")
    if m["filler"] == "repeat":
        # Repeated filler holds no digits: the key is the only number in the prompt.
        assert set(re.findall(r"\d+", s.prompt)) == {str(key)}
    assert 0 <= s.depth <= 100


@pytest.mark.parametrize("variant", ps.PASSKEY_VARIANTS)
def test_variant_within_budget_and_answerable(tok_smol, evals, variant):
    samples = evals[variant]
    for s in samples:
        _check_answerable(tok_smol, s)
    keys = [s.meta["key"] for s in samples]
    if variant == "standard":
        assert all(s.prompt == passkey_prompt(s.meta["key"], s.meta["n_prefix"], s.meta["n_suffix"])
                   for s in samples)
        assert all(1 <= k <= 50_000 for k in keys)
        return
    assert all(s.meta["variant"] == variant and s.meta["style"] == "standard" for s in samples)
    parts = [s.meta["parts"] for s in samples]
    if variant in ("filler", "natural", "needle", "question", "keys"):
        # One part held out, the rest published.
        changed = {"filler": {"filler"}, "natural": {"filler"}, "needle": {"needle", "question"},
                   "question": {"question"}, "keys": {"key"}}[variant]
        for p in parts:
            assert {k for k, v in p.items() if v != "standard"} == changed
    if variant in ("keys", "heldout"):
        assert all(1_000_000 <= k <= 9_999_999 for k in keys)
    else:
        assert all(1 <= k <= 50_000 for k in keys)
    if variant == "natural":
        assert all(s.meta["filler"] == "natural" and p["filler"] == "essays" for s, p in zip(samples, parts))
    if variant == "heldout":
        assert all(v.startswith("heldout") or v == "essays" for p in parts for v in p.values())
        kinds = {s.meta["filler"] for s in samples}
        assert kinds == {"repeat", "natural"}


def test_diverse_within_budget_and_answerable(tok_smol, diverse):
    for s in diverse:
        _check_answerable(tok_smol, s)
        assert s.meta["style"] == "diverse"


@pytest.mark.parametrize("tok_name", ["bpe", "meta", "word"])
def test_other_tokenizers_fit(request, tok_name):
    tok = request.getfixturevalue(f"tok_{tok_name}")
    for s in (make_passkey_samples(tok, 400, 12, seed=2, style="diverse")
              + make_passkey_samples(tok, 400, 6, seed=2, variant="heldout")):
        assert s.n_tokens == len(tok(s.prompt)["input_ids"]) <= 400
        assert s.n_tokens >= 400 - 3
        assert s.prompt.endswith(s.meta["question"]) and s.meta["needle"] in s.prompt


# ------------------------------------------------------------------------------------------------
# Held-out parts never reach training.

def test_pools_are_disjoint_and_exclude_published():
    train_sent = {s for g in ps.TRAIN_FILLER_GROUPS for s in g}
    held_sent = {s for g in ps.HELDOUT_FILLER_GROUPS for s in g}
    assert len(ps.TRAIN_FILLER_GROUPS) >= 30 and len(ps.HELDOUT_FILLER_GROUPS) >= 10
    assert not train_sent & held_sent
    assert not (train_sent | held_sent) & _sentences(GARBAGE)
    assert len(ps.TRAIN_NEEDLES) >= 8 and len(ps.HELDOUT_NEEDLES) >= 4
    tr_words = {w for p in ps.TRAIN_NEEDLES for w in (p.needle, p.question, p.noun)}
    ho_words = {w for p in ps.HELDOUT_NEEDLES for w in (p.needle, p.question, p.noun)}
    assert not tr_words & ho_words
    assert NEEDLE not in tr_words | ho_words and FINAL_QUESTION not in tr_words | ho_words
    assert not set(ps.TRAIN_QUESTIONS) & set(ps.HELDOUT_QUESTIONS)
    assert not set(ps.TRAIN_TASKS) & set(ps.HELDOUT_TASKS)
    assert TASK_DESCRIPTION not in ps.TRAIN_TASKS + ps.HELDOUT_TASKS
    for q in ps.TRAIN_QUESTIONS + ps.HELDOUT_QUESTIONS:
        assert q.endswith("The pass key is") and q != FINAL_QUESTION


def _held_out_strings():
    """Every held-out string, with needles cut into their key-free pieces."""
    out = {s for g in ps.HELDOUT_FILLER_GROUPS for s in g}
    out |= set(ps.HELDOUT_QUESTIONS) | set(ps.HELDOUT_TASKS)
    for p in ps.HELDOUT_NEEDLES:
        out.add(p.question)
        out |= {piece.strip() for piece in p.needle.split("{key}") if len(piece.strip()) > 8}
    return out


def test_training_never_uses_held_out_parts(diverse, evals):
    held = _held_out_strings()
    for s in diverse:
        m = s.meta
        assert all(not v.startswith("heldout") and v != "essays" for v in m["parts"].values())
        assert m["filler"] == "repeat" or m["parts"]["filler"] == "books:train"
        for h in held:
            assert h not in s.prompt, (h, m["parts"])
        assert 1 <= m["key"] <= 999_999
    # And the other way round: what the evaluation variants show was never in a training sample.
    train_tasks = {s.meta["task_description"] for s in diverse}
    train_needles = {s.meta["needle_template"] for s in diverse}
    train_questions = {s.meta["question"] for s in diverse}
    train_sentences = set().union(*(_sentences(s.meta["filler_unit"]) for s in diverse
                                    if s.meta["filler_unit"] is not None))
    for v in ("filler", "natural", "heldout"):
        for s in evals[v]:
            if s.meta["filler"] == "repeat":
                assert not _sentences(s.meta["filler_unit"]) & train_sentences
            else:
                assert s.meta["parts"]["filler"] == "essays"
    for v in ("needle", "heldout"):
        for s in evals[v]:
            assert s.meta["needle_template"] not in train_needles
            assert s.meta["question"] not in train_questions
    for s in evals["question"]:
        assert s.meta["question"] not in train_questions
    for s in evals["heldout"]:
        assert s.meta["task_description"] not in train_tasks
    assert min(s.meta["key"] for s in evals["keys"]) >= 1_000_000 > max(s.meta["key"] for s in diverse)


# ------------------------------------------------------------------------------------------------
# The diverse mix.

def test_diverse_mix(diverse):
    published = [s for s in diverse if s.meta["published"]]
    assert abs(len(published) / len(diverse) - ps.PUBLISHED_SHARE) < 0.08
    for s in published:
        m = s.meta
        assert s.prompt == passkey_prompt(m["key"], m["n_prefix"], m["n_suffix"])
        assert 1 <= m["key"] <= 50_000
    rest = [s for s in diverse if not s.meta["published"]]
    repeat = sum(s.meta["filler"] == "repeat" for s in rest) / len(rest)
    assert abs(repeat - ps.REPEAT_SHARE) < 0.12
    digits = {len(str(s.meta["key"])) for s in rest}
    assert digits == {1, 2, 3, 4, 5, 6}
    # Every kind of needle occurs: training pairs, and the published needle with other questions.
    needles = {s.meta["parts"]["needle"] for s in rest}
    assert "standard" in needles and len(needles) >= 6
    assert any(s.meta["parts"]["question"].startswith("rephrase-train") for s in rest)
    assert len({s.meta["parts"]["filler"] for s in rest}) >= 15
    assert len({s.meta["parts"]["task"] for s in rest}) == len(ps.TRAIN_TASKS)


# ------------------------------------------------------------------------------------------------
# Determinism.

@pytest.mark.parametrize("kw", [dict(style="diverse"), dict(variant="heldout"), dict(variant="natural")])
def test_deterministic_and_extends(tok_smol, kw):
    a = make_passkey_samples(tok_smol, 400, 8, seed=4, **kw)
    assert make_passkey_samples(tok_smol, 400, 8, seed=4, **kw) == a
    assert make_passkey_samples(tok_smol, 400, 3, seed=4, **kw) == a[:3]
    assert [s.prompt for s in make_passkey_samples(tok_smol, 400, 8, seed=5, **kw)] != [s.prompt for s in a]


def test_styles_use_separate_streams(tok_smol):
    std = make_passkey_samples(tok_smol, 400, 6, seed=1)
    div = make_passkey_samples(tok_smol, 400, 6, seed=1, style="diverse")
    assert [s.prompt for s in std] != [s.prompt for s in div]


def test_fixed_depth_places_needle(tok_smol):
    for s in make_passkey_samples(tok_smol, 600, 6, seed=0, depth=[0, 50, 100], variant="heldout"):
        m = s.meta
        assert m["n_prefix"] == round(s.depth / 100 * m["n_garbage"])


# ------------------------------------------------------------------------------------------------
# Errors and make_samples wiring.

def test_unknown_variant_and_style(tok_word):
    with pytest.raises(DataError, match="filler.*natural.*heldout"):
        make_passkey_samples(tok_word, 400, 1, variant="fillers")
    with pytest.raises(DataError, match="diverse"):
        make_passkey_samples(tok_word, 400, 1, style="mixed")
    with pytest.raises(DataError, match="cannot be combined"):
        make_passkey_samples(tok_word, 400, 1, variant="keys", style="diverse")
    with pytest.raises(DataError, match="variant"):
        make_passkey_samples(tok_word, 400, 0, variant="nope")


def test_make_samples_wiring(tok_word):
    with pytest.raises(DataError, match="training"):
        make_samples("passkey", tok_word, 400, 1, purpose="train", variant="heldout")
    with pytest.raises(DataError, match="only to the passkey"):
        make_samples("niah1", tok_word, 400, 1, key_digits=12)
    with pytest.raises(DataError, match="only to passkey, niah1"):
        make_samples("babilong-qa2", tok_word, 400, 1, style="diverse")
    with pytest.raises(DataError, match="unknown BABILong variant 'keys'"):
        make_samples("babilong-qa2", tok_word, 400, 1, variant="keys")
    # Defaults are accepted (and ignored) by every task, so one call can serve a task mix.
    (s,) = make_samples("niah1", tok_word, 400, 1, variant="standard", style="standard")
    assert s.task == "niah1"
    (s,) = make_samples("passkey", tok_word, 400, 1, variant="keys")
    assert s.meta["key"] >= 1_000_000


def test_longer_training_keys_skip_the_held_out_length():
    """key_digits=12: keys of 1-12 digits but never 7 (the held-out `keys` variant's length); the default (6) keeps
    the keys the shipped student was trained on."""
    import random

    from lawcat.data.passkey_styles import training_key

    rng = random.Random(0)
    lengths = {training_key(rng, 12)[1] for _ in range(2000)}
    assert lengths == set(range(1, 13)) - {7}
    a, b = random.Random(3), random.Random(3)
    assert [training_key(a) for _ in range(50)] == [(k, d) for k, d in (training_key(b, 6) for _ in range(50))]
    assert all(len(str(key)) == digits for key, digits in (training_key(rng, 12) for _ in range(200)))
