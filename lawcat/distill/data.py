"""Training and validation batches for a recipe, generated offline and deterministically.

Task data comes from lawcat.data's generators with purpose="train" (training haystacks only: the evaluation
essays are refused there); plain text from a packaged corpus or the user's files, packed into rows.
"""
from __future__ import annotations

from ..data import BatchIterator, encode_all, load_texts, make_samples, pack_rows, pad_token_id
from .recipe import Recipe, RecipeError

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
    samples = []
    for i, task in enumerate(tasks):
        share = n // len(tasks) + (1 if i < n % len(tasks) else 0)
        kw = {"haystack": d.haystack} if d.haystack and task != "passkey" else {}
        samples += make_samples(task, tokenizer, d.length, share, seed + 7919 * i, purpose="train", **kw)
    return encode_all(tokenizer, samples, loss=d.loss)


def make_batches(examples, tokenizer, batch_size: int, seed: int, bucket: bool = True) -> BatchIterator:
    # drop_last: every global batch is full, so data-parallel ranks always get the same number of rows.
    return BatchIterator(examples, batch_size, pad_token_id(tokenizer), seed=seed, shuffle=True, bucket=bucket,
                         epochs=None, drop_last=True)
