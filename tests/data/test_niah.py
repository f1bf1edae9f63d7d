import re

import pytest

from lawcat.data import DataError
from lawcat.data.haystack import load_corpus, split_sentences
from lawcat.data.niah import DEPTHS, make_niah_samples, niah_prompt, word_lists

LINE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def _expected(kind: str, context: str, key: str) -> str:
    # benchmarks.md §2b, the singular prompt with the answer prefix, written out by hand.
    return (
        f"A special magic {kind} is hidden within the following text. Make sure to memorize it. "
        f"I will quiz you about the {kind} afterwards.\n{context}\nWhat is the special magic {kind} "
        f"for {key} mentioned in the provided text? The special magic {kind} for {key} mentioned "
        f"in the provided text is"
    )


def test_prompt_template_is_verbatim():
    assert niah_prompt("CTX", "abundant-ear", "numbers") == _expected("number", "CTX", "abundant-ear")
    assert niah_prompt("CTX", "abundant-ear", "uuids") == _expected("uuid", "CTX", "abundant-ear")


def test_depths_grid_is_rulers():
    assert DEPTHS == [0, 3, 5, 8, 10, 13, 15, 18, 21, 23, 26, 28, 31, 33, 36, 38, 41, 44, 46, 49, 51,
                      54, 56, 59, 62, 64, 67, 69, 72, 74, 77, 79, 82, 85, 87, 90, 92, 95, 97, 100]


def _split_prompt(s):
    head, rest = s.prompt.split("\n", 1)
    context, tail = rest.rsplit("\n", 1)
    return head, context, tail


def _key_ok(key):
    adjs, nouns = word_lists()
    return any(key.startswith(a + "-") and key[len(a) + 1:] in set(nouns) for a in adjs)


@pytest.mark.parametrize("task", ["niah1", "niah2", "niah3"])
def test_format_needle_key_value(tok_bpe, task):
    samples = make_niah_samples(tok_bpe, 1024, 6, seed=2, task=task)
    vtype, kind = ("uuids", "uuid") if task == "niah3" else ("numbers", "number")
    for s in samples:
        key, value = s.meta["key"], s.meta["value"]
        needle = f"One of the special magic {vtype} for {key} is: {value}."
        assert s.meta["needle"] == needle
        assert s.prompt.count(needle) == 1 and s.prompt.count(value) == 1
        head, context, tail = _split_prompt(s)
        assert s.prompt == _expected(kind, context, key)
        assert s.answer == value and s.target == f" {value}."
        assert _key_ok(key), key
        if task == "niah3":
            assert UUID4.match(value)
        else:
            assert re.fullmatch(r"[1-9]\d{6}", value)


@pytest.mark.parametrize("length", [1024, 2048, 4096])
@pytest.mark.parametrize("task", ["niah1", "niah2"])
def test_ruler_budget_rule(any_tok, task, length):
    for s in make_niah_samples(any_tok, length, 2, seed=1, task=task):
        n = len(any_tok.tokenize(s.prompt))  # RULER: tokenize (no BOS) + 128 <= L
        assert s.meta["budget_tokens"] == n and n + 128 <= length
        assert s.n_tokens == len(any_tok(s.prompt)["input_ids"])
        slack = length - 128 - n
        if task == "niah1":
            assert slack < len(any_tok.tokenize(LINE + "\n")) + 2  # one more line would not fit
        else:
            assert slack < 12


def _rebuild_essay(s, words_used):
    """The essay prompt rebuilt from the documented recipe with ``words_used`` corpus words."""
    words = load_corpus("essays").words[:words_used]
    sents = split_sentences(" ".join(words))
    pos = int(len(sents) * s.depth / 100)
    ctx = " ".join(sents[:pos] + [s.meta["needle"]] + sents[pos:])
    return niah_prompt(ctx, s.meta["key"], "numbers"), pos, len(sents)


def test_essay_recipe_depth_and_maximality(any_tok):
    for depth in (0, 33, 100):
        (s,) = make_niah_samples(any_tok, 1500, 1, seed=4, depth=depth, task="niah2")
        m = s.meta["num_haystack_words"]
        prompt, pos, nsent = _rebuild_essay(s, m)
        assert s.prompt == prompt and s.depth == depth
        assert s.meta["needle_sentence"] == pos == int(nsent * depth / 100)
        bigger, _, _ = _rebuild_essay(s, m + 1)
        assert len(any_tok.tokenize(bigger)) + 128 > 1500  # one more word overflows
        _, context, _ = _split_prompt(s)
        if depth == 0:
            assert context.startswith(s.meta["needle"])
        if depth == 100:
            assert context.endswith(s.meta["needle"])
        # The haystack is the essays' first words (RULER's fixed prefix).
        assert context.replace(s.meta["needle"] + " ", "").replace(" " + s.meta["needle"], "") \
            == " ".join(load_corpus("essays").words[:m])


