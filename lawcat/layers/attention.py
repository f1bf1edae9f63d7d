"""LawcatAttention: the teacher's projections feeding conv -> shared feature map -> gated, normalized linear attention.

Data flow for one layer (docs/method.md, "One layer at a glance"):
    x -> q_proj, k_proj, v_proj (teacher; Qwen2 bias and Qwen3 q/k RMSNorm kept)
      -> the teacher's RoPE on q and k, at absolute positions                     [use_rope, off by default]
      -> padding zeroed (pads must neither feed nor decay the state)
      -> causal depthwise conv on q and on k (kernel 4, identity-like init)       [use_conv]
      -> k, v repeated to the query heads (GQA, as the teacher does)
      -> phi = Hedgehog map, shared by q and k                                    [shared_feature_map]
      -> GLA with the low-rank forget gate and the Eq. 8 normalizer               [use_gate, normalize]
      (+ a 64-token softmax window mixed in through a learned per-head factor)    [window_size]
      -> o_proj (teacher)

The same module also computes the teacher's own softmax attention from the same input (`softmax_attention`),
which is what stage 1 of distillation matches, so no second copy of the teacher is ever needed.

Where RoPE sits (use_rope: the `lolcats` and `lawcat-rope` presets). LoLCATs rotates q and k exactly as the
teacher does, right on the projections (its `process_qkv`), before the feature maps and the softmax window. The
LAWCAT paper does not say where RoPE goes relative to its conv (Table 5 only switches it on). It applies the map to
the conv's output (Sec. 4.1), and LAWCAT forks LoLCATs' pipeline, where RoPE is applied on the projections; so RoPE
is placed where LoLCATs has it: on the projections, before the conv. The conv state then holds rotated rows, which
is consistent because every row is rotated at its own absolute position once, whichever chunk it arrives in.
The softmax window takes the same q and k as the map: rotated under `lolcats` (as in LoLCATs), unrotated under
`lawcat-swa64`, which switches on the window alone (Table 6) and, like LAWCAT, has no RoPE anywhere; the paper does
not say whether its LAWCAT + SWA window used RoPE.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..ops.conv import causal_conv1d
from ..ops.gla import gla_augmented, normalized_gla
from ..ops.gla_reference import augment_ones
from ..ops.sliding_window import window_softmax_terms
from .feature_map import HedgehogFeatureMap, hedgehog
from .gate import LowRankGate, stacked_gate
from .rope import apply_rope


def repeat_kv(x: torch.Tensor, groups: int) -> torch.Tensor:
    """[B, T, Hkv, D] -> [B, T, Hkv * groups, D]; kv head j serves query heads j*groups .. (j+1)*groups-1."""
    return x if groups == 1 else x.repeat_interleave(groups, dim=2)


@dataclass
class LayerWeights:
    """LAWCAT's own tensors for one layer, or for several layers stacked along the head axis.

    Heads never interact in LAWCAT attention (the conv is depthwise, the map and the gate are per head), so G
    layers whose q/k/v are laid side by side as G*H heads are exactly G independent layers. Stage 1 uses this to
    run all layers of a teacher as one wide layer: one set of kernel launches instead of one per layer."""
    num_heads: int
    num_kv_heads: int
    conv_q: torch.Tensor | None     # [H*D, W] (None: no conv)
    conv_k: torch.Tensor | None     # [Hkv*D, W]
    map_q: torch.Tensor             # Hedgehog weights [H, D, D/2]
    map_k: torch.Tensor             # the same tensor as map_q when the map is shared
    window_factor: torch.Tensor | None  # [H] logits of the softmax-window share (None: no window)


def stack_weights(layers: list[LayerWeights]) -> LayerWeights:
    """Several layers' weights as one wide layer (layer-major head order, which keeps GQA grouping intact)."""
    def cat(name):
        parts = [getattr(w, name) for w in layers]
        return None if parts[0] is None else torch.cat(parts, dim=0)

    return LayerWeights(sum(w.num_heads for w in layers), sum(w.num_kv_heads for w in layers), cat("conv_q"),
                        cat("conv_k"), cat("map_q"), cat("map_k"), cat("window_factor"))


