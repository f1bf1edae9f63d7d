"""Rotary position embedding on [B, T, H, D] tensors (the rotate-half form all supported families use).

Off on the LAWCAT path by default (Table 5: RoPE collapses beyond 3K); used by the teacher path and the
RoPE ablation. cos/sin come from the teacher's own rotary module, so scaling variants (Llama 3) match.
"""
from __future__ import annotations

import torch


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


def apply_rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    """q [B,T,H,D], k [B,T,Hkv,D], cos/sin [B,T,D] -> rotated (q, k) in their own dtype."""
    cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
    rq = q.float() * cos + _rotate_half(q.float()) * sin
    rk = k.float() * cos + _rotate_half(k.float()) * sin
    return rq.to(q.dtype), rk.to(k.dtype)