def test_essay_default_depths_come_from_grid(tok_bpe):
    samples = make_niah_samples(tok_bpe, 800, 30, seed=0, task="niah3")
    assert all(s.depth in DEPTHS for s in samples)
    assert len({s.depth for s in samples}) > 10


def test_noise_lines_and_uniform_slot(tok_meta):
    samples = make_niah_samples(tok_meta, 1024, 30, seed=9, task="niah1")
    slots = []
    for s in samples:
        _, context, _ = _split_prompt(s)
        lines = context.split("\n")
        n = s.meta["num_haystack_lines"]
        assert len(lines) == n + 1
        idx = lines.index(s.meta["needle"])
        assert idx == s.meta["needle_line"] and idx < n  # never after the last line
        assert lines[:idx] + lines[idx + 1:] == [LINE] * n
        slots.append(idx / n)
    assert min(slots) < 0.25 and max(slots) > 0.75


def test_noise_fixed_depth(tok_word):
    (s,) = make_niah_samples(tok_word, 2000, 1, seed=0, depth=50, task="niah1")
    n = s.meta["num_haystack_lines"]
    assert s.meta["needle_line"] == int(n * 50 / 100) and s.depth == 50


def test_haystack_parameter_and_random_start(tok_bpe):
    (s,) = make_niah_samples(tok_bpe, 1024, 1, seed=0, task="niah2", haystack="books:train")
    book_words = load_corpus("books:train").words
    _, context, _ = _split_prompt(s)
    assert context.replace(s.meta["needle"], "").split()[:20] == book_words[:20]
    assert s.meta["haystack"] == "books:train"
    r = make_niah_samples(tok_bpe, 1024, 3, seed=0, task="niah2", haystack="books:train", start="random")
    starts = {x.meta["haystack_start_word"] for x in r}
    assert len(starts) == 3
    for x in r:
        _, context, _ = _split_prompt(x)
        st = x.meta["haystack_start_word"]
        assert context.replace(x.meta["needle"], "").split()[:10] == book_words[st:st + 10]
    # A user-given list of texts works too.
    own = ["Alpha beta gamma delta. Epsilon zeta eta theta. Iota kappa lambda mu."] * 3
    (u,) = make_niah_samples(tok_bpe, 700, 1, seed=0, task="niah3", haystack=own)
    assert "Iota kappa lambda mu." in u.prompt and u.meta["budget_tokens"] + 128 <= 700


def test_deterministic_and_seed_dependent(tok_bpe):
    a = make_niah_samples(tok_bpe, 1024, 4, seed=1, task="niah2")
    assert a == make_niah_samples(tok_bpe, 1024, 4, seed=1, task="niah2")
    b = make_niah_samples(tok_bpe, 1024, 4, seed=2, task="niah2")
    assert [s.meta["key"] for s in a] != [s.meta["key"] for s in b]
    assert [s.answer for s in a] != [s.answer for s in b]


def test_smollm2_lengths(tok_smol):
    for task, lengths in (("niah1", (1024, 8192)), ("niah2", (1024, 4096, 32768)), ("niah3", (2048,))):
        for length in lengths:
            (s,) = make_niah_samples(tok_smol, length, 1, seed=0, task=task)
            n = len(tok_smol.tokenize(s.prompt))
            assert n == s.meta["budget_tokens"] and length - 128 - 30 <= n <= length - 128


def test_bad_inputs(tok_word):
    with pytest.raises(DataError, match="unknown S-NIAH task"):
        make_niah_samples(tok_word, 1024, 1, task="niah4")
    with pytest.raises(DataError, match="haystack"):
        make_niah_samples(tok_word, 1024, 1, task="niah1", haystack="books")
    with pytest.raises(DataError, match="larger length"):
        make_niah_samples(tok_word, 128, 1, task="niah2")
    with pytest.raises(DataError, match="larger length"):
        make_niah_samples(tok_word, 150, 1, task="niah2")  # the template alone does not fit
    with pytest.raises(DataError, match="start"):
        make_niah_samples(tok_word, 1024, 1, task="niah2", start="middle")
    with pytest.raises(DataError, match="unknown corpus"):
        make_niah_samples(tok_word, 1024, 1, task="niah2", haystack="pg19")
    with pytest.raises(DataError, match="empty"):
        make_niah_samples(tok_word, 1024, 1, task="niah2", haystack=["   "])
