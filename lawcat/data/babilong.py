"""BABILong QA2 / QA3: simulated bAbI facts hidden in book text (benchmarks.md §5d-5e).

A sample holds all facts of a simulated story up to one of its (up to 5) questions, scattered
through background sentences:

* background: sentences read from a random offset of a book-like corpus (default ``books:test``
  for evaluation; training uses ``books:train``), split with the regex splitter, the first and last
  (partial) sentences of each read chunk dropped, each tokenized as ``' ' + sentence`` and kept only
  with >= 10 tokens; sentences are appended until facts + background reach ``length - 300`` tokens
  and the last sentence is cut at a token boundary so the sum is *exactly* ``length - 300``;
* facts keep their order and go into random gaps between background sentences, drawn uniformly
  *with replacement* over the ``n_background + 1`` gaps and sorted; facts sharing a gap are placed
  consecutively before that gap's sentence;
* ``length == 0`` means facts only (no background); for ``length > 0`` stories with more than
  ``(length - 300) // 8`` facts (or whose facts alone exceed ``length - 300`` tokens) are redrawn;
* the prompt is BABILong's ``DEFAULT_TEMPLATE`` with the task's instruction, two examples and the
  post-prompt (``prompt="full"``), or the bare ``<context>...</context>\\n\\nQuestion: ...`` used for
  base models (``prompt="bare"``), ``.strip()``-ed as in ``get_formatted_input``.

Lengths are counted in the *given* tokenizer (BABILong uses GPT-2's; benchmarks.md §5d allows
either and asks to keep the "length - 300" convention).  ``meta["budget_tokens"]`` is that facts +
background count; ``n_tokens`` is the whole prompt (with special tokens) re-tokenized, which lands
near ``length`` (the 300 reserved tokens hold the template and question: the full template is
~220 tokens with SmolLM2's tokenizer, but a tokenizer that compresses English poorly can need more
than 300, and then ``n_tokens`` exceeds ``length``, exactly as it would in BABILong).  Cutting the
last background sentence at a token boundary is done on the text through the tokenizer's offset
mapping (never through ``decode``, which is lossy for some tokenizers).

The training ``target`` is ``"\\nAnswer: " + answer sentence`` in the post-prompt's format
(``The milk is in the garden.`` / ``Before the kitchen the apple was in the bathroom.``), the
shape the prompt's examples show; BABILong's metric only looks at the locations named before the
first period, so this scores as correct.  ``answer`` is the bare location.
"""

from __future__ import annotations

import random

from ._tokens import check_tokenizer, count_tokens, n_special
from .babi import TASKS as BABI_TASKS
from .babi import Question, simulate_story
from .babilong_styles import background_for, check_variant, question_for
from .errors import DataError
from .haystack import Corpus, as_corpus, split_sentences
from .passkey import check_common
from .sample import TaskSample

DEFAULT_TEMPLATE = (
    "{instruction}\n\n{examples}\n\n{post_prompt}\n\n<context>\n{context}\n</context>\n\n"
    "Question: {question}"
)
_RULES = (
    "You need to answer the question based only on the information from the facts.\nIf a person "
    "got an item in the first location and travelled to the second location the item is also in "
    "the second location. If a person dropped an item in the first location and moved to the "
    "second location the item remains in the first location."
)
_INTRO = (
    "I give you context with the facts about locations and actions of different persons hidden in "
    "some random text and a question."
)
# The missing space after "question." in qa2 is in the original prompts.
INSTRUCTIONS = {"qa2": _INTRO + _RULES, "qa3": _INTRO + " " + _RULES}
EXAMPLES = {
    "qa2": (
        "<example>\nCharlie went to the kitchen. Charlie got a bottle. Charlie moved to the balcony. "
        "Where is the bottle?\nAnswer: The bottle is in the balcony.\n</example>\n<example>\nAlan "
        "moved to the garage. Alan got a screw driver. Alan moved to the kitchen. Where is the screw "
        "driver?\nAnswer: The screw driver is in the kitchen.\n</example>"
    ),
    "qa3": (
        "<example>\nJohn journeyed to the bedroom. Mary grabbed the apple. Mary went back to the "
        "bathroom. Daniel journeyed to the bedroom. Daniel moved to the garden. Mary travelled to "
        "the kitchen. Where was the apple before the kitchen?\nAnswer: Before the kitchen the apple "
        "was in the bathroom.\n</example>\n<example>\nJohn went back to the bedroom. John went back "
        "to the garden. John went back to the kitchen. Sandra took the football. Sandra travelled to "
        "the garden. Sandra journeyed to the bedroom. Where was the football before the bedroom?\n"
        "Answer: Before the bedroom the football was in the garden.\n</example>"
    ),
}
POST_PROMPTS = {
    "qa2": "Always return your answer in the following format: The \u2019item\u2019 is in "
    "\u2019location\u2019. Do not write anything else after that.",
    "qa3": "Always return your answer in the following format: Before the $location_1$ the $item$ "
    "was in the $location_2$. Do not write anything else after that.",
}
PROMPT_RESERVE = 300  # tokens BABILong keeps for the prompt around facts + background
MIN_SENTENCE_TOKENS = 10
TOKENS_PER_FACT = 8  # BABILong: max_n_facts = (length - 300) // 8
PROMPT_VARIANTS = ("full", "bare")


