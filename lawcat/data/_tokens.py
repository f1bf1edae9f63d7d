"""Token counting and the length search shared by the generators (internal).

Lengths are always counted in the caller's Hugging Face tokenizer.  Generators describe a prompt
by an integer size ``n`` (characters of filler, lines, words) and need the largest ``n`` whose
prompt fits a token budget.  Re-tokenizing a 32K-token prompt costs ~0.1 s, so the search is
guided by a cheap *estimate* built from token counts of the filler computed once (prefix sums),
and corrected by the offset between the estimate and the exact count; typically 2-3 exact
tokenizations settle it.  The final answer is always an exact count, never an estimate.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

from .errors import DataError


def count_tokens(tokenizer, text: str) -> int:
    """Tokens of ``text`` without special tokens (== ``len(tokenizer.tokenize(text))``)."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def count_many(tokenizer, texts: Sequence[str]) -> list[int]:
    if not texts:
        return []
    return [len(x) for x in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def n_special(tokenizer) -> int:
    """How many special tokens (BOS/EOS) the tokenizer adds around a single sequence."""
    try:
        return int(tokenizer.num_special_tokens_to_add(pair=False))
    except (AttributeError, NotImplementedError, TypeError):
        return len(tokenizer("")["input_ids"])


def check_tokenizer(tokenizer) -> None:
    if tokenizer is None or not callable(tokenizer):
        raise DataError(
            f"expected a Hugging Face tokenizer (e.g. AutoTokenizer.from_pretrained(...)), got "
            f"{type(tokenizer).__name__}"
        )


def prefix_token_counter(tokenizer, text: str, cuts: Sequence[int]) -> Callable[[int], int]:
    """Return ``f(i)`` ~ tokens of ``text[:cuts[i]]``, from ONE tokenization of ``text``.

    Counts the tokens of the full text that start before the cut (exact for tokenizers whose
    pre-tokenizer splits at the cut points, e.g. byte-level BPE at spaces).  Without offset
    mappings (slow tokenizers) it falls back to a proportional estimate.
    """
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        starts = [s for s, _e in enc["offset_mapping"]]
    except (NotImplementedError, ValueError, KeyError, TypeError):
        total = count_tokens(tokenizer, text)
        rate = total / max(1, len(text))
        return lambda i: round(cuts[i] * rate)
    return lambda i: bisect.bisect_left(starts, cuts[i])


def _largest_under(est: Callable[[int], int], target: int, a: int, b: int) -> int:
    """Largest n in [a, b] with est(n) <= target, by bisection (est roughly non-decreasing).

    Returns ``a`` when even ``est(a)`` exceeds the target.
    """
    if est(b) <= target:
        return b
    if est(a) > target:
        return a
    lo, hi = a, b  # est(lo) <= target < est(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if est(mid) <= target:
            lo = mid
        else:
            hi = mid
    return lo


def fit_largest(
    exact: Callable[[int], int],
    budget: int,
    n_max: int,
    estimate: Callable[[int], int] | None = None,
    *,
    what: str = "prompt",
) -> tuple[int, int]:
    """Largest ``n`` in ``[0, n_max]`` with ``exact(n) <= budget``; returns ``(n, exact(n))``.

    ``exact`` is assumed roughly non-decreasing (cutting text mid-word can make it wobble by a
    token); the result is a boundary: ``exact(n) <= budget`` and (``n == n_max`` or
    ``exact(n + 1) > budget``).  ``estimate`` only steers the search.
    """
    memo: dict[int, int] = {}

    def ex(n: int) -> int:
        if n not in memo:
            memo[n] = exact(n)
        return memo[n]

    est = estimate or (lambda n: 0)
    lo, hi = -1, n_max + 1  # ex(lo) <= budget (lo=-1: nothing known), ex(hi) > budget (virtual)
    delta = 0  # exact - estimate, observed at the last probe
    guided = 0
    while hi - lo > 1:
        if estimate is not None and guided < 4:
            guided += 1
            g = _largest_under(lambda n: est(n) + delta, budget, lo + 1, hi - 1)
        else:
            g = (lo + hi) // 2
        v = ex(g)
        delta = v - est(g)
        if v <= budget:
            lo = g
        else:
            hi = g
    if lo < 0:
        raise DataError(
            f"the {what} does not fit in {budget} tokens even with no filler "
            f"(it needs {ex(0)}); use a larger length"
        )
    return lo, ex(lo)


__all__ = ["count_tokens", "count_many", "n_special", "prefix_token_counter", "fit_largest"]
