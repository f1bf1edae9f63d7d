"""Passkey retrieval (Mohtashami & Jaggi 2023), token-budgeted.

The strings are the original ones (epfml/landmark-attention ``run_test.py``, identical in LongLoRA; they are
defined with the other prompt parts in :mod:`lawcat.data.passkey_styles`):
the prompt is ``"\\n".join([TASK, garbage_prefix, needle, garbage_suffix, QUESTION])`` where both
garbage pieces are *character* prefixes of the same endless repetition of ``GARBAGE`` joined by
single spaces (so they can end mid-word, as in the original).

Length rule (benchmarks.md §1c, "binary-search n_garbage"): the prompt, tokenized the way the model
will receive it (``tokenizer(prompt)``, i.e. *including* BOS when the tokenizer adds one), has at
most ``length`` tokens, and one more garbage character would exceed it.

Depth: ``n_prefix = round(d * n_garbage)``.  ``depth=None`` draws ``d`` uniformly in [0, 1) per
sample (the original draws ``randint(0, n_garbage)``); a number fixes it (percent, 0..100); a list
cycles through a grid of depths (sample i gets ``depth[i % len(depth)]``), for heatmaps.

The key is ``randint(1, 50000)`` (inclusive, Python ``random``, as in Landmark).  The training target
is ``" {key}."``: the prompt ends with "The pass key is", and the needle line reads
"The pass key is {key}." so a space, the digits and the period are the natural continuation.
Scoring (eval) is "first integer in the output == key".

The published format above is the default and its output never changes.  ``variant=`` (held-out
evaluation prompts) and ``style="diverse"`` (varied training prompts) draw the task line, filler,
needle, question and key from the pools in :mod:`lawcat.data.passkey_styles`, with the same
layout and length rule; natural-text filler is cut at a character position like the garbage.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from . import passkey_styles as ps
from ._tokens import check_tokenizer, count_many, count_tokens, fit_largest, n_special, prefix_token_counter
from .errors import DataError
from .passkey_styles import FINAL_QUESTION, GARBAGE, KEY_RANGE, NEEDLE, TASK_DESCRIPTION
from .sample import TaskSample


def repeat_text(unit: str, n_chars: int) -> str:
    """The first ``n_chars`` characters of ``" ".join([unit] * infinity)``."""
    reps = n_chars // (len(unit) + 1) + 1
    return ((unit + " ") * reps)[:n_chars]


def garbage(n_chars: int) -> str:
    """The first ``n_chars`` characters of ``" ".join([GARBAGE] * infinity)``."""
    return repeat_text(GARBAGE, n_chars)


def compose(task: str, prefix: str, needle: str, suffix: str, question: str) -> str:
    """The prompt layout shared by every passkey style: five lines, filler around the needle."""
    return "\n".join([task, prefix, needle, suffix, question])


def passkey_prompt(key: int, n_prefix: int, n_suffix: int) -> str:
    """The exact prompt with ``n_prefix`` / ``n_suffix`` garbage characters around the needle."""
    return compose(TASK_DESCRIPTION, garbage(n_prefix), NEEDLE.format(key=key), garbage(n_suffix), FINAL_QUESTION)


def resolve_depth(depth, i: int, rng: random.Random) -> tuple[float | None, bool]:
    """(depth in percent or None for 'draw it', fixed?) for sample ``i``."""
    if depth is None:
        return None, False
    if isinstance(depth, (int, float)):
        d = float(depth)
    elif isinstance(depth, Sequence) and not isinstance(depth, str) and len(depth) > 0:
        d = float(depth[i % len(depth)])
    else:
        raise DataError(f"depth must be None, a number in [0, 100] or a non-empty list of them, "
                        f"got {depth!r}")
    if not 0.0 <= d <= 100.0:
        raise DataError(f"depth {d} is outside [0, 100] (it is a percentage of the filler)")
    return d, True


def check_common(tokenizer, length, n, seed) -> None:
    check_tokenizer(tokenizer)
    if not isinstance(length, int) or isinstance(length, bool) or length <= 0:
        raise DataError(f"length must be a positive number of tokens, got {length!r}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise DataError(f"n (number of samples) must be a non-negative integer, got {n!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise DataError(f"seed must be an integer, got {seed!r}")


class _RepeatFiller:
    """Filler that repeats ``unit`` endlessly (joined by single spaces), cut at character positions.

    Token estimates come from token counts of every prefix of two periods, so the length search
    needs only a few exact tokenizations per sample.  ``exact_table`` tokenizes each prefix (the
    published filler's estimate, kept so its output stays byte for byte what it was); otherwise one
    tokenization with offsets counts the tokens starting before each cut, which is ~100x cheaper
    and only steers the search (the final count is always exact).
    """

    def __init__(self, tokenizer, unit: str, exact_table: bool = True):
        self.unit = unit
        self.period = len(unit) + 1  # the stream repeats every unit + one space
        cuts = range(2 * self.period + 1)
        if exact_table:
            table = count_many(tokenizer, [self.text(k) for k in cuts])
        else:
            counter = prefix_token_counter(tokenizer, self.text(2 * self.period), cuts)
            table = [counter(k) for k in cuts]
        self.table = table
        self.per_period = table[2 * self.period] - table[self.period]

    def text(self, n_chars: int) -> str:
        return repeat_text(self.unit, n_chars)

    def pieces(self, n_prefix: int, n_suffix: int) -> tuple[str, str]:
        return self.text(n_prefix), self.text(n_suffix)

    def count(self, n: int) -> int:
        if n <= 2 * self.period:
            return self.table[n]
        q, r = divmod(n, self.period)
        return self.table[self.period + r] + (q - 1) * self.per_period

    def estimate(self, n_prefix: int, n_suffix: int) -> int:
        return self.count(n_prefix) + self.count(n_suffix)

    def first_max(self, length: int) -> int:
        per_char = max(self.per_period, 1) / self.period
        # Enough filler to exceed any budget: (length tokens) / (tokens per char), with margin.
        return int(length / per_char * 1.5) + 4 * self.period

    def grow(self, hi: int) -> int | None:
        return hi * 2


class _NaturalFiller:
    """Natural text read from ``text`` at ``offset`` (wrapping around): the prefix and the suffix
    are consecutive pieces, so the needle interrupts running prose.

    One tokenization of a window (with offsets) gives the estimate; the window doubles when the
    budget needs more text.
    """

    def __init__(self, tokenizer, text: str, offset: int, length: int):
        self.tokenizer = tokenizer
        self.source = text
        self.offset = offset
        self._load(6 * length + 256)  # ~4-5 chars per token in English prose, with margin

    def _load(self, n_chars: int) -> None:
        src, o = self.source, self.offset
        n_chars = min(n_chars, len(src))
        w = src[o:o + n_chars]
        if len(w) < n_chars:
            w = (w + " " + src)[:n_chars]
        self.window = w
        self.count = prefix_token_counter(self.tokenizer, w, range(len(w) + 1))  # tokens before each cut

    def pieces(self, n_prefix: int, n_suffix: int) -> tuple[str, str]:
        w = self.window
        return w[:n_prefix], w[n_prefix:n_prefix + n_suffix]

    def estimate(self, n_prefix: int, n_suffix: int) -> int:
        return self.count(n_prefix + n_suffix) + 1  # the cut between prefix and suffix usually splits a token

    def first_max(self, length: int) -> int:
        return len(self.window)

    def grow(self, hi: int) -> int | None:
        if len(self.window) >= len(self.source):
            return None  # the whole corpus is already in use
        self._load(2 * len(self.window))
        return len(self.window)


def _fit(tokenizer, length: int, specials: int, task: str, needle: str, question: str, filler,
         frac: float) -> tuple[int, int, int, str, int]:
    """(n_filler, n_prefix, n_suffix, prompt, n_tokens): the most filler that fits ``length``."""
    # Tokens of everything but the filler (the estimate's constant part).
    base = specials + count_tokens(tokenizer, compose(task, "", needle, "", question))

    def split(m: int) -> tuple[int, int]:
        p = round(frac * m)
        return p, m - p

    def exact(m: int) -> int:
        pre, suf = filler.pieces(*split(m))
        return specials + count_tokens(tokenizer, compose(task, pre, needle, suf, question))

    def estimate(m: int) -> int:
        return base + filler.estimate(*split(m))

    hi = filler.first_max(length)
    while True:
        n_filler, n_tok = fit_largest(exact, length, hi, estimate, what="passkey prompt")
        if n_filler < hi:
            break
        grown = filler.grow(hi)  # never exceeded the budget (filler packing unusually well)
        if grown is None:
            break
        hi = grown
    n_prefix, n_suffix = split(n_filler)
    pre, suf = filler.pieces(n_prefix, n_suffix)
    return n_filler, n_prefix, n_suffix, compose(task, pre, needle, suf, question), n_tok


def _corpus_text(name: str) -> str:
    from .haystack import load_corpus

    return load_corpus(name).text


def make_passkey_samples(
    tokenizer,
    length: int,
    n: int,
    seed: int = 0,
    depth: float | Sequence[float] | None = None,
    *,
    key_range: tuple[int, int] = KEY_RANGE,
    stream: str = "",
    variant: str = "standard",
    style: str = "standard",
    key_digits: int = 6,
) -> list[TaskSample]:
    """``n`` passkey samples whose prompts fill ``length`` tokens (BOS included) of ``tokenizer``.

    Sample ``i`` depends only on ``(stream, seed, length, i, variant, style)``, so a larger ``n``
    extends a smaller one.  ``stream`` names an independent random stream (``make_samples`` uses
    ``"train:"`` for training data, so it never repeats an evaluation sample of the same seed).

    ``variant`` (evaluation) picks held-out parts, one of
    :data:`lawcat.data.passkey_styles.PASSKEY_VARIANTS`; ``style`` (training) is ``"standard"``
    (the published format only) or ``"diverse"`` (a quarter published, the rest from the training
    pools).  Both default to the published format; they cannot be combined.  ``key_range`` applies
    wherever the published keys are used; ``key_digits`` is the longest key of the diverse style (its
    key lengths never include the held-out 7).  See :mod:`lawcat.data.passkey_styles`.
    """
    check_common(tokenizer, length, n, seed)
    ps.check_variant(variant)
    ps.check_style(style)
    if variant != "standard" and style != "standard":
        raise DataError(f"variant={variant!r} (held-out evaluation parts) and style={style!r} (training "
                        f"mix) cannot be combined; set one of them")
    if n == 0:
        return []
    specials = n_special(tokenizer)
    repeats: dict[str, _RepeatFiller] = {}

    def repeat_filler(unit: str) -> _RepeatFiller:
        if unit not in repeats:
            repeats[unit] = _RepeatFiller(tokenizer, unit, exact_table=unit == GARBAGE)
        return repeats[unit]

    legacy = variant == "standard" and style == "standard"
    mode = variant if variant != "standard" else style
    out: list[TaskSample] = []
    for i in range(n):
        if legacy:
            rng = random.Random(f"{stream}passkey:{seed}:{length}:{i}")
            parts = ps.published_parts(rng.randint(*key_range))
        else:
            rng = random.Random(f"{stream}passkey-{mode}:{seed}:{length}:{i}")
            if style == "diverse":
                parts = ps.diverse_parts(rng, key_range, key_digits)
            else:
                parts = ps.variant_parts(variant, rng, key_range)
        key = parts.key
        d, fixed = resolve_depth(depth, i, rng)
        frac = (d / 100.0) if fixed else rng.random()
        if parts.filler_unit is not None:
            filler = repeat_filler(parts.filler_unit)
            offset = None
        else:
            text = _corpus_text(parts.corpus)
            j = text.find(" ", rng.randrange(len(text)))
            # Start at a word so the prompt's first filler line does not begin mid-word.
            offset = j + 1 if 0 <= j < len(text) - 1 else 0
            filler = _NaturalFiller(tokenizer, text, offset, length)
        needle = parts.needle.format(key=key)
        n_filler, n_prefix, n_suffix, prompt, n_tok = _fit(
            tokenizer, length, specials, parts.task, needle, parts.question, filler, frac)
        start = len(parts.task) + n_prefix + 2  # after the task line and prefix newlines
        actual = 100.0 * n_prefix / n_filler if n_filler else 0.0
        meta = {
            "key": key,
            "seed": seed,
            "index": i,
            "n_garbage": n_filler,
            "n_prefix": n_prefix,
            "n_suffix": n_suffix,
            "actual_depth": actual,
            "needle": needle,
            "needle_char_span": [start, start + len(needle)],
            "budget_tokens": n_tok,
        }
        if not legacy:
            meta.update({
                "variant": variant,
                "style": style,
                "published": parts.published,
                "parts": dict(parts.names),
                "task_description": parts.task,
                "needle_template": parts.needle,
                "question": parts.question,
                "noun": parts.noun,
                "filler": "repeat" if parts.filler_unit is not None else "natural",
                "filler_unit": parts.filler_unit,
                "filler_offset": offset,
            })
        out.append(
            TaskSample(
                task="passkey",
                prompt=prompt,
                answer=str(key),
                target=f" {key}.",
                length=length,
                n_tokens=n_tok,
                depth=d if fixed else actual,
                meta=meta,
            )
        )
    return out


__all__ = [
    "TASK_DESCRIPTION",
    "GARBAGE",
    "NEEDLE",
    "FINAL_QUESTION",
    "garbage",
    "passkey_prompt",
    "compose",
    "make_passkey_samples",
]
