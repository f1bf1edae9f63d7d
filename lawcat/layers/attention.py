"""LawcatAttention: the teacher's projections feeding conv -> shared feature map -> gated, normalized linear attention.

Data flow for one layer (method.md, "The layer"):
    x -> q_proj, k_proj, v_proj (teacher; Qwen2 bias and Qwen3 q/k RMSNorm kept)
      -> padding zeroed (pads must neither feed nor decay the state)
      -> causal depthwise conv on q and on k (kernel 4, identity-like init)       [use_conv]
      -> RoPE                                                                     [use_rope, off by default]
      -> k, v repeated to the query heads (GQA, as the teacher does)
      -> phi = Hedgehog map, shared by q and k                                    [shared_feature_map]
      -> GLA with the low-rank forget gate and the Eq. 8 normalizer               [use_gate, normalize]
      (+ a 64-token softmax window mixed in through a learned per-head factor)    [window_size]
      -> o_proj (teacher)

The same module also computes the teacher's own softmax attention from the same input (`softmax_attention`),
which is what stage 1 of distillation matches, so no second copy of the teacher is ever needed.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..ops.conv import causal_conv1d
from ..ops.gla import gla_augmented, normalized_gla
from ..ops.gla_reference import augment_ones
from ..ops.sliding_window import window_softmax_terms
from .feature_map import HedgehogFeatureMap
from .gate import LowRankGate
from .rope import apply_rope


def repeat_kv(x: torch.Tensor, groups: int) -> torch.Tensor:
    """[B, T, Hkv, D] -> [B, T, Hkv * groups, D]; kv head j serves query heads j*groups .. (j+1)*groups-1."""
    return x if groups == 1 else x.repeat_interleave(groups, dim=2)


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

    def _conv_weights(self):
        if self.config.shared_conv:
            wq = self.conv_qk.view(self.num_kv_heads, self.head_dim, -1).repeat_interleave(self.groups, dim=0)
            return wq.reshape(self.num_heads * self.head_dim, -1), self.conv_qk
        return self.conv_q, self.conv_k

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
        cfg, state, new = self.config, state or {}, {}
        B, T, _ = x.shape
        q, k, v = qkv if qkv is not None else self.project(x)
        m = None if mask is None else mask.to(q.dtype)[:, :, None, None]
        if m is not None:  # padded rows must look exactly like the start of a shorter sequence
            q, k, v = q * m, k * m, v * m
        if cfg.use_conv:
            wq, wk = self._conv_weights()
            q, new["conv_q"] = causal_conv1d(q.reshape(B, T, -1), wq, state.get("conv_q"))
            k, new["conv_k"] = causal_conv1d(k.reshape(B, T, -1), wk, state.get("conv_k"))
            q = q.view(B, T, self.num_heads, self.head_dim)
            k = k.view(B, T, self.num_kv_heads, self.head_dim)
        if cfg.use_rope:
            q, k = apply_rope(q, k, *position_embeddings)
        k, v = repeat_kv(k, self.groups), repeat_kv(v, self.groups)
        fq = self.feature_map(q)
        fk = (self.feature_map if cfg.shared_feature_map else self.feature_map_k)(k)
        if cfg.use_gate:
            g = self.gate(x)
        else:
            g = torch.zeros(*fk.shape, device=x.device, dtype=torch.float32)
        if m is not None:  # the map of a zero key is not zero, so mask after it; g = 0 means "no decay"
            fk, g = fk * m, g * m.float()
        if cfg.window_size:
            valid = torch.ones(B, T, dtype=torch.bool, device=x.device) if mask is None else mask.bool()
            out = self._hybrid(q, k, v, fq, fk, g, valid, state, new)
        else:
            out, new["gla"] = normalized_gla(fq, fk, v, g, 1.0, state.get("gla"), cfg.eps, cfg.normalize,
                                             cfg.gla_backend, cfg.chunk_size)
        return out.to(x.dtype).reshape(B, T, -1), new

    def _hybrid(self, q, k, v, fq, fk, g, valid, state, new):
        """Linear attention over everything older than the window, exact softmax inside it (LoLCATs style).

        The linear part for query t needs the state S_{t-w} decayed over the window's gates. Shifting the key
        stream by w tokens (the cached window in front) makes the ordinary GLA recurrence produce S_{t-w}; the
        remaining decay exp(sum of the window's g) is folded into the query, where it is <= 1 and safe.
        """
        cfg, w = self.config, self.config.window_size
        B, T, H, D = k.shape
        if "win_k" in state:
            pk, pv, pfk, pg, pvalid = (state[n] for n in ("win_k", "win_v", "win_fk", "win_g", "win_valid"))
        else:
            pk, pv = k.new_zeros(B, w, H, D), v.new_zeros(B, w, H, D)
            pfk, pg = fk.new_zeros(B, w, H, fk.shape[-1]), g.new_zeros(B, w, H, g.shape[-1])
            pvalid = torch.zeros(B, w, dtype=torch.bool, device=k.device)
        k_ext, v_ext, fk_ext = torch.cat([pk, k], 1), torch.cat([pv, v], 1), torch.cat([pfk, fk], 1)
        g_ext, valid_ext = torch.cat([pg, g], 1), torch.cat([pvalid, valid], 1)
        G = torch.cumsum(g_ext.double(), dim=1)
        q_decay = (G[:, w:] - G[:, :T]).exp().to(fq.dtype)            # decay across the w newest tokens
        lin_aug, new["gla"] = gla_augmented(fq * q_decay, fk_ext[:, :T], augment_ones(v_ext[:, :T]),
                                            g_ext[:, :T], 1.0, state.get("gla"), cfg.gla_backend, cfg.chunk_size)
        num_sm, den_sm = window_softmax_terms(q, k_ext, v_ext, valid_ext, w, self.head_dim ** -0.5)
        f = torch.sigmoid(self.window_factor.float())[None, None, :, None]
        num = f * num_sm + (1 - f) * lin_aug[..., :-1].float()
        den = f * den_sm + (1 - f) * lin_aug[..., -1:].float()
        for name, t in (("win_k", k_ext), ("win_v", v_ext), ("win_fk", fk_ext), ("win_g", g_ext),
                        ("win_valid", valid_ext)):
            new[name] = t[:, -w:]
        return num / (den + cfg.eps) if cfg.normalize else num

    # ---- the teacher path (stage 1 target) ---------------------------------------------------------------
    def softmax_attention(self, x, position_embeddings, mask=None, qkv=None):
        """The teacher's causal softmax attention output before o_proj, [B, T, H*D], via SDPA."""
        B, T, _ = x.shape
        q, k, v = qkv if qkv is not None else self.project(x)
        q, k = apply_rope(q, k, *position_embeddings)
        q, k, v = q.transpose(1, 2), repeat_kv(k, self.groups).transpose(1, 2), repeat_kv(v, self.groups).transpose(1, 2)
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
