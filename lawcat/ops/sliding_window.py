"""The softmax half of the LoLCATs-style hybrid: exact softmax scores over the last `window` tokens.

Each query t sees the `window` most recent positions up to and including itself. Scores are exponentiated
after subtracting the row maximum (as LoLCATs does), so the softmax term is bounded and mixes with the linear
term through the learned per-head factor. Queries are processed in blocks so memory stays linear in T.
"""
from __future__ import annotations

import torch


def window_softmax_terms(q, k_ext, v_ext, valid_ext, window: int, scale: float, block: int = 256):
    """q [B,T,H,D]; k_ext, v_ext [B, window+T, H, *] = the `window` cached positions then the T new ones;
    valid_ext [B, window+T] bool (False for padding or an empty cache slot).

    Returns (num [B,T,H,V], den [B,T,H,1]) = (sum_s a_ts v_s, sum_s a_ts) with a_ts = exp(score - row max).
    """
    B, T, H, _ = q.shape
    nums, dens = [], []
    for a in range(0, T, block):
        b = min(T, a + block)
        # Query t (ext index window + t) sees ext indices t+1 .. window+t.
        ks, vs, ms = k_ext[:, a + 1:b + window], v_ext[:, a + 1:b + window], valid_ext[:, a + 1:b + window]
        scores = torch.einsum("bthd,bshd->bhts", q[:, a:b].float(), ks.float()) * scale
        t_idx = torch.arange(a, b, device=q.device)[:, None]
        s_idx = torch.arange(a + 1, b + window, device=q.device)[None, :]
        rel = s_idx - t_idx                                               # in 1..window when visible
        visible = (rel >= 1) & (rel <= window)
        visible = visible[None, None] & ms[:, None, None, :]
        scores = scores.masked_fill(~visible, float("-inf"))
        row_max = scores.amax(dim=-1, keepdim=True)
        row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
        w = (scores - row_max).exp()                                      # exp(-inf) = 0 where not visible
        nums.append(torch.einsum("bhts,bshv->bthv", w, vs.float()))
        dens.append(w.sum(-1).transpose(1, 2).unsqueeze(-1))
    return torch.cat(nums, dim=1), torch.cat(dens, dim=1)
