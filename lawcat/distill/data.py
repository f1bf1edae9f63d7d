"""Training and validation batches for a recipe, generated offline and deterministically.

Task data comes from lawcat.data's generators with purpose="train" (training haystacks only: the evaluation
essays are refused there); text (data.task=text) from a packaged corpus or the user's local files and `datasets`
folders (lawcat.data.text: plain text, prompt/completion, chats in the teacher's chat template), packed into rows.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

from ..data import IGNORE_INDEX, BatchIterator, encode_all, load_texts, make_samples, pack_rows, pad_token_id
from .recipe import Recipe, RecipeError

# Samples are generated in fixed blocks, each from its own seed, so the data does not depend on how many
# worker processes made it; blocks run in parallel (tens of thousands of 1K-token samples take minutes alone).
BLOCK = 250

# Mixtures the paper trains on: S-NIAH-1/2/3 together, BABILong QA2 + QA3 together.
MIXES = {"niah-mix": ("niah1", "niah2", "niah3"), "babilong": ("babilong-qa2", "babilong-qa3")}
_VAL_SEED_OFFSET = 1_000_003  # validation samples come from a disjoint seed stream


def build_examples(recipe: Recipe, tokenizer, split: str):
    """The task examples of `split` (train / val): the recipe's task or mix, plus `data.extras` for training."""
    d = recipe.data
    train = split == "train"
    n = d.n_train if train else d.n_val
    seed = d.seed + (0 if train else _VAL_SEED_OFFSET)
    if n <= 0:
        return []
    if d.task == "text":
        # data.loss holds here too: prompt/completion lines and chats train on their completions / assistant turns
        encoded = encode_all(tokenizer, load_texts(d.source), loss=d.loss, add_eos=True)
        rows = pack_rows(encoded, d.seq_len, drop_last=False)
        if len(rows) < 2:
            raise RecipeError(f"data.source {d.source!r} gives {len(rows)} row(s) of {d.seq_len} tokens; "
                              "add text or lower data.seq_len")
        n_val = min(d.n_val, max(1, len(rows) // 10))
        return rows[n_val:][: d.n_train] if train else rows[:n_val]
    tasks = MIXES.get(d.task, (d.task,))
    parts = [(task, n // len(tasks) + (1 if i < n % len(tasks) else 0), d.length) for i, task in enumerate(tasks)]
    if train:  # extras get their own seed streams (index len(tasks) + j), so adding one changes no other sample
        parts += [(e["task"], int(e["n"]), int(e.get("length", d.length))) for e in d.extras]
    jobs = []
    for i, (task, share, length) in enumerate(parts):
        haystack = d.haystack if d.haystack and task not in ("passkey", "niah1") else None
        style = d.style if task in ("passkey", "niah1", "niah2", "niah3") else "standard"
        for b, start in enumerate(range(0, share, BLOCK)):
            jobs.append((task, min(BLOCK, share - start), seed + 7919 * i + 104729 * b, haystack, length, style,
                         d.key_digits))
    workers = min(len(jobs), max(1, (os.cpu_count() or 1) - 1), 16)
    if workers <= 1:
        blocks = [_block(tokenizer, d.loss, job) for job in jobs]
    else:
        with ProcessPoolExecutor(workers) as pool:
            blocks = list(pool.map(_block, [tokenizer] * len(jobs), [d.loss] * len(jobs), jobs))
    return [e for block in blocks for e in block]


def _block(tokenizer, loss, job):
    task, n, seed, haystack, length, style, key_digits = job
    kw = {"haystack": haystack} if haystack else {}
    if style != "standard":
        kw["style"] = style
        if task == "passkey":
            kw["key_digits"] = key_digits
    return encode_all(tokenizer, make_samples(task, tokenizer, length, n, seed, purpose="train", **kw), loss=loss)


GENERAL_TEXT = "books:train"


def stage1_examples(recipe: Recipe, tokenizer, train: list) -> list:
    """Stage 1's rows: the task examples with a `data.stage1_text` share replaced by general text rows.

    The count stays the same, so stage 1 sees the same number of tokens (stage 2's own share is
    `stage2_train_examples`)."""
    share = recipe.data.stage1_text
    if share <= 0:
        return train
    n_text = int(round(share * len(train)))
    rows = general_text_rows(tokenizer, n_text, recipe.data.length)
    return train[: len(train) - n_text] + rows  # the batches shuffle, so the order here does not matter


def general_text_rows(tokenizer, n_rows: int, seq_len: int) -> list:
    """`n_rows` rows of `seq_len` tokens of general text, packed document after document (cycled if short)."""
    if n_rows <= 0:
        return []
    docs = load_texts(GENERAL_TEXT)
    rows: list = []
    start = 0
    while len(rows) < n_rows:
        # Encode a slice of documents at a time: the whole corpus is millions of tokens, most rows need few.
        chunk = docs[start:start + 200] or docs[:200]
        start = start + 200 if start + 200 < len(docs) else 0
        rows += pack_rows(encode_all(tokenizer, chunk, loss="all", add_eos=True), seq_len, drop_last=True)
    return rows[:n_rows]


def stage2_examples(rows: list) -> list:
    """The rows stage 2 can learn from: those with a labelled token. Packed chats with long user turns can give
    rows without any assistant token, and a batch of only such rows would divide its loss by zero."""
    return [r for r in rows if any(label != IGNORE_INDEX for label in r.labels[1:])]


def stage2_train_examples(recipe: Recipe, tokenizer, train: list) -> list:
    """Stage 2's training rows: the task examples plus general text rows making up `data.stage2_text` of them.

    Added rather than swapped in, so the task is trained exactly as without them; the text rows carry a loss on
    every token, which is what keeps the student's next-token prediction near its teacher's."""
    rows = stage2_examples(train)
    share = recipe.data.stage2_text
    if share <= 0:
        return rows
    n_text = int(round(share / (1.0 - share) * len(rows)))
    return rows + general_text_rows(tokenizer, n_text, recipe.data.length)


def make_batches(examples, tokenizer, batch_size: int, seed: int, bucket: bool = True) -> BatchIterator:
    # drop_last: every global batch is full, so data-parallel ranks always get the same number of rows.
    # Right padding is a promise stage 1 relies on (lawcat.models.transfer.embed_for_transfer, right_padded=True).
    return BatchIterator(examples, batch_size, pad_token_id(tokenizer), seed=seed, shuffle=True, bucket=bucket,
                         epochs=None, drop_last=True, padding_side="right")
