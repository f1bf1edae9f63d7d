"""conv_feature_map: LAWCAT's causal conv and Hedgehog map on q or k in one Triton pass (inference only).

The PyTorch path (lawcat.layers.attention.lawcat_attention) masks, concatenates the conv state, convolves through
transposed layouts, repeats the key heads for GQA, upcasts to fp32, projects, takes two softmaxes, negates,
concatenates and casts back: about fifteen passes over a [B, T, H, D] tensor per input, each a kernel launch. Here
each output element is written once, from one read of the input rows it needs.
"""
from __future__ import annotations

import torch

# the Triton helpers lawcat's other kernel package already has (neither imports triton at import time)
from ..triton_launch import cdiv, next_pow2, usable  # usable: re-exported, the layer asks it before choosing the kernel


@torch.compiler.disable
def conv_feature_map(x: torch.Tensor, conv_weight: torch.Tensor, map_weight: torch.Tensor,
                     state: torch.Tensor | None = None, mask: torch.Tensor | None = None, groups: int = 1,
                     mask_output: bool = False, block_t: int = 32) -> torch.Tensor:
    """hedgehog(repeat_kv(causal_conv1d(x * mask, conv_weight, state), groups), map_weight) [* mask], fused.

    x [B, T, Hx, D]; conv_weight [Hx*D, W] (tap W-1 is the current token); map_weight [Hx*groups, D, D/2];
    state [B, W-1, Hx*D] (the W-1 input rows before x, already masked) or None (zeros); mask [B, T] (1 = token) or
    None; groups: output heads per input head (GQA keys); mask_output: multiply the map by the mask (keys: the map
    of a zero key is not zero). Returns [B, T, Hx*groups, D] in x's dtype. No autograd."""
    if x.dim() != 4:
        raise ValueError(f"x must be [B, T, H, D], got {tuple(x.shape)}")
    B, T, HX, D = x.shape
    HO = HX * groups
    W = conv_weight.shape[-1]
    if conv_weight.shape != (HX * D, W):
        raise ValueError(f"conv_weight must be [{HX * D}, W], got {tuple(conv_weight.shape)}")
    if map_weight.shape != (HO, D, D // 2) or D % 2:
        raise ValueError(f"map_weight must be [{HO}, {D}, {D // 2}], got {tuple(map_weight.shape)}")
    if state is not None and state.shape != (B, W - 1, HX * D):
        raise ValueError(f"conv state must be [{B}, {W - 1}, {HX * D}], got {tuple(state.shape)}")
    if mask is not None and mask.shape != (B, T):
        raise ValueError(f"mask must be [{B}, {T}], got {tuple(mask.shape)}")
    if not usable(x):
        raise RuntimeError("conv_feature_map needs CUDA tensors (or TRITON_INTERPRET=1) and triton")
    x = x.contiguous()
    out = torch.empty(B, T, HO, D, device=x.device, dtype=x.dtype)
    if T == 0:
        return out
    from . import _kernels as kern  # imports triton: on first use only

    dummy = x  # pointer for absent optional inputs (never read: the flags are off)
    kern._conv_map_kernel[(cdiv(T, block_t), B * HO)](
        x, state.contiguous() if state is not None else dummy,
        mask.contiguous() if mask is not None else dummy,
        conv_weight.contiguous(), map_weight.contiguous(), out, T,
        HX=HX, HO=HO, GROUPS=groups, D=D, HALF=D // 2, W=W, BT=block_t, BD=next_pow2(D), BH=next_pow2(D // 2),
        HAS_STATE=state is not None and W > 1, HAS_MASK=mask is not None, MASK_OUT=mask_output and mask is not None,
        PREC="tf32x3", num_warps=4,
    )
    return out

