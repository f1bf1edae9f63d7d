"""Task data for LAWCAT: passkey, S-NIAH-1/2/3, BABILong QA2/QA3, plain text, and packing.

Everything is generated offline and deterministically from a seed; lengths are counted in the
caller's tokenizer.  One entry point covers all tasks::

    from lawcat.data import make_samples
    samples = make_samples("niah2", tokenizer, 4096, n=25, seed=0)                   # evaluation
    train = make_samples("niah2", tokenizer, 1024, n=8000, seed=1, purpose="train")  # training

``purpose="train"`` switches the defaults to training text (``books:train``, random haystack
offsets), refuses the evaluation-only essays, and draws from a separate random stream, so a
training sample never equals an evaluation sample even with the same seed; ``purpose="eval"``
(default) uses the benchmark settings (Paul Graham essays for S-NIAH-2/3, ``books:test``
background for BABILong).
"""

from __future__ import annotations

from .. import units
from .babi import Story, simulate_story
from .babilong import babilong_prompt, make_babilong_samples
from .babilong_styles import BABILONG_VARIANTS
from .errors import DataError
from .haystack import Corpus, as_corpus, check_training_corpus, load_corpus, split_sentences
from .niah import make_niah_samples, niah_prompt
from .niah_styles import NIAH_STYLES, NIAH_VARIANTS
from .packing import (
    IGNORE_INDEX,
    BatchIterator,
    Encoded,
    ResumableSampler,
    collate,
    encode,
    encode_all,
    pack_rows,
    pad_token_id,
)
from .passkey import make_passkey_samples, passkey_prompt
from .passkey_styles import PASSKEY_STYLES, PASSKEY_VARIANTS
from .sample import TASKS, TaskSample
from .text import TextExample, load_texts

PURPOSES = ("eval", "train")

# Keywords only some generators read, with the values that mean "as published".
_PASSKEY_ONLY = {"key_range": None, "key_digits": 6}
_STYLE_TASKS = ("passkey", "niah1", "niah2", "niah3")  # tasks with diverse training styles
_VARIANT_TASKS = _STYLE_TASKS + ("babilong-qa2", "babilong-qa3")  # tasks with held-out evaluation variants


def make_samples(task: str, tokenizer, length: int, n: int, seed: int = 0, depth=None,
                 haystack=None, *, purpose: str = "eval", **kw) -> list[TaskSample]:
    """Generate ``n`` samples of ``task`` (one of :data:`TASKS`) at ``length`` tokens.

    ``depth``: None (the task's own random placement), a percentage, or a list cycled per sample
    (not for BABILong).  ``haystack``: for niah2/niah3 the haystack, for BABILong the background
    (a corpus name, :class:`Corpus` or list of texts); passkey and niah1 have fixed filler text and
    ignore it, so one setting can serve a mix of tasks.  Extra keywords go to the generator
    (``start=`` and ``tokens_to_generate=`` for S-NIAH, ``prompt="full"|"bare"`` for BABILong,
    ``key_range=`` for passkey).

    Passkey, S-NIAH and BABILong also take ``variant=`` (evaluation with held-out prompt parts, one of
    :data:`PASSKEY_VARIANTS` / :data:`NIAH_VARIANTS` / :data:`BABILONG_VARIANTS`; refused for
    ``purpose="train"``), passkey and S-NIAH ``style=``
    (``"standard"`` or ``"diverse"`` training prompts, see :mod:`lawcat.data.passkey_styles` and
    :mod:`lawcat.data.niah_styles`).  Other tasks accept these keywords only at their default
    (``"standard"``), so one call can serve a mix of tasks; any other value is a :class:`DataError`.
    """
    if purpose not in PURPOSES:
        raise DataError(f"purpose must be 'eval' or 'train', got {purpose!r}")
    train = purpose == "train"
    if train and kw.get("variant", "standard") != "standard":
        raise DataError(f"variant {kw['variant']!r} holds evaluation-only prompt parts and cannot be used "
                        f"for training" + ("; use style='diverse' or 'standard'" if task == "passkey" else ""))
    for name, tasks in (("variant", _VARIANT_TASKS), ("style", _STYLE_TASKS)):
        if task not in tasks and kw.pop(name, "standard") != "standard":
            raise DataError(f"{name}= applies only to {', '.join(tasks)}, not '{task}'")
    if task != "passkey":
        for name, default in _PASSKEY_ONLY.items():
            if name in kw:
                value = kw.pop(name)
                if value != default:
                    raise DataError(f"{name}={value!r} applies only to the passkey task, not '{task}'")
    kw.setdefault("stream", "train:" if train else "")
    if haystack is not None and train:
        check_training_corpus(as_corpus(haystack))
    if task == "passkey":
        return make_passkey_samples(tokenizer, length, n, seed, depth, **kw)
    if task in ("niah1", "niah2", "niah3"):
        if task == "niah1":
            haystack = None  # RULER's fixed noise lines
        elif haystack is None:
            haystack = "books:train" if train else "essays"
        kw.setdefault("start", "random" if train else "prefix")
        return make_niah_samples(tokenizer, length, n, seed, depth, task=task, haystack=haystack, **kw)
    if task in ("babilong-qa2", "babilong-qa3"):
        if haystack is None:
            haystack = "books:train" if train else "books:test"
        return make_babilong_samples(tokenizer, length, n, seed, depth, task=task.split("-")[1],
                                     background=haystack, **kw)
    raise DataError(f"unknown task '{task}'; use one of {', '.join(TASKS)}")


def task_kilo(task: str) -> int:
    """Tokens in a "k" of the task's lengths: BABILong names its buckets in thousands ("1k" = 1,000 tokens)."""
    return 1000 if task.startswith("babilong") else 1024


def parse_lengths(text: str, task: str = "passkey") -> list[int]:
    """'1k,4k' or '1k..32k' in the task's tokens, ascending: 4k -> 4096 for passkey/S-NIAH, 4000 for BABILong
    (whose 0k bucket is a length too)."""
    return units.parse_lengths(text, kilo=task_kilo(task), minimum=0 if task.startswith("babilong") else 1)


__all__ = [
    "TASKS",
    "TaskSample",
    "DataError",
    "make_samples",
    "parse_lengths",
    "task_kilo",
    "make_passkey_samples",
    "PASSKEY_VARIANTS",
    "PASSKEY_STYLES",
    "make_niah_samples",
    "NIAH_VARIANTS",
    "NIAH_STYLES",
    "BABILONG_VARIANTS",
    "make_babilong_samples",
    "passkey_prompt",
    "niah_prompt",
    "babilong_prompt",
    "simulate_story",
    "Story",
    "Corpus",
    "load_corpus",
    "as_corpus",
    "check_training_corpus",
    "split_sentences",
    "TextExample",
    "load_texts",
    "IGNORE_INDEX",
    "Encoded",
    "encode",
    "encode_all",
    "pack_rows",
    "collate",
    "pad_token_id",
    "ResumableSampler",
    "BatchIterator",
]
