"""Parts of a passkey prompt: the published format, training pools and held-out evaluation pools.

A passkey prompt is ``"\\n".join([task, filler_prefix, needle, filler_suffix, question])`` where

* ``task`` is a task-description line,
* the filler is either a group of short sentences repeated endlessly (joined by single spaces, like
  the published ``GARBAGE``) or natural text from a corpus, both cut at character positions,
* ``needle`` is a template holding ``{key}`` twice or so ("The access code is {key}. ..."),
* ``question`` ends so that the natural continuation is ``" {key}."`` ("... The access code is"),
* the key is an integer.

A model trained only on the published strings can learn the prompt instead of retrieval, so every
part except the published one has two disjoint pools: ``TRAIN_*`` (the ``style="diverse"`` training
data draws only from these) and ``HELDOUT_*`` (only the evaluation variants draw from these).  No
sentence, needle, question or task line occurs in both pools, and neither pool holds the published
strings.  Natural-text filler comes from ``books:train`` for training and from the evaluation-only
``essays`` for evaluation.  Training keys have 1 to ``key_digits`` digits (6 by default, 12 in
``recipes/passkey-diverse.yaml``), never 7; the held-out key range has 7.

Evaluation variants (:data:`PASSKEY_VARIANTS`), each changing one part of the published format:

=========  ===================================================================================
standard   the published format (``lawcat.data.passkey``), byte for byte
filler     a held-out repeated sentence group instead of ``GARBAGE``
natural    Paul Graham essays as filler
needle     a held-out needle wording with its matching question
question   the published needle, a held-out rephrasing of the question
keys       keys of 7 digits (1,000,000-9,999,999) instead of 1-50,000
heldout    everything held out at once: held-out task line, held-out group or essays (half each),
           held-out needle pair, 7-digit keys
=========  ===================================================================================
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .errors import check_choice

# The published format (epfml/landmark-attention run_test.py, identical in LongLoRA), byte for byte.
TASK_DESCRIPTION = (
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize "
    "them. I will quiz you about the important information there."
)
GARBAGE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
NEEDLE = "The pass key is {key}. Remember it. {key} is the pass key."
FINAL_QUESTION = "What is the pass key? The pass key is"
KEY_RANGE = (1, 50000)

PASSKEY_VARIANTS = ("standard", "filler", "natural", "needle", "question", "keys", "heldout")
PASSKEY_STYLES = ("standard", "diverse")

TRAIN_CORPUS = "books:train"
HELDOUT_CORPUS = "essays"
HELDOUT_KEY_RANGE = (1_000_000, 9_999_999)
TRAIN_MAX_DIGITS = 6
HELDOUT_DIGITS = len(str(HELDOUT_KEY_RANGE[0]))  # 7: never a training key's length, whatever max_digits is

# Diverse training mix.  A quarter of the samples keep the exact published format so the benchmark
# prompt stays learned; among the rest, repeated sentence groups are more common than natural text
# because the published benchmark uses repeated filler.
PUBLISHED_SHARE = 0.25
REPEAT_SHARE = 0.6
HELDOUT_REPEAT_SHARE = 0.5

STANDARD_NOUN = "pass key"


@dataclass(frozen=True)
class NeedlePair:
    """A needle template and the question that asks for it; ``noun`` names the secret in both."""

    needle: str
    question: str
    noun: str


# ------------------------------------------------------------------------------------------------
# Filler sentence groups.  Short, plain, digit-free sentences (the key must be the only number).

TRAIN_FILLER_GROUPS: tuple[tuple[str, ...], ...] = (
    ("The river runs past the old mill.", "Ducks swim near the bank.", "A boy throws bread to them.",
     "The water is cold today."),
    ("My cat sleeps on the warm step.", "The dog watches the gate.", "Birds sing in the hedge.",
     "Nothing else happens here."),
    ("The bus stops at the corner.", "People get on with their bags.", "The driver waves to a friend.",
     "Then the bus moves on.", "The street is empty again."),
    ("Bread is baking in the oven.", "The kitchen smells sweet.", "Flour covers the table.",
     "The clock ticks on the wall.", "Soon it will be lunch."),
    ("Snow falls on the quiet town.", "Roofs turn white.", "Children build a snowman.",
     "Their hands get cold."),
    ("The train is late again.", "Rain taps on the window.", "A woman reads her book.",
     "A man checks his watch.", "Nobody says a word."),
    ("Leaves fall from the tall oak.", "The wind carries them away.",
     "The path is covered in red and gold.", "Autumn is here."),
    ("The market opens early.", "Farmers sell apples and pears.", "A baker sells fresh rolls.",
     "The square is busy and loud."),
    ("The lamp is on the desk.", "The pen is next to the paper.", "The chair is by the window.",
     "The room is quiet.", "Dust floats in the light."),
    ("Waves roll onto the beach.", "Gulls call above the sand.", "A ship sails far away.",
     "The tide is coming in."),
    ("The farmer feeds the hens.", "The cows walk to the barn.", "The tractor is parked by the fence.",
     "Morning work is done."),
    ("We walk up the hill.", "The air is fresh and clear.", "At the top we rest.",
     "Then we walk back down.", "Our legs are tired."),
    ("A small boat is tied to the dock.", "The rope is old and wet.", "Fish jump in the lake.",
     "The evening is calm."),
    ("The library is full of books.", "Students read at long tables.", "Someone coughs softly.",
     "Pages turn slowly.", "The clock above the door is slow."),
    ("The garden has roses and tulips.", "Bees move from flower to flower.",
     "The gate creaks in the breeze.", "A cat naps in the shade."),
    ("The mountain is covered in pine trees.", "A trail winds up the slope.",
     "Hikers stop to drink water.", "Clouds drift over the peak."),
    ("Coffee is brewing in the pot.", "Toast pops out of the toaster.", "The radio plays a slow song.",
     "It is a lazy morning.", "The cat wants breakfast too."),
    ("The city lights come on at night.", "Cars move along the wide road.",
     "A siren sounds in the distance.", "The streets are still busy."),
    ("Stars shine over the desert.", "The sand is cool at night.", "A fox runs between the rocks.",
     "The moon rises slowly."),
    ("The teacher writes on the board.", "The students copy the words.", "A bell rings in the hall.",
     "Class is over.", "Everyone packs up their things."),
    ("Rain falls on the tin roof.", "Puddles form in the yard.", "Frogs croak by the pond.",
     "The air smells of wet earth."),
    ("The bakery sells cakes and pies.", "A girl buys a cookie.", "The owner smiles at her.",
     "The door bell jingles."),
    ("The old house has a red door.", "Ivy grows on the walls.", "The windows are dusty.",
     "Nobody has lived there for years."),
    ("A horse eats hay in the stable.", "Its tail swishes at the flies.",
     "The stable boy brushes its coat.", "The horse is calm.", "Outside, the field is wet."),
    ("The forest is dark and deep.", "Owls hoot in the branches.", "A stream flows over stones.",
     "Moss grows on the logs."),
    ("Mother is painting the fence.", "Father is mowing the lawn.", "The kids play with a ball.",
     "The radio is on.", "It is a warm afternoon."),
    ("The museum has many old paintings.", "Visitors walk slowly through the halls.",
     "A guard stands by the door.", "Voices are kept low."),
    ("The plane climbs above the clouds.", "Passengers look out of the windows.",
     "A baby cries for a while.", "Then the cabin is quiet."),
    ("Ice covers the pond.", "Skaters glide in circles.", "A dog barks at them from the shore.",
     "Hot tea waits at home."),
    ("The shop closes at dusk.", "The owner counts the coins.", "He turns off the lights.",
     "He locks the door and goes home.", "The street lamps flicker on."),
    ("A spider spins a web in the corner.", "A fly buzzes near the glass.", "The curtains move a little.",
     "The afternoon is long and slow."),
    ("The children paint with bright colors.", "One of them spills the water.",
     "Everyone laughs at the mess.", "The teacher brings a towel."),
)

HELDOUT_FILLER_GROUPS: tuple[tuple[str, ...], ...] = (
    ("The violin plays a gentle tune.", "The cello answers softly.", "The audience listens in silence.",
     "A candle flickers on the stage."),
    ("Copper pipes run along the ceiling.", "Steam hisses from a valve.", "The engineer tightens a bolt.",
     "The machine hums steadily.", "Oil drips onto the floor."),
    ("The astronaut floats inside the station.", "Our planet glows below her.",
     "A checklist drifts past her shoulder.", "She catches it and smiles."),
    ("Pebbles crunch under my boots.", "A lighthouse blinks on the cliff.", "Fog rolls in from the sea.",
     "Somewhere a bell clangs."),
    ("The chef chops onions quickly.", "Garlic sizzles in the pan.",
     "A waiter carries plates to the tables.", "The restaurant is full tonight.", "Someone orders soup."),
    ("The chess players sit in silence.", "One of them moves a bishop.", "The other frowns and thinks.",
     "A timer clicks between turns."),
    ("The volcano is quiet this year.", "Goats graze on its slopes.",
     "Villagers grow grapes in the dark soil.", "Smoke rarely rises now."),
    ("The tailor measures the sleeve.", "Needles rest in a cushion.", "Bolts of wool line the shelves.",
     "The mirror is tall and narrow.", "A customer waits by the curtain."),
    ("Penguins waddle across the ice.", "A seal slides into the water.",
     "The wind howls over the glacier.", "The horizon is pale and white."),
    ("The printer jams once more.", "Paper spills onto the floor.", "Somebody sighs loudly.",
     "The office coffee machine gurgles."),
)

# ------------------------------------------------------------------------------------------------
# Needle wordings with their questions.  Every question ends with "<the noun> is" so that
# " {key}." is the natural continuation, as in the published format.

TRAIN_NEEDLES: tuple[NeedlePair, ...] = (
    NeedlePair("The access code is {key}. Remember it. {key} is the access code.",
               "What is the access code? The access code is", "access code"),
    NeedlePair("The secret number is {key}. Do not forget it. The secret number is {key}.",
               "What was the secret number? The secret number is", "secret number"),
    NeedlePair("Here is the magic number: {key}. Keep it in mind. The magic number is {key}.",
               "Recall the magic number. The magic number is", "magic number"),
    NeedlePair("The lock code is {key}. Write it down. {key} is the lock code.",
               "What is the lock code? The lock code is", "lock code"),
    NeedlePair("Important: the special number is {key}. Memorize it. {key} is the special number.",
               "Which special number was given? The special number is", "special number"),
    NeedlePair("The password is {key}. Hold on to it. {key} is the password.",
               "What is the password? The password is", "password"),
    NeedlePair("The hidden value is {key}. Note it well. {key} is the hidden value.",
               "Please state the hidden value. The hidden value is", "hidden value"),
    NeedlePair("The ticket number is {key}. You will be asked about it. {key} is the ticket number.",
               "What is the ticket number? The ticket number is", "ticket number"),
)

HELDOUT_NEEDLES: tuple[NeedlePair, ...] = (
    NeedlePair("The vault combination is {key}. Keep this safe. {key} is the vault combination.",
               "What is the vault combination? The vault combination is", "vault combination"),
    NeedlePair("My lucky number is {key}. Please remember that my lucky number is {key}.",
               "What is my lucky number? My lucky number is", "lucky number"),
    NeedlePair("Attention, the identification code is {key}. Repeat: {key} is the identification code.",
               "Name the identification code. The identification code is", "identification code"),
    NeedlePair("The room number is {key}. Do not lose it. {key} is the room number.",
               "Tell me the room number. The room number is", "room number"),
)

STANDARD_PAIR = NeedlePair(NEEDLE, FINAL_QUESTION, STANDARD_NOUN)

# Rephrasings of the published question, asked after the published needle.
TRAIN_QUESTIONS: tuple[str, ...] = (
    "What pass key was given in the text? The pass key is",
    "Recall the pass key. The pass key is",
    "Which number is the pass key? The pass key is",
    "Please tell me the pass key. The pass key is",
)

HELDOUT_QUESTIONS: tuple[str, ...] = (
    "Do you remember the pass key? The pass key is",
    "Now report the pass key you found. The pass key is",
    "Quiz time: what was the pass key? The pass key is",
)

# ------------------------------------------------------------------------------------------------
# Task-description lines.

TRAIN_TASKS: tuple[str, ...] = (
    "A short piece of important information is buried in a long stretch of unrelated text. Read "
    "carefully and remember it, because I will ask about it at the end.",
    "Somewhere in the following text there is a number you need to remember. Most of the text does "
    "not matter. You will be asked for the number afterwards.",
    "Read the text below. It is mostly filler, but one line holds a value that you must memorize for "
    "a question at the end.",
    "The following passage hides one key fact among many irrelevant sentences. Find the fact and keep "
    "it in mind.",
    "Pay attention: a code is placed somewhere in this long document. Remember the code; a question "
    "about it follows.",
    "Below is a long text with a single important detail. Ignore everything else and remember that "
    "detail.",
)

HELDOUT_TASKS: tuple[str, ...] = (
    "Your job is to locate a single piece of data concealed within plenty of meaningless text, then "
    "answer a question about it.",
    "This document contains lots of noise and exactly one useful item. Spot the item and retain it for "
    "the test at the end.",
    "Memory test: scan the passage that follows, pick out the one value that matters, and be ready to "
    "recall it.",
)


def group_unit(group: tuple[str, ...]) -> str:
    """One period of a repeated filler group (its sentences joined by single spaces)."""
    return " ".join(group)


@dataclass
class PromptParts:
    """Everything that varies between passkey prompts, except the filler length and the depth.

    ``filler_unit`` is the repeated text (one period) or None for natural text from ``corpus``.
    ``names`` says where each part came from: ``"standard"``, ``"train:<index>"``,
    ``"heldout:<index>"``, a corpus name, ``"rephrase-train:<index>"`` for a question rephrasing,
    and for the key ``"standard"``, ``"digits:<n>"`` or ``"heldout"``.
    """

    task: str
    needle: str
    question: str
    noun: str
    key: int
    filler_unit: str | None
    corpus: str | None
    published: bool
    names: dict = field(default_factory=dict)


def check_variant(variant) -> str:
    return check_choice(variant, PASSKEY_VARIANTS, "passkey variant")


def check_style(style) -> str:
    return check_choice(style, PASSKEY_STYLES, "passkey style")


def training_key(rng: random.Random, max_digits: int = TRAIN_MAX_DIGITS) -> tuple[int, int]:
    """(key, digits): the digit count is uniform in 1..max_digits without the held-out key's length, then the key
    is uniform among those. Keys longer than the held-out ones (max_digits > 7) teach copying a number to its end,
    which the default 1-6 digits did not: a student trained on them stopped every 7-digit key after six."""
    counts = [d for d in range(1, max_digits + 1) if d != HELDOUT_DIGITS]
    digits = counts[rng.randrange(len(counts))]
    return rng.randint(1 if digits == 1 else 10 ** (digits - 1), 10 ** digits - 1), digits


def published_parts(key: int) -> PromptParts:
    return PromptParts(TASK_DESCRIPTION, NEEDLE, FINAL_QUESTION, STANDARD_NOUN, key, GARBAGE, None, True,
                       {"task": "standard", "filler": "standard", "needle": "standard",
                        "question": "standard", "key": "standard"})


def _pick(rng: random.Random, pool: tuple, pool_name: str):
    j = rng.randrange(len(pool))
    return pool[j], f"{pool_name}:{j}"


def variant_parts(variant: str, rng: random.Random, key_range: tuple[int, int] = KEY_RANGE) -> PromptParts:
    """The parts of one evaluation sample of ``variant`` (held-out pools only; see the table above).

    ``key_range`` applies where the variant keeps the published keys ('keys' and 'heldout' use
    :data:`HELDOUT_KEY_RANGE`).
    """
    check_variant(variant)
    if variant == "heldout":
        task, task_name = _pick(rng, HELDOUT_TASKS, "heldout")
        unit, corpus, filler_name = _pick_filler(rng, HELDOUT_FILLER_GROUPS, HELDOUT_CORPUS, HELDOUT_REPEAT_SHARE,
                                                 "heldout")
        pair, pair_name = _pick(rng, HELDOUT_NEEDLES, "heldout")
        key = rng.randint(*HELDOUT_KEY_RANGE)
        return PromptParts(task, pair.needle, pair.question, pair.noun, key, unit, corpus, False,
                           {"task": task_name, "filler": filler_name, "needle": pair_name,
                            "question": pair_name, "key": "heldout"})
    parts = published_parts(0)
    parts.published = variant == "standard"
    if variant == "filler":
        group, parts.names["filler"] = _pick(rng, HELDOUT_FILLER_GROUPS, "heldout")
        parts.filler_unit = group_unit(group)
    elif variant == "natural":
        parts.filler_unit, parts.corpus = None, HELDOUT_CORPUS
        parts.names["filler"] = HELDOUT_CORPUS
    elif variant == "needle":
        pair, name = _pick(rng, HELDOUT_NEEDLES, "heldout")
        parts.needle, parts.question, parts.noun = pair.needle, pair.question, pair.noun
        parts.names["needle"] = parts.names["question"] = name
    elif variant == "question":
        parts.question, parts.names["question"] = _pick(rng, HELDOUT_QUESTIONS, "rephrase-heldout")
    if variant in ("keys",):
        parts.key = rng.randint(*HELDOUT_KEY_RANGE)
        parts.names["key"] = "heldout"
    else:
        parts.key = rng.randint(*key_range)
    return parts


def _pick_filler(rng: random.Random, groups, corpus: str, repeat_share: float, label: str):
    """(repeated unit or None, corpus or None, name): a sentence group with probability `repeat_share`, else text."""
    if rng.random() < repeat_share:
        group, name = _pick(rng, groups, label)
        return group_unit(group), None, name
    return None, corpus, corpus


def diverse_parts(rng: random.Random, key_range: tuple[int, int] = KEY_RANGE,
                  max_digits: int = TRAIN_MAX_DIGITS) -> PromptParts:
    """The parts of one ``style="diverse"`` training sample (training pools only).

    With probability :data:`PUBLISHED_SHARE` the exact published format (keys from ``key_range``);
    otherwise a training task line, a training sentence group repeated (:data:`REPEAT_SHARE`) or
    ``books:train`` text, a training needle pair (or the published needle with the published or a
    training rephrasing of its question), and a key of 1-6 digits.
    """
    if rng.random() < PUBLISHED_SHARE:
        return published_parts(rng.randint(*key_range))
    task, task_name = _pick(rng, TRAIN_TASKS, "train")
    unit, corpus, filler_name = _pick_filler(rng, TRAIN_FILLER_GROUPS, TRAIN_CORPUS, REPEAT_SHARE, "train")
    # The published needle appears with its own question and with the training rephrasings, so
    # that the benchmark needle is also seen amid other filler and task lines.
    j = rng.randrange(len(TRAIN_NEEDLES) + 2)
    if j < len(TRAIN_NEEDLES):
        pair, needle_name, question_name = TRAIN_NEEDLES[j], f"train:{j}", f"train:{j}"
    elif j == len(TRAIN_NEEDLES):
        pair, needle_name, question_name = STANDARD_PAIR, "standard", "standard"
    else:
        q, question_name = _pick(rng, TRAIN_QUESTIONS, "rephrase-train")
        pair, needle_name = NeedlePair(NEEDLE, q, STANDARD_NOUN), "standard"
    key, digits = training_key(rng, max_digits)
    return PromptParts(task, pair.needle, pair.question, pair.noun, key, unit, corpus, False,
                       {"task": task_name, "filler": filler_name, "needle": needle_name,
                        "question": question_name, "key": f"digits:{digits}"})


def _check_pools() -> None:
    """Import-time guard: the pools stay disjoint and free of the published strings."""
    published = set(GARBAGE.replace(". ", ".\n").split("\n"))
    train_s = {s for g in TRAIN_FILLER_GROUPS for s in g}
    held_s = {s for g in HELDOUT_FILLER_GROUPS for s in g}
    pairs = [(TRAIN_NEEDLES, HELDOUT_NEEDLES)]
    assert not train_s & held_s and not (train_s | held_s) & published
    for tr, ho in pairs:
        assert not {p.needle for p in tr} & {p.needle for p in ho}
        assert not {p.question for p in tr} & {p.question for p in ho}
        assert not {p.noun for p in tr} & {p.noun for p in ho}
        assert STANDARD_PAIR not in tr and STANDARD_PAIR not in ho
    assert (not set(TRAIN_QUESTIONS) & set(HELDOUT_QUESTIONS)
            and FINAL_QUESTION not in TRAIN_QUESTIONS + HELDOUT_QUESTIONS)
    assert not set(TRAIN_TASKS) & set(HELDOUT_TASKS) and TASK_DESCRIPTION not in TRAIN_TASKS + HELDOUT_TASKS
    for pool in (TRAIN_FILLER_GROUPS, HELDOUT_FILLER_GROUPS):
        for g in pool:
            assert 4 <= len(g) <= 6 and not any(c.isdigit() for s in g for c in s)


_check_pools()

__all__ = [
    "PASSKEY_VARIANTS",
    "PASSKEY_STYLES",
    "NeedlePair",
    "PromptParts",
    "TRAIN_FILLER_GROUPS",
    "HELDOUT_FILLER_GROUPS",
    "TRAIN_NEEDLES",
    "HELDOUT_NEEDLES",
    "STANDARD_PAIR",
    "TRAIN_QUESTIONS",
    "HELDOUT_QUESTIONS",
    "TRAIN_TASKS",
    "HELDOUT_TASKS",
    "TRAIN_CORPUS",
    "HELDOUT_CORPUS",
    "HELDOUT_KEY_RANGE",
    "TRAIN_MAX_DIGITS",
    "PUBLISHED_SHARE",
    "REPEAT_SHARE",
    "group_unit",
    "variant_parts",
    "diverse_parts",
    "published_parts",
    "training_key",
    "check_variant",
    "check_style",
]