def babilong_prompt(context: str, question: str, task: str, variant: str = "full") -> str:
    """BABILong's ``get_formatted_input`` for ``task`` 'qa2'/'qa3' (variant 'full' or 'bare')."""
    if task not in INSTRUCTIONS:
        raise DataError(f"unknown BABILong task '{task}'; use 'qa2' or 'qa3'")
    if variant not in PROMPT_VARIANTS:
        raise DataError(f"unknown prompt variant '{variant}'; use 'full' or 'bare'")
    full = variant == "full"
    return DEFAULT_TEMPLATE.format(
        instruction=INSTRUCTIONS[task] if full else "",
        examples=EXAMPLES[task] if full else "",
        post_prompt=POST_PROMPTS[task] if full else "",
        context=context.strip(),
        question=question,
    ).strip()


def answer_sentence(task: str, q: Question) -> str:
    if task == "qa2":
        return f"The {q.obj} is in the {q.answer}."
    return f"Before the {q.before} the {q.obj} was in the {q.answer}."


def _cut(tokenizer, piece: str, ids: list[int], offsets, k: int) -> str:
    """The text of the first ``k`` tokens of ``piece``."""
    if offsets is not None:
        return piece[: offsets[k - 1][1]]
    return tokenizer.decode(ids[:k])


def sample_background(
    tokenizer, corpus: Corpus, n_tokens: int, rng: random.Random
) -> tuple[list[str], list[int]]:
    """Background pieces (each ``' ' + sentence``) totalling exactly ``n_tokens`` tokens.

    Returns (pieces, token count of each piece).  BABILong's ``SentenceSampler`` with our corpus.
    """
    text = corpus.text
    if len(text) < 200:
        raise DataError(f"the background corpus '{corpus.name}' is too short ({len(text)} characters)"
                        f"; use a larger corpus such as 'books'")
    pieces: list[str] = []
    counts: list[int] = []
    total = 0
    empty_reads = 0
    while total < n_tokens:
        off = rng.randrange(len(text))
        size = min(len(text), max(4000, (n_tokens - total) * 5))  # ~4.5 chars per token
        chunk = text[off:off + size]
        if len(chunk) < size:
            chunk = chunk + " " + text[: size - len(chunk)]
        sents = split_sentences(chunk)[1:-1]  # first and last are partial
        sents = [" " + s for s in sents]
        if not sents:
            empty_reads += 1
            if empty_reads > 50:
                raise DataError(f"found no sentences in the background corpus '{corpus.name}'")
            continue
        try:
            enc = tokenizer(sents, add_special_tokens=False, return_offsets_mapping=True)
            offs = enc["offset_mapping"]
        except (NotImplementedError, ValueError, KeyError, TypeError):
            enc = tokenizer(sents, add_special_tokens=False)
            offs = [None] * len(sents)
        kept = 0
        for s, ids, o in zip(sents, enc["input_ids"], offs):
            if len(ids) < MIN_SENTENCE_TOKENS:
                continue
            kept += 1
            if total + len(ids) >= n_tokens:
                k = n_tokens - total
                pieces.append(_cut(tokenizer, s, ids, o, k))
                counts.append(k)
                total = n_tokens
                break
            pieces.append(s)
            counts.append(len(ids))
            total += len(ids)
        if not kept:
            empty_reads += 1
            if empty_reads > 50:
                raise DataError(f"the background corpus '{corpus.name}' has no sentence of "
                                f">= {MIN_SENTENCE_TOKENS} tokens")
    return pieces, counts