def lawcat_attention(cfg, w: LayerWeights, q, k, v, g, mask=None, state: dict | None = None,
                     position_embeddings=None, conv_impl: str = "conv"):
    """(RoPE) -> conv -> GQA repeat -> shared map -> gated, normalized linear attention (+ window), no o_proj.

    q [B,T,H,D], k and v [B,T,Hkv,D] (the teacher's projections), g [B,T,H,K] log-space gate or None (no gate);
    mask [B,T] (1 = token) or None; position_embeddings: (cos, sin) of the teacher's rotary module at the tokens'
    absolute positions (needed with use_rope); conv_impl: lawcat.ops.conv.causal_conv1d's. Returns (out [B,T,H,D]
    in v's dtype, new_state)."""
    state, new = state or {}, {}
    B, T, H, D = q.shape
    if cfg.use_rope:
        if position_embeddings is None:
            raise ValueError("use_rope needs position_embeddings: (cos, sin) from the teacher's rotary module")
        # Rotated first, so every consumer below (conv, map, window, each GLA backend, the fused conv + map
        # kernel) takes the same rotated q and k; see the module docstring for why here.
        q, k = apply_rope(q, k, *position_embeddings)
    if _fused_front_end(cfg, w, q):
        return _lawcat_attention_fused(cfg, w, q, k, v, g, mask, state, new)
    m = None if mask is None else mask.to(q.dtype)[:, :, None, None]
    if m is not None:  # padded rows must look exactly like the start of a shorter sequence
        q, k, v = q * m, k * m, v * m
    if w.conv_q is not None:
        q, new["conv_q"] = causal_conv1d(q.reshape(B, T, -1), w.conv_q, state.get("conv_q"), conv_impl)
        k, new["conv_k"] = causal_conv1d(k.reshape(B, T, -1), w.conv_k, state.get("conv_k"), conv_impl)
        q, k = q.view(B, T, H, D), k.view(B, T, w.num_kv_heads, D)
    groups = H // w.num_kv_heads
    k, v = repeat_kv(k, groups), repeat_kv(v, groups)
    fq = hedgehog(q, w.map_q)
    fk = hedgehog(k, w.map_k)
    if g is None:
        g = torch.zeros(*fk.shape, device=q.device, dtype=torch.float32)
    if m is not None:  # the map of a zero key is not zero, so mask after it; g = 0 means "no decay"
        fk, g = fk * m, g * m.float()
    if cfg.window_size:
        valid = torch.ones(B, T, dtype=torch.bool, device=q.device) if mask is None else mask.bool()
        out = _hybrid(cfg, w, q, k, v, fq, fk, g, valid, state, new)
    else:
        out, new["gla"] = normalized_gla(fq, fk, v, g, 1.0, state.get("gla"), cfg.eps, cfg.normalize,
                                         cfg.gla_backend, cfg.chunk_size)
    return out, new


def _fused_front_end(cfg, w: LayerWeights, q) -> bool:
    """Inference with lawcat's Triton GLA kernel takes the fused conv + feature map too (lawcat.ops.triton_front):
    no autograd, a conv, no softmax window (which needs the convolved q and k). RoPE, if on, has already been
    applied to the q and k it is given. LAWCAT_FUSED_FRONT=0 turns it off (for A/B timing)."""
    if torch.is_grad_enabled() or cfg.gla_backend != "triton" or w.conv_q is None or cfg.window_size:
        return False
    if torch.compiler.is_compiling():  # torch.compile fuses the PyTorch ops itself; the kernel would break its graph
        return False
    if os.environ.get("LAWCAT_FUSED_FRONT", "1") == "0":
        return False
    from ..ops import triton_front

    return triton_front.ops.usable(q)


def _fused_decode(cfg, q, mask, state) -> bool:
    """One token at inference takes the fused decode step (lawcat.ops.triton_decode) on CUDA with gla_backend
    "auto" or "triton" ("triton" also under the CPU interpreter): a conv, no softmax window, and a state to
    continue (a prefill or an earlier step made it) whose tensors can be advanced in place; a padding mask goes
    into the kernel. The kernel reads and writes the state every GLA backend keeps, so it serves generate()
    whichever kernel made the prefill. Under torch.compile too (which keeps even an all-ones mask): it is a custom
    op that stays in the compiled graph. LAWCAT_FUSED_DECODE=0 turns it off (A/B)."""
    if cfg.gla_backend not in ("triton", "auto") or (cfg.gla_backend == "auto" and not q.is_cuda):
        return False
    if q.shape[1] != 1 or torch.is_grad_enabled() or not cfg.use_conv or cfg.conv_kernel < 2:
        return False
    if cfg.window_size or not state or set(state) != {"conv_q", "conv_k", "gla"}:
        return False
    if os.environ.get("LAWCAT_FUSED_DECODE", "1") == "0":
        return False
    if not all(t.is_contiguous() for t in state.values()) or state["gla"].dtype != torch.float32:
        return False
    from ..ops import triton_decode

    return triton_decode.usable(q)


