"""A bAbI world simulator for tasks 2 (two supporting facts) and 3 (three supporting facts).

Our own implementation of the process described in benchmarks.md §5a-5c (the public Lua
generator's ``WhereIsObject`` / ``WhereWasObject`` tasks, with the public dataset's surface forms):

* world: 4 actors, 6 locations, 3 portable objects and an immovable ``table``; every actor and
  object starts at a random location that the reader is not told;
* each step draws an action type uniformly from get / drop / teleport (move), a random actor and a
  random object (any of the 4, table included) or location, and redraws all three until the clause
  is valid (so moves, almost always valid, dominate as in the published files):
  move = an actor goes to a different location (carrying what it holds); get = an actor takes a
  portable, unheld object at its own location (actors can hold several); drop = an actor puts down
  an object it holds, which then stays at the actor's location;
* the reader knows only what the story said: an actor's location after a sentence moves it, a held
  object's location iff its holder's location is known, a dropped object's location iff the dropper's
  location was known at the drop;
* after every fact, if more than 2 facts came since the last question and a fair coin says so, a
  question is asked (and the counter reset):
  qa2 ``Where is the {o}?`` about a random object whose location the reader knows, supported by the
  get/drop that ties the object to its (last) holder and that holder's last move;
  qa3 ``Where was the {o} before the {L}?`` about a random object whose known location history has
  at least 2 entries, answer the entry before ``L`` (the last one), supported by the union of the
  two entries' supports; like the Lua renderer, only emitted when that union is exactly 3 facts;
* a story ends after 5 questions.

Surface forms (public dataset): move = went to / journeyed to / travelled to / moved to / went back
to; get = got / took / grabbed / picked up; drop = dropped / discarded / put down / left; " there"
is appended to get sentences with probability 0.5 in qa2 (never to drops), and to get and drop
sentences with probability 0.2 in qa3 (the original generator is not public; these follow the
vocabulary and quoted lines of the en-10k files).  Question strings keep BABILong's trailing space.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .errors import DataError

ACTORS = ("John", "Mary", "Sandra", "Daniel")
LOCATIONS = ("bedroom", "kitchen", "garden", "hallway", "bathroom", "office")
OBJECTS = ("apple", "football", "milk")  # portable
FIXED_OBJECTS = ("table",)  # exists, cannot be picked up
LABELS = tuple(sorted(LOCATIONS))  # BABILong TASK_LABELS for qa2/qa3

MOVE_FORMS = (
    "{a} went to the {x}",
    "{a} journeyed to the {x}",
    "{a} travelled to the {x}",
    "{a} moved to the {x}",
    "{a} went back to the {x}",
)
GET_FORMS = ("{a} got the {x}", "{a} took the {x}", "{a} grabbed the {x}", "{a} picked up the {x}")
DROP_FORMS = ("{a} dropped the {x}", "{a} discarded the {x}", "{a} put down the {x}", "{a} left the {x}")
FORMS = {"move": MOVE_FORMS, "get": GET_FORMS, "drop": DROP_FORMS}
THERE_PROB = {"qa2": {"move": 0.0, "get": 0.5, "drop": 0.0},
              "qa3": {"move": 0.0, "get": 0.2, "drop": 0.2}}
QA2_QUESTION = "Where is the {o}? "
QA3_QUESTION = "Where was the {o} before the {l}? "
TASKS = ("qa2", "qa3")
N_QUESTIONS = 5


@dataclass(frozen=True)
class Fact:
    text: str  # e.g. "Mary got the milk there."
    action: str  # "move" | "get" | "drop"
    actor: str
    arg: str  # location for move, object for get/drop


@dataclass(frozen=True)
class Question:
    text: str  # "Where is the milk? " (BABILong keeps the trailing space)
    answer: str  # a location
    obj: str
    n_facts: int  # facts told before the question (the question follows facts[n_facts - 1])
    supporting: tuple[int, ...]  # 0-based indices into Story.facts
    before: str | None = None  # qa3: the location L in "before the L"


@dataclass
class Story:
    task: str
    facts: list[Fact] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)

    def to_babi(self) -> str:
        """The story in the bAbI file format (1-based line ids, question lines with tab fields)."""
        lines, line_of_fact, nid, qi = [], {}, 0, 0
        for k, f in enumerate(self.facts):
            nid += 1
            line_of_fact[k] = nid
            lines.append(f"{nid} {f.text}")
            while qi < len(self.questions) and self.questions[qi].n_facts == k + 1:
                q = self.questions[qi]
                nid += 1
                sup = " ".join(str(line_of_fact[s]) for s in q.supporting)
                lines.append(f"{nid} {q.text}\t{q.answer}\t{sup}")
                qi += 1
        return "\n".join(lines)


class _World:
    """True world state plus what the reader has been told."""

    def __init__(self, rng: random.Random):
        self.actor_loc = {a: rng.choice(LOCATIONS) for a in ACTORS}
        self.obj_loc = {o: rng.choice(LOCATIONS) for o in OBJECTS + FIXED_OBJECTS}  # when not held
        self.holder: dict[str, str | None] = {o: None for o in OBJECTS}
        # Reader knowledge.
        self.last_move: dict[str, int | None] = {a: None for a in ACTORS}  # fact id of last move
        self.get_fact: dict[str, int | None] = {o: None for o in OBJECTS}
        self.dropped_at: dict[str, tuple[str, tuple[int, ...]] | None] = {o: None for o in OBJECTS}
        self.history: dict[str, list[tuple[str, tuple[int, ...]]]] = {o: [] for o in OBJECTS}

    # -- what can happen
    def is_valid(self, action: str, a: str, x: str) -> bool:
        if action == "move":
            return x != self.actor_loc[a]
        if x not in self.holder:  # the table (or anything immovable) can never be taken or dropped
            return False
        if action == "get":
            return self.holder[x] is None and self.obj_loc[x] == self.actor_loc[a]
        return self.holder[x] == a

    def apply(self, k: int, action: str, a: str, x: str) -> None:
        if action == "move":
            self.actor_loc[a] = x
            self.last_move[a] = k
        elif action == "get":
            self.holder[x] = a
            self.get_fact[x] = k
            self.dropped_at[x] = None
        else:
            self.holder[x] = None
            self.obj_loc[x] = self.actor_loc[a]
            m = self.last_move[a]
            self.dropped_at[x] = (self.actor_loc[a], tuple(sorted((m, k)))) if m is not None else None
        for o in OBJECTS:
            known = self.known(o)
            if known is not None and (not self.history[o] or self.history[o][-1][0] != known[0]):
                self.history[o].append(known)

    # -- what the reader knows
    def known(self, o: str) -> tuple[str, tuple[int, ...]] | None:
        """(location, supporting fact ids) of object ``o`` as far as the reader knows, else None."""
        a = self.holder[o]
        if a is None:
            return self.dropped_at[o]
        m = self.last_move[a]
        if m is None:
            return None
        return self.actor_loc[a], tuple(sorted((m, self.get_fact[o])))


def _render(rng: random.Random, task: str, action: str, a: str, x: str) -> str:
    text = rng.choice(FORMS[action]).format(a=a, x=x)
    if rng.random() < THERE_PROB[task][action]:
        text += " there"
    return text + "."


def simulate_story(
    task: str,
    rng: random.Random,
    n_questions: int = N_QUESTIONS,
    max_facts: int | None = None,
) -> Story:
    """Simulate one story with ``n_questions`` questions (fewer if ``max_facts`` stops it first)."""
    if task not in TASKS:
        raise DataError(f"unknown bAbI task '{task}'; use 'qa2' or 'qa3'")
    world = _World(rng)
    story = Story(task)
    since_question = 0
    while len(story.questions) < n_questions:
        if max_facts is not None and len(story.facts) >= max_facts:
            break
        while True:  # rejection sampling of (action, actor, argument) until the clause is valid
            action = rng.choice(("get", "drop", "move"))
            a = rng.choice(ACTORS)
            x = rng.choice(LOCATIONS if action == "move" else OBJECTS + FIXED_OBJECTS)
            if world.is_valid(action, a, x):
                break
        k = len(story.facts)
        story.facts.append(Fact(_render(rng, task, action, a, x), action, a, x))
        world.apply(k, action, a, x)
        since_question += 1
        if since_question > 2 and rng.random() < 0.5:
            q = _ask(task, world, rng, len(story.facts))
            if q is not None:
                story.questions.append(q)
                since_question = 0
    return story


def _ask(task: str, world: _World, rng: random.Random, n_facts: int) -> Question | None:
    if task == "qa2":
        cands = [o for o in OBJECTS if world.known(o) is not None]
        if not cands:
            return None
        o = rng.choice(cands)
        loc, sup = world.known(o)
        return Question(QA2_QUESTION.format(o=o), loc, o, n_facts, sup)
    cands = [o for o in OBJECTS if len(world.history[o]) >= 2]
    if not cands:
        return None
    o = rng.choice(cands)
    (prev, s1), (last, s2) = world.history[o][-2:]
    sup = tuple(sorted(set(s1) | set(s2)))
    if len(sup) != 3:  # the Lua renderer emits a qa3 question only with exactly 3 supports
        return None
    return Question(QA3_QUESTION.format(o=o, l=last), prev, o, n_facts, sup, before=last)


__all__ = [
    "ACTORS",
    "LOCATIONS",
    "OBJECTS",
    "FIXED_OBJECTS",
    "LABELS",
    "Fact",
    "Question",
    "Story",
    "simulate_story",
]
