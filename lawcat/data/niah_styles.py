"""Parts of an S-NIAH prompt: RULER's format, diverse training pools and held-out evaluation pools.

An S-NIAH prompt is ``intro + "\\n" + context + "\\n" + question``, where the context is a haystack (RULER's noise
line repeated for S-NIAH-1, natural text for S-NIAH-2/3) holding one ``needle`` that gives a ``value`` (a 7-digit
number or a lowercase uuid) for a ``key``, and the question ends with the answer prefix, so the continuation is
``" {value}."``.  A student trained on RULER's strings alone can learn those strings instead of retrieval, so, as
for passkey (:mod:`lawcat.data.passkey_styles`), every part has two disjoint pools besides RULER's: ``TRAIN_*`` (only
``style="diverse"`` training data draws from these) and ``HELDOUT_*`` (only the evaluation variants do).

Evaluation variants (:data:`NIAH_VARIANTS`):

=========  ===================================================================================================
standard   RULER's format (:mod:`lawcat.data.niah`), byte for byte
filler     S-NIAH-1: a held-out repeated sentence group as the noise line; S-NIAH-2/3: ``books:test`` instead
           of the essays (the held-out tenth of the training corpus, another kind of text than the essays)
needle     a held-out needle sentence for the same key and value
question   a held-out question and answer prefix
values     values of a held-out form: 9-digit numbers (training: 7, or under ``diverse`` 5-12 but never 9),
           uuids in upper case (training: lower case only)
heldout    all of the above at once, and a held-out first line
=========  ===================================================================================================

Training styles (:data:`NIAH_STYLES`): ``standard`` is RULER's format; ``diverse`` keeps it for a quarter of the
samples and otherwise draws each part from the training pools (first line, needle, question, noise line for
S-NIAH-1) and the value from a wider training form (numbers of 5-12 digits but never 9; lowercase uuids, with or
without hyphens, and other lowercase hex strings).

Every string names the needle by the benchmark's noun ("special magic number" / "uuid"), so the question still asks
for what the needle gives. No training or held-out string occurs in RULER's template or needle, no held-out string in
any training pool, and the S-NIAH-1 noise groups are the passkey task's (held-out ones for evaluation, training ones
for training).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

from .errors import check_choice
from .passkey_styles import HELDOUT_FILLER_GROUPS, TRAIN_FILLER_GROUPS, group_unit

NIAH_VARIANTS = ("standard", "filler", "needle", "question", "values", "heldout")
NIAH_STYLES = ("standard", "diverse")
PUBLISHED_SHARE = 0.25  # of diverse training samples in RULER's exact format, so the benchmark stays learned

# Templates take {t} (the singular noun: "number" or "uuid"), and {key} / {value} (needles) or {query} (questions).
TRAIN_INTROS: tuple[str, ...] = (
    "Somewhere in the text below there is a special magic {t}. Remember it; I will ask you for it at the end.",
    "Read the following text and memorize the special magic {t} hidden in it. A question about it follows.",
    "The text below hides one special magic {t} among many unrelated sentences. Find it and remember it.",
    "Pay attention to the special magic {t} in the following document. You will be quizzed on it.",
)

TRAIN_NEEDLES: tuple[str, ...] = (
    "The special magic {t} for {key} is {value}.",
    "Remember, the special magic {t} of {key} is {value}.",
    "Here is the special magic {t} for {key}: {value}.",
    "{key} comes with the special magic {t} {value}.",
    "Important: {value} is the special magic {t} for {key}.",
    "Please memorize the special magic {t} for {key}, which is {value}.",
    # Value-first forms: a student trained on one of these read 1 in 66 held-out value-first needles
    # (results/README.md, S-NIAH).
    "{value} is what {key} has as its special magic {t}.",
    "Note {value}: it is the special magic {t} of {key}.",
)

TRAIN_QUESTIONS: tuple[str, ...] = (
    "What special magic {t} was mentioned for {query}? The special magic {t} for {query} is",
    "Tell me the special magic {t} for {query}. The special magic {t} for {query} is",
    "Think back to the text. What is the special magic {t} of {query}? The special magic {t} of {query} is",
    "Which special magic {t} did the text give {query}? The special magic {t} of {query} is",
)

TRAIN_NOISE_LINES: tuple[str, ...] = tuple(group_unit(g) for g in TRAIN_FILLER_GROUPS)

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
HELDOUT_DIGITS = 9
TRAIN_DIGITS = tuple(d for d in range(5, 13) if d != HELDOUT_DIGITS)


@dataclass(frozen=True)
class NiahParts:
    """The parts of one S-NIAH prompt a variant or style may replace; None keeps RULER's. ``values``: the form of
    the value, "standard", "heldout" or "train". ``names`` says where each part came from (``"standard"``,
    ``"train:<i>"`` or ``"heldout:<i>"``; the haystack's corpus; the values' form)."""

    intro: str | None = None
    needle: str | None = None
    question: str | None = None
    noise_line: str | None = None
    values: str = "standard"
    names: dict = field(default_factory=dict)


def check_variant(variant) -> str:
    return check_choice(variant, NIAH_VARIANTS, "S-NIAH variant")


def check_style(style) -> str:
    return check_choice(style, NIAH_STYLES, "S-NIAH style")


def _standard_names() -> dict:
    return {part: "standard" for part in ("intro", "needle", "question", "filler", "values")}


def _pick(rng: random.Random, names: dict, part: str, pool: tuple[str, ...], pool_name: str) -> str:
    i = rng.randrange(len(pool))
    names[part] = f"{pool_name}:{i}"
    return pool[i]


def variant_parts(variant: str, noise: bool, rng: random.Random) -> NiahParts:
    """The parts of one evaluation sample of ``variant`` (``noise``: the task's haystack is S-NIAH-1's noise
    lines; for S-NIAH-2/3 the caller reads the held-out corpus, see :func:`haystack_for`)."""
    check_variant(variant)
    every, names, picked = variant == "heldout", _standard_names(), {}
    if every:
        picked["intro"] = _pick(rng, names, "intro", HELDOUT_INTROS, "heldout")
    if every or variant == "needle":
        picked["needle"] = _pick(rng, names, "needle", HELDOUT_NEEDLES, "heldout")
    if every or variant == "question":
        picked["question"] = _pick(rng, names, "question", HELDOUT_QUESTIONS, "heldout")
    if every or variant == "filler":
        if noise:
            picked["noise_line"] = _pick(rng, names, "filler", HELDOUT_NOISE_LINES, "heldout")
        else:
            names["filler"] = HELDOUT_CORPUS
    if every or variant == "values":
        picked["values"] = names["values"] = "heldout"
    return NiahParts(names=names, **picked)


def diverse_parts(noise: bool, rng: random.Random) -> NiahParts:
    """The parts of one ``style="diverse"`` training sample: RULER's format with probability
    :data:`PUBLISHED_SHARE`, else every part from the training pools."""
    names = _standard_names()
    if rng.random() < PUBLISHED_SHARE:
        return NiahParts(names=names)
    picked = {"intro": _pick(rng, names, "intro", TRAIN_INTROS, "train"),
              "needle": _pick(rng, names, "needle", TRAIN_NEEDLES, "train"),
              "question": _pick(rng, names, "question", TRAIN_QUESTIONS, "train"),
              "values": "train"}
    names["values"] = "train"
    if noise and rng.random() < 0.75:  # RULER's noise line stays one of the fillers
        picked["noise_line"] = _pick(rng, names, "filler", TRAIN_NOISE_LINES, "train")
    return NiahParts(names=names, **picked)


def haystack_for(variant: str, haystack):
    """The natural-text haystack of S-NIAH-2/3 under ``variant``: the held-out corpus where the filler is held
    out, else the caller's."""
    return HELDOUT_CORPUS if check_variant(variant) in ("filler", "heldout") else haystack


def draw_value(rng: random.Random, value_type: str, form: str) -> str:
    """A value of ``form`` ("heldout" or "train"; RULER's own is :func:`lawcat.data.niah.random_value`)."""
    if form == "heldout":
        if value_type == "numbers":
            return str(rng.randint(10 ** (HELDOUT_DIGITS - 1), 10**HELDOUT_DIGITS - 1))
        return str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()
    if value_type == "numbers":
        digits = rng.choice(TRAIN_DIGITS)
        return str(rng.randint(10 ** (digits - 1), 10**digits - 1))
    u = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    shape = rng.randrange(3)
    if shape == 0:
        return u
    if shape == 1:
        return u.replace("-", "")
    return f"{rng.getrandbits(4 * 24):024x}"[: rng.randint(12, 24)]


__all__ = ["NIAH_VARIANTS", "NIAH_STYLES", "NiahParts", "variant_parts", "diverse_parts", "haystack_for",
           "draw_value", "check_variant", "check_style"]
