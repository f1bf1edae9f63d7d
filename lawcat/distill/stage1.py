"""Stage 1, attention transfer: every LAWCAT layer learns to reproduce its teacher layer's softmax attention.

Per layer, the teacher's softmax output and the LAWCAT output are computed from the same layer input (and the
same q, k, v projections, computed once), and their MSE before o_proj is back-propagated at once; the
teacher's output then flows on to the next layer. Only one layer's graph is alive at a time, so memory is
that of a teacher forward plus one small layer, and the cost is about one teacher forward.
"""
from __future__ import annotations

import contextlib

import torch


def teacher_positions(mask: torch.Tensor) -> torch.Tensor:
    """RoPE positions that count real tokens only (right or left padding alike)."""
    return (mask.long().cumsum(1) - 1).clamp_min(0)


def attention_transfer_step(student, batch: dict, mse_weight: float, token_count: float,
                            autocast=contextlib.nullcontext, backward: bool = True) -> torch.Tensor:
    """Forward (and backward) one batch through all layers. Returns the summed per-layer weighted MSE,
    normalised by `token_count` (the global number of real tokens, for exact data parallelism)."""
    model = student.model
    ids, mask = batch["input_ids"], batch["attention_mask"]
    pad_mask = None if bool(mask.all()) else mask
    weight = mask.unsqueeze(-1).float()
    total = torch.zeros((), device=ids.device)
    with torch.no_grad(), autocast():
        h = model.embed_tokens(ids)
        rope = model.rotary_emb(h, teacher_positions(mask))
    for layer in model.layers:
        with torch.set_grad_enabled(backward), autocast():
            h, pred, target = layer(h, pad_mask, None, rope, transfer=True)
        loss = (pred.float() - target.float()).pow(2).mul(weight).sum() / (token_count * pred.shape[-1]) * mse_weight
        if backward:
            loss.backward()
        total = total + loss.detach()
        h = h.detach()
    return total


def per_layer_mse(student, batch: dict, autocast=contextlib.nullcontext) -> list[float]:
    """Unweighted MSE of every layer on one batch: the diagnostic for which layers lag behind."""
    model = student.model
    ids, mask = batch["input_ids"], batch["attention_mask"]
    pad_mask = None if bool(mask.all()) else mask
    weight = mask.unsqueeze(-1).float()
    out = []
    with torch.no_grad(), autocast():
        h = model.embed_tokens(ids)
        rope = model.rotary_emb(h, teacher_positions(mask))
        for layer in model.layers:
            h, pred, target = layer(h, pad_mask, None, rope, transfer=True)
            out.append(((pred.float() - target.float()).pow(2).mul(weight).sum()
                        / (weight.sum() * pred.shape[-1])).item())
    return out