def _conv_state_tail(x, mask, state, width: int):
    """The conv state after x: the last width-1 masked input rows of [state, x] (what causal_conv1d returns)."""
    B, T = x.shape[:2]
    flat = x.reshape(B, T, -1)
    if width == 1:
        return flat.new_zeros(B, 0, flat.shape[-1])
    tail = flat[:, -(width - 1):]
    if mask is not None:
        tail = tail * mask[:, -(width - 1):, None].to(tail.dtype)
    if state is None:
        state = flat.new_zeros(B, width - 1, flat.shape[-1])
    return torch.cat([state.to(flat.dtype), tail], dim=1)[:, -(width - 1):]


def _lawcat_attention_fused(cfg, w: LayerWeights, q, k, v, g, mask, state, new):
    """lawcat_attention's conv -> GQA repeat -> map -> masks through one fused kernel per input (same result)."""
    from ..ops.triton_front import conv_feature_map

    groups = q.shape[2] // w.num_kv_heads
    fmask = None if mask is None else mask.to(torch.float32)
    sq, sk = state.get("conv_q"), state.get("conv_k")
    fq = conv_feature_map(q, w.conv_q, w.map_q, sq, fmask, 1, mask_output=False)
    fk = conv_feature_map(k, w.conv_k, w.map_k, sk, fmask, groups, mask_output=True)
    W = w.conv_q.shape[-1]
    new["conv_q"], new["conv_k"] = _conv_state_tail(q, mask, sq, W), _conv_state_tail(k, mask, sk, W)
    m = None if mask is None else mask.to(v.dtype)[:, :, None, None]
    v = repeat_kv(v if m is None else v * m, groups)
    if g is None:
        g = torch.zeros(*fk.shape, device=q.device, dtype=torch.float32)
    elif m is not None:
        g = g * m.float()
    out, new["gla"] = normalized_gla(fq, fk, v, g, 1.0, state.get("gla"), cfg.eps, cfg.normalize, cfg.gla_backend,
                                     cfg.chunk_size)
    return out, new


def _hybrid(cfg, w: LayerWeights, q, k, v, fq, fk, g, valid, state, new):
    """Linear attention over everything older than the window, exact softmax inside it (LoLCATs style).

    The linear part for query t needs the state S_{t-w} decayed over the window's gates. Shifting the key
    stream by w tokens (the cached window in front) makes the ordinary GLA recurrence produce S_{t-w}; the
    remaining decay exp(sum of the window's g) is folded into the query, where it is <= 1 and safe.
    """
    win = cfg.window_size
    B, T, H, D = k.shape
    if "win_k" in state:
        pk, pv, pfk, pg, pvalid = (state[n] for n in ("win_k", "win_v", "win_fk", "win_g", "win_valid"))
    else:
        pk, pv = k.new_zeros(B, win, H, D), v.new_zeros(B, win, H, D)
        pfk, pg = fk.new_zeros(B, win, H, fk.shape[-1]), g.new_zeros(B, win, H, g.shape[-1])
        pvalid = torch.zeros(B, win, dtype=torch.bool, device=k.device)
    k_ext, v_ext, fk_ext = torch.cat([pk, k], 1), torch.cat([pv, v], 1), torch.cat([pfk, fk], 1)
    g_ext, valid_ext = torch.cat([pg, g], 1), torch.cat([pvalid, valid], 1)
    G = torch.cumsum(g_ext.double(), dim=1)
    q_decay = (G[:, win:] - G[:, :T]).exp().to(fq.dtype)            # decay across the w newest tokens
    lin_aug, new["gla"] = gla_augmented(fq * q_decay, fk_ext[:, :T], augment_ones(v_ext[:, :T]),
                                        g_ext[:, :T], 1.0, state.get("gla"), cfg.gla_backend, cfg.chunk_size)
    num_sm, den_sm = window_softmax_terms(q, k_ext, v_ext, valid_ext, win, D ** -0.5)
    f = torch.sigmoid(w.window_factor.float())[None, None, :, None]
    num = f * num_sm + (1 - f) * lin_aug[..., :-1].float()
    den = f * den_sm + (1 - f) * lin_aug[..., -1:].float()
    for name, t in (("win_k", k_ext), ("win_v", v_ext), ("win_fk", fk_ext), ("win_g", g_ext),
                    ("win_valid", valid_ext)):
        new[name] = t[:, -win:]
    return num / (den + cfg.eps) if cfg.normalize else num


