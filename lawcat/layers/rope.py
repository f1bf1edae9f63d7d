"""Rotary position embedding on [B, T, H, D] tensors (the rotate-half form all supported families use).

Used by the teacher path, by the LoLCATs baseline (which keeps the teacher's RoPE on q and k) and by the
LAWCAT RoPE ablation (Table 5); off on the LAWCAT path by default (RoPE collapses beyond 3K). cos/sin always
come from the teacher's own rotary module at the tokens' absolute positions, so scaling variants (Llama 3's,
YaRN's attention factor) match the teacher by construction.
"""
from __future__ import annotations

import torch


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    R = cos.shape[-1]
    xf = x.float()
    if R == x.shape[-1]:
        return (xf * cos + _rotate_half(xf) * sin).to(x.dtype)
    # Partial rotary: the first R channels rotate, the rest pass through (transformers' layout for the
    # families that have it; the four lawcat supports rotate the whole head, so R == D for them).
    rot = xf[..., :R] * cos + _rotate_half(xf[..., :R]) * sin
    return torch.cat([rot, xf[..., R:]], dim=-1).to(x.dtype)


def apply_rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    """q [B,T,H,D], k [B,T,Hkv,D], cos/sin [B,T,R] (R <= D, the rotary module's output) -> rotated (q, k) in
    their own dtype. The arithmetic runs in fp32 (the teacher's runs in its dtype: equal in fp32, within one
    rounding in bf16)."""
    if cos.shape[-1] > q.shape[-1] or cos.shape[-1] % 2:
        raise ValueError(f"cos/sin of width {cos.shape[-1]} cannot rotate heads of {q.shape[-1]}")
    cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
    return _rotate(q, cos, sin), _rotate(k, cos, sin)
