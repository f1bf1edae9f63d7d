"""The prompts the views read, tokenized as the model reads them: a passkey prompt and its needle's tokens (the
needle-share and gate views), or any task's evaluation prompt (the transfer-error view)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data import make_samples


@dataclass
class NeedlePrompt:
    ids: torch.Tensor        # [1, T], special tokens included (as evaluation feeds the model)
    needle: range            # token positions of the needle sentence in ids
    depth: float
    seed: int


def needle_prompt(tokenizer, length: int, depth: float = 10.0, seed: int = 0) -> NeedlePrompt:
    """One passkey prompt of `length` tokens with its needle at `depth` percent (evaluation's format)."""
    sample = make_samples("passkey", tokenizer, length, 1, seed=seed, depth=depth)[0]
    ids = tokenizer(sample.prompt, return_tensors="pt")["input_ids"]
    return NeedlePrompt(ids, needle_token_span(tokenizer, sample.prompt, sample.meta["needle_char_span"]), depth,
                        seed)


def task_prompt_ids(tokenizer, task: str, length: int, seed: int = 0) -> torch.Tensor:
    """[1, T]: one evaluation prompt of `task` at `length` tokens, as evaluation feeds it to the model."""
    sample = make_samples(task, tokenizer, length, 1, seed=seed)[0]
    return tokenizer(sample.prompt, return_tensors="pt")["input_ids"]


def needle_token_span(tokenizer, prompt: str, char_span) -> range:
    """Positions in tokenizer(prompt)'s ids of the tokens that overlap the characters char_span = [start, end).

    Read from the offsets of the very encoding the model sees, so a BOS the tokenizer prepends shifts nothing.
    A tokenizer without offsets (a slow one) counts the tokens of the text before each end instead."""
    start, end = char_span
    try:
        offsets = tokenizer(prompt, return_offsets_mapping=True)["offset_mapping"]
    except (NotImplementedError, ValueError, KeyError, TypeError):
        lead = _leading_specials(tokenizer, prompt)
        return range(lead + needle_token_index(tokenizer, prompt, start),
                     lead + needle_token_index(tokenizer, prompt, end))
    # Special tokens have empty offsets (0, 0); every real token overlapping the span belongs to the needle.
    inside = [i for i, (a, b) in enumerate(offsets) if b > a and b > start and a < end]
    if not inside:
        raise ValueError(f"no token of the prompt covers characters {start}..{end}")
    return range(inside[0], inside[-1] + 1)


def needle_token_index(tokenizer, prompt: str, char_start: int) -> int:
    """Tokens of prompt[:char_start], without special tokens."""
    return len(tokenizer(prompt[:char_start], add_special_tokens=False)["input_ids"])


def _leading_specials(tokenizer, prompt: str) -> int:
    full = tokenizer(prompt)["input_ids"]
    plain = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return next((i for i in range(len(full) - len(plain) + 1) if full[i:i + len(plain)] == plain), 0)
