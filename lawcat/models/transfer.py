"""Stage 1's view of a student: each LAWCAT layer's output beside its teacher layer's softmax output, from the same
layer input, with the teacher's output flowing on (so no layer ever sees a student's output).

Training (lawcat.distill.stage1) back-propagates through these pairs; diagnostics (lawcat.analysis.transfer_error)
only read them, so both take them from here and measure the same thing.
"""
from __future__ import annotations

import contextlib

import torch


def teacher_positions(mask: torch.Tensor) -> torch.Tensor:
    """RoPE positions that count real tokens only (right or left padding alike)."""
    return (mask.long().cumsum(1) - 1).clamp_min(0)


def embed_for_transfer(student, batch: dict, autocast=contextlib.nullcontext, right_padded: bool = False):
    """Embeddings, RoPE tables and the padding mask the layers need (None: attend causally, no mask).

    right_padded: the caller guarantees every row's padding comes after its tokens (the training batches). Then no
    real token can see a pad (attention and conv are causal), so the layers run unmasked, which is exact for every
    real token (the loss masks the pads) and spares a host sync (`mask.all()`) and SDPA's masked kernels."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    model = student.model
    with torch.no_grad(), autocast():
        h = model.embed_tokens(ids)
        rope = model.rotary_emb(h, teacher_positions(mask))
    return h, rope, None if right_padded or bool(mask.all()) else mask


def transfer_pairs(student, batch: dict, autocast=contextlib.nullcontext, grad: bool = False,
                   right_padded: bool = False):
    """Yield (LAWCAT output, teacher output) before o_proj for each layer, the teacher's output flowing on.

    Each layer's graph is alive only until the next one starts, so a caller that back-propagates per yielded
    pair holds one layer's activations at a time."""
    h, rope, pad_mask = embed_for_transfer(student, batch, autocast, right_padded)
    for layer in student.model.layers:
        with torch.set_grad_enabled(grad), autocast():
            h, pred, target = layer(h, pad_mask, None, rope, transfer=True)
        yield pred, target
        h = h.detach()
