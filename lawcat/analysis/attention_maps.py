"""Attention maps at one layer: the teacher's softmax weights and the weights a LAWCAT layer's output implies.

LAWCAT never forms a T x T matrix, but its output at query t is still a weighted sum of the values:
    out_t = sum_s A_ts v_s,  A_ts = w_ts / (sum_s' w_ts' + eps),  w_ts = sum_d phi(q_t)_d phi(k_s)_d exp(G_td - G_sd)
for s <= t (Eq. 8: q and k after the conv, phi the Hedgehog map, G the inclusive cumulative log gate). Without the
normalizer A = w. With the softmax window, the keys inside the window weigh f exp(score - row max) and the older
ones (1 - f) w_ts, over one shared denominator (the layer's `_hybrid`). Here A is formed row block by row block in
float64 from the layer's own parts (projections, conv taps, map, gate), not through the chunked GLA kernels, so it
checks them as well as draws them: A @ v is the layer's output before o_proj. Quadratic in the prompt's length.

Each model is read on its own hidden states, as the paper's figures (App. A.4) compare separate models.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ..layers.attention import repeat_kv
from ..layers.feature_map import hedgehog
from ..layers.rope import apply_rope

# Elements of the [rows, T, K] pairwise decay tensor formed at once (float64): bounds the memory per block.
_PAIRWISE_BUDGET = 1 << 23


class _Stop(Exception):
    """Raised by a capture hook once it has what it needs: the layers above it need not run."""


def _read_until_stop(model, ids: torch.Tensor, hook) -> None:
    """Run `model` on ids [1, T] until `hook` (already registered) raises _Stop; the hook is removed either way."""
    try:
        with torch.no_grad():
            model(input_ids=ids, use_cache=False, logits_to_keep=1)
    except _Stop:
        pass
    finally:
        hook.remove()


def layer_input(student, ids: torch.Tensor, layer: int):
    """(x [1, T, hidden], position_embeddings or None): what `layer`'s LawcatAttention receives when the student
    reads ids [1, T] (its own hidden states, after the layer's input norm)."""
    seen = {}

    def capture(_module, args, kwargs):
        names = ("x", "mask", "state", "position_embeddings")
        given = {**dict(zip(names, args)), **kwargs}
        seen["x"], seen["pe"] = given["x"], given.get("position_embeddings")
        raise _Stop

    _read_until_stop(student, ids, student.model.layers[layer].self_attn.register_forward_pre_hook(
        capture, with_kwargs=True))
    return seen["x"], seen["pe"]


def student_attention_weights(attn, x: torch.Tensor, position_embeddings=None, heads=None) -> torch.Tensor:
    """The attention matrices [len(heads), T, T] (float64) that LawcatAttention `attn` applies to its values for
    input x [1, T, hidden] (no padding): row t holds the weights of values 0..t of the head's (GQA-repeated) v.
    heads: indices of query heads (default: all)."""
    cfg, w = attn.config, attn.weights()
    H = w.num_heads
    with torch.no_grad():
        q, k, _ = attn.project(x)
        if cfg.use_rope:
            q, k = apply_rope(q, k, *position_embeddings)
        if w.conv_q is not None:
            q, k = _causal_conv(q, w.conv_q), _causal_conv(k, w.conv_k)
        k = repeat_kv(k, H // w.num_kv_heads)
        fq, fk = hedgehog(q, w.map_q), hedgehog(k, w.map_k)
        g = attn.gate(x) if cfg.use_gate else torch.zeros(fk.shape)
    maps = []
    for h in range(H) if heads is None else heads:
        weights = _linear_weights(fq[0, :, h].double(), fk[0, :, h].double(), g[0, :, h].double())
        if cfg.window_size:
            f = torch.sigmoid(w.window_factor[h].detach().double())
            older = torch.ones_like(weights).tril(-cfg.window_size).bool()  # keys at least `window` tokens back
            recent = _window_weights(q[0, :, h].double(), k[0, :, h].double(), cfg.window_size)
            weights = f * recent + (1 - f) * weights * older
        if cfg.normalize:
            weights = weights / (weights.sum(-1, keepdim=True) + cfg.eps)
        maps.append(weights)
    return torch.stack(maps)


def teacher_attention_weights(teacher, ids: torch.Tensor, layer: int, heads=None) -> torch.Tensor:
    """The softmax attention [len(heads), T, T] (float32) of a transformers causal LM's `layer` on ids [1, T]: the
    weights its eager attention computes (switched on for this call; causal and sliding-window masks as the model
    applies them)."""
    seen = {}

    def capture(_module, _args, out):
        seen["weights"] = out[1]
        raise _Stop

    previous = teacher.config._attn_implementation
    teacher.set_attn_implementation("eager")  # the fused kernels never form the weights
    try:
        _read_until_stop(teacher, ids, teacher.model.layers[layer].self_attn.register_forward_hook(capture))
    finally:
        teacher.set_attn_implementation(previous)
    weights = seen["weights"][0].float()
    return weights if heads is None else weights[list(heads)]


def row_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over rows of the total-variation distance between two [T, T] maps, each row scaled to sum to 1
    (0: the same weights, 1: disjoint supports)."""
    a, b = (m.double() / m.double().sum(-1, keepdim=True).clamp_min(1e-300) for m in (a, b))
    return 0.5 * (a - b).abs().sum(-1).mean().item()


def _causal_conv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x [1, T, heads, D] through the depthwise causal conv weight [heads * D, W] (tap W-1 on the current token),
    written out as the sum over taps: y_t = sum_j weight[:, j] x_(t - W + 1 + j), zeros before the prompt."""
    B, T = x.shape[:2]
    flat = x.reshape(B, T, -1).double()
    W = weight.shape[-1]
    padded = F.pad(flat, (0, 0, W - 1, 0))
    y = sum(padded[:, j:j + T] * weight[:, j].detach().double() for j in range(W))
    return y.view(x.shape).to(x.dtype)


def _linear_weights(fq: torch.Tensor, fk: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """w_ts = sum_d fq_td fk_sd exp(G_td - G_sd) for s <= t, else 0; fq, fk, g [T, K] -> [T, T]. The decay is
    formed pairwise, so any gate is exact (no factor exp(-G_s) that could overflow)."""
    T, K = fq.shape
    G = g.cumsum(0)
    out = torch.zeros(T, T, dtype=torch.float64)
    rows = max(1, _PAIRWISE_BUDGET // max(1, T * K))
    s = torch.arange(T)
    for a in range(0, T, rows):
        b = min(T, a + rows)
        ahead = s[None, :] > torch.arange(a, b)[:, None]                      # keys after the query
        diff = (G[a:b, None, :] - G[None, :, :]).masked_fill(ahead[:, :, None], float("-inf"))
        out[a:b] = torch.einsum("tk,sk,tsk->ts", fq[a:b], fk, diff.exp())
    return out


def _window_weights(q: torch.Tensor, k: torch.Tensor, window: int) -> torch.Tensor:
    """exp(score - row max) over the `window` most recent keys (the query's own included), else 0; q, k [T, D]
    after the conv (and RoPE, if on), as lawcat.ops.sliding_window scores them."""
    T, D = q.shape
    scores = (q @ k.T) * D ** -0.5
    t, s = torch.arange(T)[:, None], torch.arange(T)[None, :]
    visible = (s <= t) & (t - s < window)
    scores = scores.masked_fill(~visible, float("-inf"))
    return (scores - scores.amax(-1, keepdim=True)).exp()