def make_babilong_samples(
    tokenizer,
    length: int,
    n: int,
    seed: int = 0,
    depth=None,
    *,
    task: str = "qa2",
    background: str | Corpus | list[str] | None = None,
    prompt: str = "full",
    stream: str = "",
    variant: str = "standard",
) -> list[TaskSample]:
    """``n`` BABILong samples of ``task`` ('qa2'/'qa3') at ``length`` tokens (0 = facts only).

    ``background``: corpus name, :class:`Corpus` or list of texts (default ``"books:test"``).
    ``prompt``: ``"full"`` (instruction, examples, post-prompt) or ``"bare"``.  ``stream`` names an
    independent random stream (see :func:`lawcat.data.passkey.make_passkey_samples`).  ``variant``: one of
    :data:`lawcat.data.babilong_styles.BABILONG_VARIANTS` (a held-out background or question wording; the
    background variants read the essays whatever ``background`` says).
    """
    check_tokenizer(tokenizer)
    check_variant(variant)
    if task not in BABI_TASKS:
        raise DataError(f"unknown BABILong task '{task}'; use 'qa2' or 'qa3'")
    if isinstance(length, int) and length == 0:
        check_common(tokenizer, 1, n, seed)
    else:
        check_common(tokenizer, length, n, seed)
        if length <= PROMPT_RESERVE:
            raise DataError(f"BABILong length must be 0 (facts only) or larger than "
                            f"{PROMPT_RESERVE} tokens (the prompt reserve), got {length}")
    if depth is not None:
        raise DataError("BABILong places facts at random gaps and has no depth control; pass depth=None")
    if prompt not in PROMPT_VARIANTS:
        raise DataError(f"unknown prompt variant '{prompt}'; use 'full' or 'bare'")
    if n == 0:
        return []
    background = background_for(variant, "books:test" if background is None else background)
    corpus = as_corpus(background) if length > 0 else None
    budget = length - PROMPT_RESERVE if length > 0 else None
    max_facts = budget // TOKENS_PER_FACT if budget is not None else None
    specials = n_special(tokenizer)
    name = f"babilong-{task}"

    out: list[TaskSample] = []
    for i in range(n):
        rng = random.Random(f"{stream}{name}:{seed}:{length}:{i}")
        for _attempt in range(1000):
            k = rng.randrange(5)  # which of the story's questions this sample asks
            story = simulate_story(task, rng, n_questions=k + 1,
                                   max_facts=None if max_facts is None else max_facts + 1)
            if len(story.questions) <= k:
                continue
            q = story.questions[k]
            facts = [f.text for f in story.facts[: q.n_facts]]
            if max_facts is not None and len(facts) > max_facts:
                continue
            fact_pieces = [" " + f for f in facts]
            fact_counts = [len(x) for x in
                           tokenizer(fact_pieces, add_special_tokens=False)["input_ids"]]
            if budget is not None and sum(fact_counts) > budget:
                continue
            break
        else:  # pragma: no cover - only with absurdly small lengths
            raise DataError(f"could not fit a {task} story into {length} tokens; use a larger length")

        if budget is None:
            noise, noise_counts = [], []
        else:
            noise, noise_counts = sample_background(tokenizer, corpus, budget - sum(fact_counts), rng)
        positions = sorted(rng.choices(range(len(noise) + 1), k=len(facts)))
        merged: list[str] = []
        fi = 0
        for j in range(len(noise) + 1):
            while fi < len(facts) and positions[fi] == j:
                merged.append(fact_pieces[fi])
                fi += 1
            if j < len(noise):
                merged.append(noise[j])
        context = "".join(merged).strip()
        # its own stream, so the story, background and fact places stay the standard sample's
        qrng = random.Random(f"{stream}{name}:{variant}:{seed}:{length}:{i}")
        question, question_source = question_for(variant, task, q.obj, q.before, q.text, qrng)
        text = babilong_prompt(context, question, task, prompt)
        n_tok = count_tokens(tokenizer, text) + specials
        out.append(
            TaskSample(
                task=name,
                prompt=text,
                answer=q.answer,
                target="\nAnswer: " + answer_sentence(task, q),
                length=length,
                n_tokens=n_tok,
                depth=None,
                meta={
                    "seed": seed,
                    "index": i,
                    "question": question,  # the one asked, which the scoring reads
                    "object": q.obj,
                    "before": q.before,
                    "facts": facts,
                    "supporting": list(q.supporting),
                    "supporting_facts": [facts[s] for s in q.supporting],
                    "story_question_index": k,
                    "fact_gaps": positions,
                    "n_background_sentences": len(noise),
                    "background": corpus.name if corpus is not None else None,
                    "budget_tokens": sum(fact_counts) + sum(noise_counts),
                    "prompt_variant": prompt,
                    "answer_sentence": answer_sentence(task, q),
                    **({} if variant == "standard" else
                       {"variant": variant, "standard_question": q.text,
                        "parts": {"background": corpus.name if corpus is not None else None,
                                  "question": question_source}}),
                },
            )
        )
    return out


__all__ = [
    "DEFAULT_TEMPLATE",
    "INSTRUCTIONS",
    "EXAMPLES",
    "POST_PROMPTS",
    "PROMPT_RESERVE",
    "babilong_prompt",
    "answer_sentence",
    "sample_background",
    "make_babilong_samples",
]
