"""An independent replay of bAbI qa2/qa3 stories from their sentences (test helper).

Written separately from ``lawcat.data.babi``: it parses the surface text with its own regexes and
tracks what a reader can infer, to check every answer against the facts alone.
"""

from __future__ import annotations

import re

MOVE = re.compile(r"^(\w+) (?:went|journeyed|travelled|moved|went back) to the (\w+)\.$")
GET = re.compile(r"^(\w+) (?:got|took|grabbed|picked up) the (\w+)(?: there)?\.$")
DROP = re.compile(r"^(\w+) (?:dropped|discarded|put down|left) the (\w+)(?: there)?\.$")
QA2 = re.compile(r"^Where is the (\w+)\? $")
QA3 = re.compile(r"^Where was the (\w+) before the (\w+)\? $")


def replay(facts: list[str], strict: bool = True):
    """Return (known location per object or None, known location history per object).

    Raises AssertionError on a sentence that does not parse or, when ``strict``, an impossible
    action (dropping something not held, taking something held by someone else, moving to where
    the actor already is).  ``strict=False`` replays a subset of facts (the supporting facts):
    a drop then just puts the object where the actor is.
    """
    where = {}  # actor -> location (once told)
    holder = {}  # object -> actor
    loose = {}  # object -> location of a put-down object, if known
    history = {}
    for f in facts:
        if m := MOVE.match(f):
            a, loc = m.groups()
            assert not strict or where.get(a) != loc, f"'{f}': already there"
            where[a] = loc
        elif m := GET.match(f):
            a, o = m.groups()
            assert o != "table", f"'{f}': the table cannot be taken"
            assert not strict or o not in holder, f"'{f}': {o} is held by {holder.get(o)}"
            holder[o] = a
            loose.pop(o, None)
        elif m := DROP.match(f):
            a, o = m.groups()
            assert not strict or holder.get(o) == a, f"'{f}': {a} does not hold the {o}"
            holder.pop(o, None)
            if a in where:
                loose[o] = where[a]
        else:
            raise AssertionError(f"unparsable fact: {f!r}")
        for o in set(holder) | set(loose) | set(history):
            loc = where.get(holder[o]) if o in holder else loose.get(o)
            if loc is not None and (not history.get(o) or history[o][-1] != loc):
                history.setdefault(o, []).append(loc)
    current = {o: (where.get(holder[o]) if o in holder else loose.get(o))
               for o in set(holder) | set(loose)}
    return current, history


def check_answer(facts: list[str], question: str, answer: str, strict: bool = True) -> None:
    current, history = replay(facts, strict)
    if m := QA2.match(question):
        o = m.group(1)
        assert current.get(o) == answer, (question, answer, current)
    elif m := QA3.match(question):
        o, before = m.groups()
        h = history.get(o, [])
        assert qa3_answers(h, before) == {answer}, (question, answer, h)
    else:
        raise AssertionError(f"unparsable question {question!r}")


def qa3_answers(history: list[str], before: str) -> set[str]:
    """Every place the object came from when it arrived at ``before`` (a known arrival needs a known
    previous place, so the first entry does not count).  A well-posed "Where was the O before the
    L?" has exactly one."""
    return {history[j - 1] for j in range(1, len(history)) if history[j] == before}
