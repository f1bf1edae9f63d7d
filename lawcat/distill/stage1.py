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


def _layer_pairs(student, batch: dict, autocast, grad: bool):
    """Yield (LAWCAT output, teacher output) before o_proj for each layer, the teacher's output flowing on.

    Each layer's graph is alive only until the next one starts, so a caller that back-propagates per yielded
    pair holds one layer's activations at a time."""
    model = student.model
    ids, mask = batch["input_ids"], batch["attention_mask"]
    pad_mask = None if bool(mask.all()) else mask
    with torch.no_grad(), autocast():
        h = model.embed_tokens(ids)
        rope = model.rotary_emb(h, teacher_positions(mask))
    for layer in model.layers:
        with torch.set_grad_enabled(grad), autocast():
            h, pred, target = layer(h, pad_mask, None, rope, transfer=True)
        yield pred, target
        h = h.detach()


def _squared_error(pred, target, mask) -> torch.Tensor:
    """Sum over real tokens of the squared error, averaged over the feature dimension."""
    return (pred.float() - target.float()).pow(2).mul(mask.unsqueeze(-1).float()).sum() / pred.shape[-1]


def attention_transfer_step(student, batch: dict, mse_weight: float, token_count: float,
                            autocast=contextlib.nullcontext, backward: bool = True) -> torch.Tensor:
    """Forward (and backward) one batch through all layers. Returns the summed per-layer weighted MSE,
    normalised by `token_count` (the global number of real tokens, for exact data parallelism)."""
    total = torch.zeros((), device=batch["input_ids"].device)
    for pred, target in _layer_pairs(student, batch, autocast, backward):
        loss = _squared_error(pred, target, batch["attention_mask"]) / token_count * mse_weight
        if backward:
            loss.backward()
        total = total + loss.detach()
    return total


@torch.no_grad()
def per_layer_mse(student, batch: dict, autocast=contextlib.nullcontext) -> list[float]:
    """Unweighted MSE of every layer on one batch: the diagnostic for which layers lag behind."""
    n = float(batch["attention_mask"].sum())
    return [(_squared_error(p, t, batch["attention_mask"]) / n).item()
            for p, t in _layer_pairs(student, batch, autocast, False)]
