"""Low-rank, data-dependent forget gate of GLA: g_t = logsigmoid(W2 W1 x_t + b) / normalizer (log space, <= 0).

One value per head and key (feature) dimension, broadcast over the value dimension. The normalizer 16 keeps
the initial decay mild (exp(logsigmoid(0)/16) ~ 0.96 per token) so memory is long from the start.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class LowRankGate(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int, key_dim: int, rank: int, normalizer: float = 16.0):
        super().__init__()
        self.num_heads, self.key_dim, self.normalizer = num_heads, key_dim, normalizer
        self.down = nn.Linear(hidden_size, rank, bias=False)
        self.up = nn.Linear(rank, num_heads * key_dim, bias=True)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, hidden] -> the gate before its log-sigmoid, [B, T, H*K] in float32 (the fused decode kernel
        takes these and applies the rest itself)."""
        return self.up(self.down(x.to(self.down.weight.dtype))).float()  # fp32 gate under a bf16 teacher

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, hidden] -> g [B, T, H, K] in float32."""
        return (F.logsigmoid(self.logits(x)) / self.normalizer).view(*x.shape[:-1], self.num_heads, self.key_dim)


def stacked_gate(gates: list[LowRankGate], xs: torch.Tensor) -> torch.Tensor:
    """Several layers' gates at once: xs [B, T, G, hidden] (layer l's input at index l) -> [B, T, G*H, K].

    The same arithmetic as G calls of LowRankGate.forward, as two batched matrix products (stage 1 runs all
    layers as one wide layer; see lawcat.layers.attention.LayerWeights)."""
    first = gates[0]
    down = torch.stack([g.down.weight for g in gates])                   # [G, r, hidden]
    up = torch.stack([g.up.weight for g in gates])                       # [G, H*K, r]
    bias = torch.stack([g.up.bias for g in gates])                       # [G, H*K]
    low = torch.einsum("btgh,grh->btgr", xs.to(down.dtype), down)
    logits = (torch.einsum("btgr,gor->btgo", low, up) + bias.to(low.dtype)).float()
    B, T, G, _ = xs.shape
    return (F.logsigmoid(logits) / first.normalizer).reshape(B, T, G * first.num_heads, first.key_dim)
