"""How much of each head's normalized readout comes from the needle, at the position that must name the passkey.

    lawcat viz needle-share runs/a runs/b --length 8k --out needle_share.png

LAWCAT's output at query t is sum_s w_s v_s / sum_s w_s with w_s = sum_d phi(q_t)_d phi(k_s)_d exp(G_t,d - G_s,d)
(Eq. 8; G the cumulative log gate). For the prompt's last token (its logits give the answer's first token) this
takes every layer's and head's weights w_s and reports the needle tokens' share of them: the quantity
lawcat.analysis.gate_memory can only bound from the gates (a needle kept by the gates is still diluted ~T-fold
unless the features single it out). CPU is fine (one forward per model).
"""
from __future__ import annotations

import torch

from ..layers import attention as attention_module
from .errors import AnalysisError


def needle_share(fq: torch.Tensor, fk: torch.Tensor, g: torch.Tensor, needle: range, query: int) -> torch.Tensor:
    """fq, fk [T, H, K] (feature-mapped), g [T, H, K] log gates; returns [H]: the needle rows' share of query's
    normalized linear-attention weights (Eq. 8's numerator weights, the denominator their sum)."""
    G = torch.cumsum(g[: query + 1].double(), dim=0)                           # [t, H, K]
    decay = (G[query][None] - G).exp()                                          # exp(G_query - G_s), s <= query
    w = torch.einsum("shk,shk,hk->sh", fk[: query + 1].double(), decay, fq[query].double())  # [s, H]
    return w[needle.start:needle.stop].sum(0) / w.sum(0).clamp_min(1e-300)


def capture_features(student, ids: torch.Tensor) -> list[tuple]:
    """Every layer's (fq, fk, g) [T, H, K] of one prompt, taken where the layer hands them to the GLA kernel."""
    captured = []
    original = attention_module.normalized_gla

    def recording(q, k, v, g, *args, **kwargs):
        captured.append((q[0].detach().float(), k[0].detach().float(), g[0].detach().float()))
        return original(q, k, v, g, *args, **kwargs)

    attention_module.normalized_gla = recording
    try:
        with torch.no_grad():
            student(input_ids=ids, use_cache=False, logits_to_keep=1)
    finally:
        attention_module.normalized_gla = original
    if len(captured) != len(student.model.layers):
        raise AnalysisError(f"captured {len(captured)} GLA calls for {len(student.model.layers)} layers: the needle "
                            "share reads the window-free LAWCAT path only (this student has a softmax window)")
    return captured


def share_by_layer(student, ids: torch.Tensor, needle: range) -> list[dict]:
    """Per layer: the best and mean head's needle share at the prompt's last token, and every head's."""
    query = ids.shape[1] - 1
    layers = []
    for fq, fk, g in capture_features(student, ids):
        share = needle_share(fq, fk, g, needle, query)
        layers.append({"best_head_share": share.max().item(), "mean_head_share": share.mean().item(),
                       "per_head": share.tolist()})
    return layers
