"""Training and validation batches for a recipe, generated offline and deterministically.

Task data comes from lawcat.data's generators with purpose="train" (training haystacks only: the evaluation
essays are refused there); plain text from a packaged corpus or the user's files, packed into rows.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

from ..data import BatchIterator, encode_all, load_texts, make_samples, pack_rows, pad_token_id
from .recipe import Recipe, RecipeError

# Samples are generated in fixed blocks, each from its own seed, so the data does not depend on how many
# worker processes made it; blocks run in parallel (tens of thousands of 1K-token samples take minutes alone).
BLOCK = 250

# Mixtures the paper trains on: S-NIAH-1/2/3 together, BABILong QA2 + QA3 together.
MIXES = {"niah-mix": ("niah1", "niah2", "niah3"), "babilong": ("babilong-qa2", "babilong-qa3")}
_VAL_SEED_OFFSET = 1_000_003  # validation samples come from a disjoint seed stream


def build_examples(recipe: Recipe, tokenizer, split: str):
    d = recipe.data
    train = split == "train"
    n = d.n_train if train else d.n_val
    seed = d.seed + (0 if train else _VAL_SEED_OFFSET)
    if n <= 0:
        return []
    if d.task == "text":
        encoded = encode_all(tokenizer, load_texts(d.source), loss="all", add_eos=True)
        rows = pack_rows(encoded, d.seq_len, drop_last=False)
        if len(rows) < 2:
            raise RecipeError(f"data.source {d.source!r} gives {len(rows)} row(s) of {d.seq_len} tokens; "
                              "add text or lower data.seq_len")
        n_val = min(d.n_val, max(1, len(rows) // 10))
        return rows[n_val:][: d.n_train] if train else rows[:n_val]
    tasks = MIXES.get(d.task, (d.task,))
    jobs = []
    for i, task in enumerate(tasks):
        share = n // len(tasks) + (1 if i < n % len(tasks) else 0)
        haystack = d.haystack if d.haystack and task not in ("passkey", "niah1") else None
        for b, start in enumerate(range(0, share, BLOCK)):
            jobs.append((task, min(BLOCK, share - start), seed + 7919 * i + 104729 * b, haystack))
    workers = min(len(jobs), max(1, (os.cpu_count() or 1) - 1), 16)
    if workers <= 1:
        blocks = [_block(tokenizer, d.length, d.loss, job) for job in jobs]
    else:
        with ProcessPoolExecutor(workers) as pool:
            blocks = list(pool.map(_block, [tokenizer] * len(jobs), [d.length] * len(jobs), [d.loss] * len(jobs),
                                   jobs))
    return [e for block in blocks for e in block]


def _block(tokenizer, length, loss, job):
    task, n, seed, haystack = job
    kw = {"haystack": haystack} if haystack else {}
    return encode_all(tokenizer, make_samples(task, tokenizer, length, n, seed, purpose="train", **kw), loss=loss)


def make_batches(examples, tokenizer, batch_size: int, seed: int, bucket: bool = True) -> BatchIterator:
    # drop_last: every global batch is full, so data-parallel ranks always get the same number of rows.
    # Right padding is a promise stage 1 relies on (lawcat.distill.stage1._embed, right_padded=True).
    return BatchIterator(examples, batch_size, pad_token_id(tokenizer), seed=seed, shuffle=True, bucket=bucket,
                         epochs=None, drop_last=True, padding_side="right")