def stacked_linear_attention(attns: list, xs, qs, ks, vs, mask=None, position_embeddings=None,
                             conv_impl: str = "conv"):
    """The LAWCAT outputs (before o_proj) of several layers at once, each from its own input: one wide layer of
    G*H heads (LayerWeights). xs[l] [B,T,hidden] and qs/ks/vs[l] are layer l's input and projections.

    Returns [B, T, G, H*D], the same as G calls of LawcatAttention.linear_attention without a state."""
    cfg = attns[0].config
    w = stack_weights([a.weights() for a in attns])
    q, k, v = torch.cat(qs, dim=2), torch.cat(ks, dim=2), torch.cat(vs, dim=2)
    g = stacked_gate([a.gate for a in attns], torch.stack(xs, dim=2)) if cfg.use_gate else None
    out, _ = lawcat_attention(cfg, w, q, k, v, g, mask, None, position_embeddings if cfg.use_rope else None,
                              conv_impl)
    B, T = q.shape[:2]
    return out.to(xs[0].dtype).reshape(B, T, len(attns), -1)


class LawcatAttention(nn.Module):
    def __init__(self, config, teacher_attn: nn.Module, layer_idx: int):
        super().__init__()
        self.config, self.layer_idx = config, layer_idx
        self.num_heads, self.num_kv_heads, self.head_dim = config.attn_heads, config.attn_kv_heads, config.attn_head_dim
        self.groups = self.num_heads // self.num_kv_heads
        H, Hkv, D = self.num_heads, self.num_kv_heads, self.head_dim
        # The teacher's modules are adopted, not copied: names match the teacher's state dict.
        self.q_proj, self.k_proj = teacher_attn.q_proj, teacher_attn.k_proj
        self.v_proj, self.o_proj = teacher_attn.v_proj, teacher_attn.o_proj
        self.q_norm = getattr(teacher_attn, "q_norm", None)
        self.k_norm = getattr(teacher_attn, "k_norm", None)
        self.sliding_window = getattr(teacher_attn, "sliding_window", None)

        if config.use_conv:
            W = config.conv_kernel
            if config.shared_conv:
                self.conv_qk = nn.Parameter(self._conv_init(Hkv * D, W))
            else:
                self.conv_q = nn.Parameter(self._conv_init(H * D, W))
                self.conv_k = nn.Parameter(self._conv_init(Hkv * D, W))
        self.feature_map = HedgehogFeatureMap(H, D)
        if not config.shared_feature_map:
            self.feature_map_k = HedgehogFeatureMap(H, D)
        if config.use_gate:
            self.gate = LowRankGate(config.model_hidden_size, H, self.feature_map.feature_dim, config.gate_rank,
                                    config.gate_logit_normalizer)
        if config.window_size:
            f = config.window_factor_init
            self.window_factor = nn.Parameter(torch.full((H,), math.log(f / (1 - f))))

    def _conv_init(self, channels: int, width: int) -> torch.Tensor:
        # Identity-like: the current token's tap is 1, the others small, so the student starts near "no conv".
        w = torch.full((channels, width), self.config.conv_init_other)
        w[:, -1] = 1.0
        return w

    def new_parameters(self):
        """The parameters LAWCAT adds (trained in stage 1); the teacher's projections are not among them."""
        teacher = {id(p) for m in (self.q_proj, self.k_proj, self.v_proj, self.o_proj, self.q_norm, self.k_norm)
                   if m is not None for p in m.parameters()}
        return [p for p in self.parameters() if id(p) not in teacher]

    # ---- shared front end -------------------------------------------------------------------------------
    def project(self, x):
        """The teacher's q [B,T,H,D], k and v [B,T,Hkv,D] (with Qwen3's q/k norm), shared by both paths."""
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.num_heads, self.head_dim)
        k = self.k_proj(x).view(B, T, self.num_kv_heads, self.head_dim)
        v = self.v_proj(x).view(B, T, self.num_kv_heads, self.head_dim)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        return q, k, v

    def weights(self) -> LayerWeights:
        """This layer's LAWCAT tensors (the shared conv resolved to its q and k forms)."""
        cfg, wq, wk = self.config, None, None
        if cfg.use_conv and cfg.shared_conv:
            wk = self.conv_qk
            wq = wk.view(self.num_kv_heads, self.head_dim, -1).repeat_interleave(self.groups, dim=0)
            wq = wq.reshape(self.num_heads * self.head_dim, -1)
        elif cfg.use_conv:
            wq, wk = self.conv_q, self.conv_k
        map_k = self.feature_map if cfg.shared_feature_map else self.feature_map_k
        return LayerWeights(self.num_heads, self.num_kv_heads, wq, wk, self.feature_map.weight, map_k.weight,
                            getattr(self, "window_factor", None))

    # ---- the LAWCAT path ---------------------------------------------------------------------------------
    def forward(self, x, mask=None, state: dict | None = None, position_embeddings=None):
        """x [B, T, hidden]; mask [B, T] (1 = token, 0 = padding) or None; state: this layer's cache entry.

        Returns (output [B, T, hidden], new_state).
        """
        out, new_state = self.linear_attention(x, mask, state, position_embeddings)
        return self.o_proj(out), new_state

    def linear_attention(self, x, mask=None, state: dict | None = None, position_embeddings=None, qkv=None):
        """The LAWCAT attention output before o_proj, [B, T, H*D], and the updated layer state.

        `qkv` lets a caller that already projected x (stage 1 computes the teacher path from the same q, k, v)
        skip a second pass through the projections.
        """
        q, k, v = qkv if qkv is not None else self.project(x)
        if _fused_decode(self.config, q, mask, state):
            return self._decode_fused(x, q, k, v, state, position_embeddings, mask)
        g = self.gate(x) if self.config.use_gate else None
        out, new = lawcat_attention(self.config, self.weights(), q, k, v, g, mask, state, position_embeddings)
        return out.to(x.dtype).reshape(*x.shape[:2], -1), new

    def _decode_fused(self, x, q, k, v, state: dict, position_embeddings, mask=None):
        """linear_attention for one token through lawcat.ops.triton_decode: the same output, the layer's states
        advanced in the cache's own tensors (returned as the new state, so the cache's write is a no-op)."""
        from ..ops.triton_decode import decode_step

        cfg, w = self.config, self.weights()
        if cfg.use_rope:
            q, k = apply_rope(q, k, *position_embeddings)
        logits = self.gate.logits(x).view(x.shape[0], self.num_heads, -1) if cfg.use_gate else None
        out = decode_step(q[:, 0], k[:, 0], v[:, 0], logits, state["conv_q"], state["conv_k"], w.conv_q, w.conv_k,
                          w.map_q, w.map_k, state["gla"], self.gate.normalizer if cfg.use_gate else 1.0, cfg.eps,
                          cfg.normalize, None if mask is None else mask[:, 0])
        new = {name: state[name] for name in ("conv_q", "conv_k", "gla")}
        return out.to(x.dtype).reshape(x.shape[0], 1, -1), new

    # ---- the teacher path (stage 1 target) ---------------------------------------------------------------
    def softmax_attention(self, x, position_embeddings, mask=None, qkv=None):
        """The teacher's causal softmax attention output before o_proj, [B, T, H*D], via SDPA."""
        B, T, _ = x.shape
        q, k, v = qkv if qkv is not None else self.project(x)
        q, k = apply_rope(q, k, *position_embeddings)
        q, k, v = (q.transpose(1, 2), repeat_kv(k, self.groups).transpose(1, 2),
                   repeat_kv(v, self.groups).transpose(1, 2))
        attn_mask = None
        if mask is not None or (self.sliding_window and T > self.sliding_window):
            i = torch.arange(T, device=x.device)
            allowed = i[None, :] <= i[:, None]
            if self.sliding_window:
                allowed &= i[:, None] - i[None, :] < self.sliding_window
            allowed = allowed[None, None]
            if mask is not None:
                # A query row that sees nothing (a pad) would give NaN; let pads see themselves.
                allowed = (allowed & mask.bool()[:, None, None, :]) | torch.eye(T, dtype=torch.bool,
                                                                                device=x.device)[None, None]
            attn_mask = allowed
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=attn_mask is None,
                                             scale=self.head_dim ** -0.5)
        return out.transpose(1, 2).reshape(B, T, -1)
