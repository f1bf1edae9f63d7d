"""Causal depthwise convolution across tokens with a carried state (the last kernel-1 input rows).

Prefill returns the tail of its input so that a following call (a later prefill chunk or a decoding step)
continues exactly where it stopped: conv(x[:, :a]) then conv(x[:, a:], state) == conv(x).
Plain PyTorch: the conv is a handful of multiply-adds per element, cheap next to the projections. Two
formulations of the same sum: cuDNN's grouped conv1d, and `shift` (W shifted multiply-adds), which torch.compile
fuses with the ops around it (a conv call is opaque to it).
"""
from __future__ import annotations

import torch


def causal_conv1d(x: torch.Tensor, weight: torch.Tensor, state: torch.Tensor | None = None, impl: str = "conv"):
    """x [B, T, D], weight [D, W] (tap W-1 multiplies the current token), state [B, W-1, D] or None (zeros).
    impl: "conv" (cuDNN grouped conv1d) or "shift" (W multiply-adds over shifted views; same result).

    Returns (y [B, T, D], new_state [B, W-1, D]).
    """
    B, T, D = x.shape
    W = weight.shape[-1]
    if W == 1:
        return x * weight[:, 0], x.new_zeros(B, 0, D)
    if state is None:
        state = x.new_zeros(B, W - 1, D)
    elif state.shape != (B, W - 1, D):
        raise ValueError(f"conv state has shape {tuple(state.shape)}, expected {(B, W - 1, D)}")
    xp = torch.cat([state.to(x.dtype), x], dim=1)                    # [B, T + W - 1, D]
    if T == 1:
        y = (xp * weight.t().unsqueeze(0)).sum(dim=1, keepdim=True)  # decode: no conv launch needed
    elif impl == "shift":
        w = weight.to(x.dtype)
        y = xp[:, :T] * w[:, 0]
        for j in range(1, W):
            y = y + xp[:, j:j + T] * w[:, j]
    elif impl != "conv":
        raise ValueError(f"unknown conv impl {impl!r}; choose conv or shift")
    else:
        y = torch.nn.functional.conv1d(xp.transpose(1, 2), weight.unsqueeze(1).to(x.dtype), groups=D)
        y = y.transpose(1, 2)
    return y, xp[:, -(W - 1):]
