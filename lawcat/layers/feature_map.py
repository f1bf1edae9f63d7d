"""Hedgehog feature map (LoLCATs), per head: phi(x) = [softmax(x W_h), softmax(-x W_h)] over features.

W_h is head_dim x head_dim/2, so the feature dimension equals head_dim (docs/method.md, the feature map). LAWCAT
shares one map between q and k (same parameters for both); LoLCATs and the Table 4 ablation use two.
"""
from __future__ import annotations

import torch
from torch import nn


class HedgehogFeatureMap(nn.Module):
    def __init__(self, num_heads: int, head_dim: int):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"the Hedgehog map needs an even head_dim, got {head_dim}")
        self.num_heads, self.head_dim = num_heads, head_dim
        self.weight = nn.Parameter(torch.empty(num_heads, head_dim, head_dim // 2))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Identity on the first head_dim/2 coordinates: the map starts as a softmax over the raw query/key
        # coordinates (and their negation), a reasonable positive kernel before any training.
        with torch.no_grad():
            self.weight.zero_()
            idx = torch.arange(self.head_dim // 2)
            self.weight[:, idx, idx] = 1.0

    @property
    def feature_dim(self) -> int:
        return self.head_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return hedgehog(x, self.weight)


def hedgehog(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x [B, T, H, D], weight [H, D, D/2] -> [B, T, H, D] (non-negative, each half sums to one)."""
    if x.shape[1] == 1:  # a decode step: one small product per head; einsum's parsing would cost more than it
        proj = (x.float().unsqueeze(-2) @ weight.float()).squeeze(-2)
    else:
        proj = torch.einsum("bthd,hdf->bthf", x.float(), weight.float())
    return torch.cat([proj.softmax(-1), (-proj).softmax(-1)], dim=-1).to(x.dtype)
