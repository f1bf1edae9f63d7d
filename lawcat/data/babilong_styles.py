"""Held-out BABILong prompts: the benchmark's format with its background or its question replaced by text no
training sample uses.

A BABILong sample is a bAbI story's facts scattered through background sentences, inside the benchmark's template,
followed by one question (:mod:`lawcat.data.babilong`). Training (``recipes/babilong.yaml``) reads its background
from ``books:train`` and asks the benchmark's questions; evaluation reads ``books:test``. A student that learned
the benchmark's question wording or the books' style instead of tracking the story fails these variants:

==========  ==================================================================================================
standard    the benchmark's format, byte for byte
background  Paul Graham essays (``essays``, evaluation-only) as the background instead of ``books:test``
question    a held-out wording of the question, same object, same location, same answer
heldout     both at once
==========  ==================================================================================================

The instruction, its two examples and the post-prompt stay the benchmark's: they teach the answer format that
BABILong's scoring reads. The story's facts keep bAbI's actors, places, objects and verbs, which the benchmark
fixes. Each variant sample keeps the standard sample's story and question (its own random stream picks the
wording), so the two can be compared sample by sample.
"""

from __future__ import annotations

import random

from .errors import check_choice

BABILONG_VARIANTS = ("standard", "background", "question", "heldout")
HELDOUT_BACKGROUND = "essays"

# Templates take {o} (the object) and, for qa3, {l} (the location the question names). The trailing space is
# BABILong's own (its questions end in "? ").
HELDOUT_QUESTIONS = {
    "qa2": (
        "In which place is the {o} now? ",
        "Where can the {o} be found at the end? ",
        "Tell me the current location of the {o}. ",
    ),
    "qa3": (
        "Which place was the {o} in just before it reached the {l}? ",
        "Before it got to the {l}, where had the {o} been? ",
        "Name the location of the {o} right before the {l}. ",
    ),
}


def check_variant(variant) -> str:
    return check_choice(variant, BABILONG_VARIANTS, "BABILong variant")


def background_for(variant: str, background):
    """The background corpus under ``variant``: the held-out one where the background is held out."""
    return HELDOUT_BACKGROUND if check_variant(variant) in ("background", "heldout") else background


def question_for(variant: str, task: str, obj: str, before: str | None, standard: str,
                 rng: random.Random) -> tuple[str, str]:
    """(question text, where it came from): a held-out wording for the 'question' and 'heldout' variants, else
    the benchmark's ``standard`` text."""
    if check_variant(variant) not in ("question", "heldout"):
        return standard, "standard"
    pool = HELDOUT_QUESTIONS[task]
    i = rng.randrange(len(pool))
    return pool[i].format(o=obj, l=before), f"heldout:{i}"


__all__ = ["BABILONG_VARIANTS", "HELDOUT_QUESTIONS", "check_variant", "background_for", "question_for"]
