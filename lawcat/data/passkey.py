"""Passkey retrieval (Mohtashami & Jaggi 2023), token-budgeted.

The strings are the original ones (epfml/landmark-attention ``run_test.py``, identical in LongLoRA):
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
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from ._tokens import check_tokenizer, count_many, count_tokens, fit_largest, n_special
from .errors import DataError
from .sample import TaskSample

TASK_DESCRIPTION = (
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize "
    "them. I will quiz you about the important information there."
)
GARBAGE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
NEEDLE = "The pass key is {key}. Remember it. {key} is the pass key."
FINAL_QUESTION = "What is the pass key? The pass key is"
KEY_RANGE = (1, 50000)

_PERIOD = len(GARBAGE) + 1  # the garbage stream repeats every unit + one space


def garbage(n_chars: int) -> str:
    """The first ``n_chars`` characters of ``" ".join([GARBAGE] * infinity)``."""
    reps = n_chars // _PERIOD + 1
    return ((GARBAGE + " ") * reps)[:n_chars]


def passkey_prompt(key: int, n_prefix: int, n_suffix: int) -> str:
    """The exact prompt with ``n_prefix`` / ``n_suffix`` garbage characters around the needle."""
    return "\n".join(
        [TASK_DESCRIPTION, garbage(n_prefix), NEEDLE.format(key=key), garbage(n_suffix), FINAL_QUESTION]
    )


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


class _GarbageCounter:
    """Cheap token estimate for garbage prefixes, from tokenizing two periods once."""

    def __init__(self, tokenizer):
        table = count_many(tokenizer, [garbage(k) for k in range(2 * _PERIOD + 1)])
        self.table = table
        self.per_period = table[2 * _PERIOD] - table[_PERIOD]

    def __call__(self, n: int) -> int:
        if n <= 2 * _PERIOD:
            return self.table[n]
        q, r = divmod(n, _PERIOD)
        return self.table[_PERIOD + r] + (q - 1) * self.per_period


def make_passkey_samples(
    tokenizer,
    length: int,
    n: int,
    seed: int = 0,
    depth: float | Sequence[float] | None = None,
    *,
    key_range: tuple[int, int] = KEY_RANGE,
    stream: str = "",
) -> list[TaskSample]:
    """``n`` passkey samples whose prompts fill ``length`` tokens (BOS included) of ``tokenizer``.

    Sample ``i`` depends only on ``(stream, seed, length, i)``, so a larger ``n`` extends a smaller
    one.  ``stream`` names an independent random stream (``make_samples`` uses ``"train:"`` for
    training data, so it never repeats an evaluation sample of the same seed).
    """
    check_common(tokenizer, length, n, seed)
    if n == 0:
        return []
    specials = n_special(tokenizer)
    gcount = _GarbageCounter(tokenizer)
    per_char = max(gcount.per_period, 1) / _PERIOD
    # Enough garbage to exceed any budget: (length tokens) / (tokens per char), with margin.
    n_max = int(length / per_char * 1.5) + 4 * _PERIOD

    out: list[TaskSample] = []
    for i in range(n):
        rng = random.Random(f"{stream}passkey:{seed}:{length}:{i}")
        key = rng.randint(*key_range)
        d, fixed = resolve_depth(depth, i, rng)
        frac = (d / 100.0) if fixed else rng.random()
        needle = NEEDLE.format(key=key)
        # Tokens of everything but the garbage (the estimate's constant part).
        base = specials + count_tokens(tokenizer, passkey_prompt(key, 0, 0))

        def split(m: int) -> tuple[int, int]:
            p = round(frac * m)
            return p, m - p

        def exact(m: int) -> int:
            p, s = split(m)
            return specials + count_tokens(tokenizer, passkey_prompt(key, p, s))

        def estimate(m: int) -> int:
            p, s = split(m)
            return base + gcount(p) + gcount(s)

        hi = n_max
        while True:
            n_garbage, n_tok = fit_largest(exact, length, hi, estimate, what="passkey prompt")
            if n_garbage < hi:
                break
            hi *= 2  # never exceeded the budget (a tokenizer packing garbage unusually well)
        n_prefix, n_suffix = split(n_garbage)
        prompt = passkey_prompt(key, n_prefix, n_suffix)
        start = len(TASK_DESCRIPTION) + n_prefix + 2  # after the task line and prefix newlines
        actual = 100.0 * n_prefix / n_garbage if n_garbage else 0.0
        out.append(
            TaskSample(
                task="passkey",
                prompt=prompt,
                answer=str(key),
                target=f" {key}.",
                length=length,
                n_tokens=n_tok,
                depth=d if fixed else actual,
                meta={
                    "key": key,
                    "seed": seed,
                    "index": i,
                    "n_garbage": n_garbage,
                    "n_prefix": n_prefix,
                    "n_suffix": n_suffix,
                    "actual_depth": actual,
                    "needle": needle,
                    "needle_char_span": [start, start + len(needle)],
                    "budget_tokens": n_tok,
                },
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
    "make_passkey_samples",
]
