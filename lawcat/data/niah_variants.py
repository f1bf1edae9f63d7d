"""Held-out S-NIAH prompts: the RULER format with one part (or all of them) replaced by text no training sample uses.

An S-NIAH prompt is ``intro + "\\n" + context + "\\n" + question``, where the context is a haystack (RULER's noise
line repeated for S-NIAH-1, natural text for S-NIAH-2/3) holding one ``needle`` that gives a ``value`` (a 7-digit
number or a lowercase uuid) for a ``key``, and the question ends with the answer prefix, so the continuation is
``" {value}."``.  ``recipes/niah.yaml`` trains on the RULER strings only, with ``books:train`` as the natural text;
a student that learned those strings instead of retrieval fails these variants:

=========  ===================================================================================================
standard   RULER's format (:mod:`lawcat.data.niah`), byte for byte
filler     S-NIAH-1: a held-out repeated sentence group as the noise line; S-NIAH-2/3: ``books:test`` instead
           of the essays (the held-out tenth of the training corpus, another kind of text than the essays)
needle     a held-out needle sentence for the same key and value
question   a held-out question and answer prefix
values     values of a held-out form: 9-digit numbers (training: 7), uuids in upper case (training: lower)
heldout    all of the above at once, and a held-out first line
=========  ===================================================================================================

Every held-out string names the needle by the benchmark's noun ("special magic number" / "uuid"), so the question
still asks for what the needle gives. No held-out string occurs in RULER's template or needle, nor in the passkey
task's training pools (:mod:`lawcat.data.passkey_styles`); the S-NIAH-1 noise groups are the passkey task's
held-out filler groups, which no training recipe draws from.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

from .errors import DataError
from .passkey_styles import HELDOUT_FILLER_GROUPS, group_unit

NIAH_VARIANTS = ("standard", "filler", "needle", "question", "values", "heldout")

# Templates take {t} (the singular noun: "number" or "uuid"), and {key} / {value} (needles) or {query} (questions).
HELDOUT_INTROS: tuple[str, ...] = (
    "Hidden somewhere in the text below is one special magic {t}. Memorize it, since you will be asked for "
    "that {t} at the end.",
    "The passage that follows conceals a special magic {t}. Find it and keep it in mind for a question "
    "afterwards.",
)

HELDOUT_NEEDLES: tuple[str, ...] = (
    "Make a note: the special magic {t} linked to {key} is {value}.",
    "Among all of this, {key} has exactly one special magic {t}, and it is {value}.",
    "Keep in mind that {value} is the special magic {t} that goes with {key}.",
    "Record for {key}: special magic {t} {value}.",
)

HELDOUT_QUESTIONS: tuple[str, ...] = (
    "Which special magic {t} was given for {query} in the text above? The special magic {t} given for {query} "
    "is",
    "Recall the special magic {t} that belongs to {query}. The special magic {t} that belongs to {query} is",
    "Quiz: name the special magic {t} of {query}. Answer: the special magic {t} of {query} is",
)

HELDOUT_NOISE_LINES: tuple[str, ...] = tuple(group_unit(g) for g in HELDOUT_FILLER_GROUPS)
HELDOUT_CORPUS = "books:test"
HELDOUT_NUMBER_RANGE = (10**8, 10**9 - 1)


@dataclass(frozen=True)
class NiahParts:
    """The parts of one S-NIAH prompt a variant may replace; None keeps RULER's. ``names`` says where each came
    from (``"standard"`` or ``"heldout:<index>"``; the haystack's corpus name; the values' form)."""

    intro: str | None = None
    needle: str | None = None
    question: str | None = None
    noise_line: str | None = None
    heldout_values: bool = False
    names: dict = field(default_factory=dict)


def check_variant(variant) -> str:
    if variant not in NIAH_VARIANTS:
        raise DataError(f"unknown S-NIAH variant {variant!r}; use one of {', '.join(NIAH_VARIANTS)}")
    return variant


def variant_parts(variant: str, noise: bool, rng: random.Random) -> NiahParts:
    """The parts of one sample of ``variant`` (``noise``: the task's haystack is S-NIAH-1's noise lines)."""
    check_variant(variant)
    every = variant == "heldout"
    names = {part: "standard" for part in ("intro", "needle", "question", "filler", "values")}
    picked = {}

    def pick(part: str, pool: tuple[str, ...]) -> str:
        i = rng.randrange(len(pool))
        names[part] = f"heldout:{i}"
        return pool[i]

    if every:
        picked["intro"] = pick("intro", HELDOUT_INTROS)
    if every or variant == "needle":
        picked["needle"] = pick("needle", HELDOUT_NEEDLES)
    if every or variant == "question":
        picked["question"] = pick("question", HELDOUT_QUESTIONS)
    if every or variant == "filler":
        if noise:
            picked["noise_line"] = pick("filler", HELDOUT_NOISE_LINES)
        else:  # the caller reads the haystack from it (haystack_for)
            names["filler"] = HELDOUT_CORPUS
    if every or variant == "values":
        picked["heldout_values"], names["values"] = True, "heldout"
    return NiahParts(names=names, **picked)


def haystack_for(variant: str, haystack):
    """The natural-text haystack of S-NIAH-2/3 under ``variant``: the held-out corpus where the filler is held
    out, else the caller's."""
    return HELDOUT_CORPUS if check_variant(variant) in ("filler", "heldout") else haystack


def heldout_value(rng: random.Random, value_type: str) -> str:
    """A value of the held-out form: a 9-digit number, or an upper-case uuid4."""
    if value_type == "numbers":
        return str(rng.randint(*HELDOUT_NUMBER_RANGE))
    return str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()


__all__ = ["NIAH_VARIANTS", "NiahParts", "variant_parts", "haystack_for", "heldout_value", "check_variant"]
