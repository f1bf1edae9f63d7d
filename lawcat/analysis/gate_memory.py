"""How long a student's gates remember: per (layer, head, key dim) half-lives on a real passkey prompt, and how
much of the needle's contribution to the state survives until the question.

    lawcat viz gate passkey-smollm2 --length 8k --out gate_memory.png

Issue 6 asks why a student misses its passkey targets. The state S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t keeps
the needle's term only as far as exp(sum of g after the needle) allows, per key dimension: a head can read the
needle at distance d only through dimensions whose summed decay over d tokens is not far below zero.
`lawcat viz gate` draws the summaries (lawcat.analysis.plots.plot_gate_memory) and writes them beside the PNG as
JSON (no per-sample text). CPU is fine (one prefill).
"""
from __future__ import annotations

import math

import torch

from .errors import AnalysisError

HALF_LIFE_MARKS = (64, 1024, 8192, 16384, 32768)


def capture_gates(student, ids: torch.Tensor, chunk: int) -> list[torch.Tensor]:
    """Every layer's log-space gate g [T, H, K] (float32) over a chunked prefill of ids [1, T]."""
    if not student.config.use_gate:
        raise AnalysisError("this student has no gate (use_gate is off): nothing decays, every half-life is infinite")
    per_layer = [[] for _ in student.model.layers]
    hooks = [layer.self_attn.gate.register_forward_hook(
        lambda _m, _i, out, i=i: per_layer[i].append(out[0].detach().float()))
        for i, layer in enumerate(student.model.layers)]
    try:
        with torch.no_grad():
            student.prefill(ids, chunk_size=chunk)
    finally:
        for h in hooks:
            h.remove()
    return [torch.cat(chunks, dim=0) for chunks in per_layer]


def summarize(gates: list[torch.Tensor], needle: int) -> dict:
    """Per layer (and per head where it says so) half-lives, the needle's retention and crowding; gates[l] is layer
    l's g [T, H, K], needle the needle's first token. A half-life is log 2 over the dimension's mean decay."""
    layers = []
    all_half_lives = []
    for g in gates:                                    # [T, H, K]
        mean_g = g.mean(dim=0).clamp(max=-1e-12)       # per (head, dim)
        half_life = math.log(2) / (-mean_g)            # tokens until a stored key's weight halves
        after = g[needle + 1:].sum(dim=0)              # log-retention of the needle's term at the last token
        best_per_head = after.max(dim=-1).values       # the head's best-remembering dimension
        # Crowding: every earlier token's term survives as exp(sum of g after it); relative to the needle's, their
        # total says how many needle-sized terms share a dimension (gates only; the keys' feature values weight it
        # further). A dimension that keeps the needle but also ~T other tokens dilutes it ~T-fold.
        suffix = torch.flip(torch.cumsum(torch.flip(g, [0]), 0), [0]) - g  # sum of g after each token
        crowd = torch.logsumexp(suffix.double(), dim=0) - after.double()    # log of (total retained / needle's)
        crowd_best = crowd.min().exp().item()
        layers.append({"half_life_median": half_life.median().item(), "half_life_max": half_life.max().item(),
                       "half_life_median_per_head": half_life.median(dim=-1).values.tolist(),
                       "needle_log_retention_best": after.max().item(),
                       "needle_log_retention_best_per_head": best_per_head.tolist(),
                       "heads_retaining_1pct": int((best_per_head > math.log(0.01)).sum()),
                       "needle_crowding_best_dim": crowd_best,
                       "needle_crowding_in_best_retaining_dim": crowd.flatten()[after.flatten().argmax()].exp().item(),
                       "share_of_dims_with_half_life_over_needle_distance":
                           (half_life > g.shape[0] - 1 - needle).float().mean().item()})
        all_half_lives.append(half_life.flatten())
    hl = torch.cat(all_half_lives)
    return {"layers": layers, "dims": int(hl.numel()),
            "share_of_dims_with_half_life_at_least": {str(m): (hl >= m).float().mean().item() for m in HALF_LIFE_MARKS},
            "half_life_quantiles": {str(q): hl.quantile(q).item() for q in (0.5, 0.9, 0.99, 1.0)},
            "half_lives": hl.tolist()}
