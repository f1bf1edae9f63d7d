import re

import pytest

from lawcat.data import DataError
from lawcat.data.passkey import garbage, make_passkey_samples, passkey_prompt

# benchmarks.md §1a, written out by hand.
TASK = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize "
        "them. I will quiz you about the important information there.")
UNIT = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."


def test_prompt_is_verbatim():
    expected = (
        "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
        "I will quiz you about the important information there.\n"
        "The grass \n"
        "The pass key is 4242. Remember it. 4242 is the pass key.\n"
        "The g\n"
        "What is the pass key? The pass key is"
    )
    assert passkey_prompt(4242, 10, 5) == expected


def test_garbage_is_prefix_of_space_joined_units():
    stream = " ".join([UNIT] * 50)
    for n in (0, 1, 88, 89, 90, 500, 3000):
        assert garbage(n) == stream[:n]


@pytest.mark.parametrize("length", [256, 1024, 3000])
def test_length_within_budget_and_tight(any_tok, length):
    samples = make_passkey_samples(any_tok, length, 4, seed=3)
    for s in samples:
        ids = any_tok(s.prompt)["input_ids"]  # incl. BOS where the tokenizer adds one
        assert s.n_tokens == len(ids) <= length
        # One more garbage character would overflow, so we are within a token or two of the budget.
        assert s.n_tokens >= length - 2, (s.n_tokens, length)


@pytest.mark.parametrize("depth", [0, 37.5, 100])
def test_fixed_depth_is_maximal_and_placed(any_tok, depth):
    (s,) = make_passkey_samples(any_tok, 700, 1, seed=0, depth=depth)
    m = s.meta
    n = m["n_garbage"]
    assert m["n_prefix"] == round(depth / 100 * n) and m["n_suffix"] == n - m["n_prefix"]
    assert s.depth == depth
    key = m["key"]
    assert s.prompt == passkey_prompt(key, m["n_prefix"], m["n_suffix"])
    # Maximal: the same rule with one more character does not fit.
    p1 = round(depth / 100 * (n + 1))
    assert len(any_tok(passkey_prompt(key, p1, n + 1 - p1))["input_ids"]) > 700
    # The needle sits after exactly n_prefix garbage characters.
    needle = f"The pass key is {key}. Remember it. {key} is the pass key."
    assert s.prompt.index(needle) == len(TASK) + 1 + m["n_prefix"] + 1
    a, b = m["needle_char_span"]
    assert s.prompt[a:b] == needle


def test_needle_once_answer_target_and_bos(tok_bpe):
    samples = make_passkey_samples(tok_bpe, 800, 20, seed=1)
    for s in samples:
        key = s.meta["key"]
        assert 1 <= key <= 50000
        assert s.answer == str(key) and s.target == f" {key}."
        assert re.findall(r"\d+", s.prompt) == [str(key), str(key)]
        assert s.prompt.count("The pass key is") == 2  # needle + final question
        assert s.prompt.startswith(TASK + "\n") and s.prompt.endswith("\nWhat is the pass key? The pass key is")
        assert s.task == "passkey" and s.length == 800
        assert tok_bpe(s.prompt)["input_ids"][0] == tok_bpe.bos_token_id


def test_uniform_depth_spreads(tok_bpe):
    depths = [s.depth for s in make_passkey_samples(tok_bpe, 600, 60, seed=5)]
    assert all(0 <= d <= 100 for d in depths)
    assert min(depths) < 20 and max(depths) > 80
    assert 30 < sum(depths) / len(depths) < 70


def test_depth_grid_cycles(tok_word):
    samples = make_passkey_samples(tok_word, 500, 6, seed=0, depth=[0, 50, 100])
    assert [s.depth for s in samples] == [0, 50, 100, 0, 50, 100]
    assert samples[0].meta["n_prefix"] == 0 and samples[2].meta["n_suffix"] == 0


def test_deterministic_and_seed_dependent(tok_bpe):
    a = make_passkey_samples(tok_bpe, 512, 5, seed=7)
    b = make_passkey_samples(tok_bpe, 512, 5, seed=7)
    c = make_passkey_samples(tok_bpe, 512, 5, seed=8)
    assert a == b
    assert [s.meta["key"] for s in a] != [s.meta["key"] for s in c]
    assert make_passkey_samples(tok_bpe, 512, 3, seed=7) == a[:3]  # a larger n extends a smaller one


def test_smollm2_up_to_32k(tok_smol):
    for length in (1024, 8192, 32768):
        (s,) = make_passkey_samples(tok_smol, length, 1, seed=0)
        assert length - 2 <= len(tok_smol(s.prompt)["input_ids"]) == s.n_tokens <= length


@pytest.mark.parametrize("kwargs", [
    dict(length=20), dict(length=0), dict(length="4k"), dict(n=-1), dict(depth=150),
    dict(depth="middle"), dict(depth=[]), dict(seed=1.5),
])
def test_bad_inputs_raise_data_error(tok_word, kwargs):
    args = dict(length=500, n=1, seed=0, depth=None) | kwargs
    with pytest.raises(DataError):
        make_passkey_samples(tok_word, args["length"], args["n"], args["seed"], args["depth"])


def test_not_a_tokenizer():
    with pytest.raises(DataError, match="tokenizer"):
        make_passkey_samples(None, 500, 1)
