"""How closely each LAWCAT layer reproduces softmax attention along a long prompt: stage 1's error, per layer and
by token position.

    lawcat viz transfer-error niah-smollm2 --task niah2 --length 4k --bin 512 --out error.png

Stage 1 trains every layer to match its teacher layer's softmax output on ~1K-token samples. A student that reads
every needle written in its first 2K tokens and few written later (results/README.md, S-NIAH) may be
one whose attention drifts from the softmax's as the prompt goes on. This measures that: the prompt runs through
the layers the way stage 1 does (lawcat.models.transfer: each layer's input from the softmax path, so no layer's
error feeds the next), and each token's squared error between the LAWCAT output and the softmax output (before
o_proj, averaged over its features, as stage 1's loss) is averaged per bin of token positions.

The softmax side uses the student's own q, k and v projections: for a student after stage 2, whose LoRA adapts
them, it is softmax attention over the adapted projections, so the error is LAWCAT's against softmax on the same
inputs, not against the original teacher.
"""
from __future__ import annotations

import torch

from ..models.transfer import transfer_pairs
from .errors import AnalysisError


@torch.no_grad()
def error_by_position(student, ids: torch.Tensor, bin_tokens: int) -> dict:
    """Per layer, the mean per-token transfer error in consecutive bins of `bin_tokens` positions of ids [1, T].

    Returns {"bin_tokens", "tokens", "bins": [start of each bin], "layers": [[error per bin] per layer]}; the last
    bin may be shorter."""
    if ids.dim() != 2 or ids.shape[0] != 1:
        raise AnalysisError(f"one prompt at a time: ids must be [1, T], got {list(ids.shape)}")
    if bin_tokens < 1:
        raise AnalysisError(f"the bin must be at least one token, got {bin_tokens}")
    T = ids.shape[1]
    starts = list(range(0, T, bin_tokens))
    layers = []
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    for pred, target in transfer_pairs(student, batch):
        per_token = (pred.float() - target.float()).pow(2).reshape(T, -1).sum(-1) / pred.shape[-1]
        layers.append([per_token[s:s + bin_tokens].mean().item() for s in starts])
    return {"bin_tokens": bin_tokens, "tokens": T, "bins": starts, "layers": layers}


def growth(summary: dict, trained_tokens: int) -> list[float]:
    """Per layer, the mean error of the bins that start at or after `trained_tokens` over the mean of those that
    end by it: how many times worse a layer does beyond the length it was trained on (nan where either side is
    empty)."""
    out = []
    for errors in summary["layers"]:
        inside = [e for s, e in zip(summary["bins"], errors) if s + summary["bin_tokens"] <= trained_tokens]
        beyond = [e for s, e in zip(summary["bins"], errors) if s >= trained_tokens]
        if not inside or not beyond:
            out.append(float("nan"))
        else:
            out.append((sum(beyond) / len(beyond)) / max(sum(inside) / len(inside), 1e-30))
    return out
