"""decode_step: one token through a LAWCAT layer's attention in one kernel, its states updated in place.

The PyTorch step (lawcat.layers.attention.lawcat_attention with T = 1) is about twenty kernels per layer: the
gate's log-sigmoid and scale, the conv on q and on k with their state tails, the GQA repeat, two feature maps,
the ones column, the recurrent GLA step and the division. At batch 1 each moves a few KB, so a decode step is
their launch and latency, not arithmetic (a CUDA graph removes the launches, not the gaps between kernels). Here
the layer is one program per (row, query head), all at once, each issuing its loads up front (a first version
with one program per key/value head, serving its query heads in turn, was 0.84x the unfused step on an H100 at
the 1B shape: 8 programs in a chain of dependent loads). A key's carried rows are read by every query head of
its group, so under GQA a second, tiny kernel shifts them after the first has run.
"""
from __future__ import annotations

import torch

from ..triton_launch import next_pow2, usable  # usable: re-exported, the layer asks it before choosing the kernel


def decode_step(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, gate_logits: torch.Tensor | None,
                conv_q_state: torch.Tensor, conv_k_state: torch.Tensor, conv_q: torch.Tensor, conv_k: torch.Tensor,
                map_q: torch.Tensor, map_k: torch.Tensor, state: torch.Tensor, gate_normalizer: float = 16.0,
                eps: float = 1e-6, normalize: bool = True, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The attention output of one token, [B, H, V] in v's dtype; conv_q_state, conv_k_state and state advance.

    q [B, H, D]; k [B, Hkv, D]; v [B, Hkv, V] (the teacher's projections of the token, RoPE already applied if
    the preset has it); gate_logits [B, H, D]: the low-rank gate before its log-sigmoid (None: no gate, no decay);
    conv_q_state [B, W-1, H*D] and conv_k_state [B, W-1, Hkv*D]: the W-1 rows before the token, oldest first;
    conv_q [H*D, W], conv_k [Hkv*D, W] (tap W-1 multiplies the token); map_q, map_k [H, D, D/2] (Hedgehog);
    state [B, H, D, V+1] float32 (the last column is the normalizer); mask [B] (1 = token, 0 = padding) or None.
    Equals lawcat_attention on one token with the same states (the new states written into the given tensors)."""
    B, H, D = q.shape
    HKV, V = k.shape[1], v.shape[-1]
    W = conv_q.shape[-1]
    if k.shape != (B, HKV, D) or v.shape[:2] != (B, HKV) or H % HKV:
        raise ValueError(f"q {tuple(q.shape)}, k {tuple(k.shape)} and v {tuple(v.shape)} do not fit one GQA layer")
    if conv_q.shape != (H * D, W) or conv_k.shape != (HKV * D, W):
        raise ValueError(f"conv weights {tuple(conv_q.shape)} / {tuple(conv_k.shape)}, expected "
                         f"({H * D}, W) / ({HKV * D}, W)")
    if conv_q_state.shape != (B, W - 1, H * D) or conv_k_state.shape != (B, W - 1, HKV * D):
        raise ValueError(f"conv states {tuple(conv_q_state.shape)} / {tuple(conv_k_state.shape)}, expected "
                         f"({B}, {W - 1}, {H * D}) / ({B}, {W - 1}, {HKV * D})")
    if map_q.shape != (H, D, D // 2) or map_k.shape != (H, D, D // 2) or D % 2:
        raise ValueError(f"feature maps {tuple(map_q.shape)} / {tuple(map_k.shape)}, expected ({H}, {D}, {D // 2})")
    if state.shape != (B, H, D, V + 1) or state.dtype != torch.float32:
        raise ValueError(f"state must be float32 ({B}, {H}, {D}, {V + 1}), got {state.dtype} {tuple(state.shape)}")
    if mask is not None and mask.shape != (B,):
        raise ValueError(f"mask must be ({B},), got {tuple(mask.shape)}")
    if gate_logits is not None and gate_logits.shape != (B, H, D):
        raise ValueError(f"gate_logits must be ({B}, {H}, {D}), got {tuple(gate_logits.shape)}")
    for name, t in (("state", state), ("conv_q_state", conv_q_state), ("conv_k_state", conv_k_state)):
        if not t.is_contiguous():
            raise ValueError(f"{name} is updated in place and must be contiguous")
    if not usable(q):
        raise RuntimeError("decode_step needs CUDA tensors (or TRITON_INTERPRET=1) and triton")
    if W < 2:
        raise ValueError("decode_step needs a conv of at least two taps (a one-tap conv carries no rows)")
    return _decode_op(q, k, v, gate_logits, mask, conv_q_state, conv_k_state, conv_q, conv_k, map_q, map_k, state,
                      float(gate_normalizer), float(eps), bool(normalize))


# A custom op, so torch.compile keeps the kernel inside its graph (a call it cannot trace would break the graph, and
# with it mode="reduce-overhead"'s one CUDA graph per step) and fuses the rest of the layer around it; the three
# states are declared mutated, which is how it knows they advance in place.
@torch.library.custom_op("lawcat::decode_step", mutates_args=("conv_q_state", "conv_k_state", "state"))
def _decode_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, gate_logits: torch.Tensor | None,
               mask: torch.Tensor | None, conv_q_state: torch.Tensor, conv_k_state: torch.Tensor,
               conv_q: torch.Tensor, conv_k: torch.Tensor, map_q: torch.Tensor, map_k: torch.Tensor,
               state: torch.Tensor, gate_normalizer: float, eps: float, normalize: bool) -> torch.Tensor:
    from . import _kernels as kern  # imports triton: on first use only

    B, H, D = q.shape
    HKV, V, W = k.shape[1], v.shape[-1], conv_q.shape[-1]
    out = torch.empty(B, H, V, device=q.device, dtype=v.dtype)
    k = k.contiguous()
    gate = gate_logits.contiguous() if gate_logits is not None else q  # never read without HAS_GATE
    tok_mask = mask.to(torch.float32).contiguous() if mask is not None else q  # never read without HAS_MASK
    groups, BD = H // HKV, next_pow2(D)
    kern._decode_kernel[(B, H)](
        q.contiguous(), k, v.contiguous(), gate, tok_mask, conv_q_state, conv_k_state, conv_q.contiguous(),
        conv_k.contiguous(), map_q.contiguous(), map_k.contiguous(), state, out, 1.0 / gate_normalizer, eps,
        H=H, HKV=HKV, GROUPS=groups, D=D, HALF=D // 2, V=V, W=W, BD=BD, BH=next_pow2(D // 2),
        BV=next_pow2(V), HAS_GATE=gate_logits is not None, HAS_MASK=mask is not None, NORMALIZE=normalize,
        SHIFT_K=groups == 1, num_warps=4,
    )
    if groups > 1:  # the key's rows are read by every query head of its group: shifted once all have run
        kern._shift_kernel[(B, HKV)](k, tok_mask, conv_k_state, HKV=HKV, D=D, W=W, BD=BD, HAS_MASK=mask is not None,
                                     num_warps=1)
    return out


@_decode_op.register_fake
def _decode_op_fake(q, k, v, gate_logits, mask, conv_q_state, conv_k_state, conv_q, conv_k, map_q, map_k, state,
                    gate_normalizer, eps, normalize):
    return q.new_empty(q.shape[0], q.shape[1], v.shape[-1], dtype=v.dtype)
