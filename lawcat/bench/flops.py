"""Analytic FLOP counts of a forward pass, read off the model config (1 multiply-add = 2 FLOPs).

What is counted is the model's matrix-product work, the numerator of a utilisation figure ("MFU"):

* per token and layer: the q, k, v, o projections and the SwiGLU MLP's three matrices;
* `lm_head` for each position whose logits are computed (one per prompt when prefilling with
  `logits_to_keep=1`, as both the teacher and the student do here);
* teacher only, per layer: causal softmax attention, QK^T and PV over the T(T+1)/2 (query, key) pairs
  a causal mask keeps: 2 * 2 * heads * head_dim * T(T+1)/2;
* student only, per token and layer: LAWCAT's own small products (the low-rank gate, the Hedgehog map on
  q and k) and the linear attention in its recurrent form: the state update k^T [v, 1] and the readout
  q S, each heads * K * (V + 1) multiply-adds. The chunked kernels do some more (the intra-chunk part);
  like MFU we count the model's work, not the kernel's.

Norms, RoPE, activations, softmax exponentials and the convolution are not matrix products and are left out.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ModelShape", "decode_flops", "matmul_flops_per_token", "prefill_flops"]


@dataclass(frozen=True)
class ModelShape:
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int

    @classmethod
    def from_config(cls, config) -> "ModelShape":
        """From a transformers config, its dict, or a LawcatConfig (whose teacher_config is used)."""
        if hasattr(config, "teacher_config") and isinstance(getattr(config, "teacher_config"), dict):
            config = config.teacher_config
        get = config.get if isinstance(config, dict) else (lambda k, d=None: getattr(config, k, d))
        heads = get("num_attention_heads")
        hidden = get("hidden_size")
        return cls(layers=get("num_hidden_layers"), hidden=hidden, intermediate=get("intermediate_size"),
                   heads=heads, kv_heads=get("num_key_value_heads") or heads,
                   head_dim=get("head_dim") or hidden // heads, vocab=get("vocab_size"))


def matmul_flops_per_token(shape: ModelShape) -> dict[str, int]:
    """Per-token FLOPs of the dense products, summed over layers; `lm_head` is per token whose logits are kept."""
    h, L = shape.hidden, shape.layers
    q = 2 * h * shape.heads * shape.head_dim
    kv = 2 * h * shape.kv_heads * shape.head_dim
    return {"q_proj": L * q, "k_proj": L * kv, "v_proj": L * kv, "o_proj": L * q,
            "mlp": L * 3 * 2 * h * shape.intermediate, "lm_head": 2 * h * shape.vocab}


def _lawcat_extra_per_token(shape: ModelShape, lawcat) -> dict[str, int]:
    """Per-token FLOPs LAWCAT adds over all layers (gate, feature maps, linear attention)."""
    H, D, L = shape.heads, shape.head_dim, shape.layers
    K, V = D, D  # Hedgehog feature dim = head_dim; the state carries V + 1 columns (the normalizer)
    use_gate = getattr(lawcat, "use_gate", True) if lawcat is not None else True
    rank = getattr(lawcat, "gate_rank", 32) if lawcat is not None else 32
    out = {
        "gate": L * (2 * shape.hidden * rank + 2 * rank * H * K) if use_gate else 0,
        "feature_map": L * 2 * (2 * H * D * (D // 2)),  # q and k, each H heads x [D -> D/2]
        "linear_attention": L * 2 * (2 * H * K * (V + 1)),
    }
    window = getattr(lawcat, "window_size", 0) if lawcat is not None else 0
    if window:
        out["window_attention"] = L * 2 * 2 * H * D * window  # at most `window` keys per query
    return out


def prefill_flops(config, T: int, model: str = "teacher", lawcat=None, logits_tokens: int = 1,
                  batch: int = 1) -> dict[str, int]:
    """FLOPs of one prefill of `T` tokens (per batch row times `batch`), by term, with 'total'.

    model: 'teacher' (adds causal softmax attention, quadratic in T) or 'student' (adds LAWCAT's terms;
    `lawcat` is the LawcatConfig, default switches when None).
    """
    if model not in ("teacher", "student"):
        raise ValueError(f"model must be 'teacher' or 'student', got {model!r}")
    shape = config if isinstance(config, ModelShape) else ModelShape.from_config(config)
    per_tok = matmul_flops_per_token(shape)
    out = {k: v * T for k, v in per_tok.items() if k != "lm_head"}
    out["lm_head"] = per_tok["lm_head"] * min(logits_tokens, T)
    if model == "teacher":
        out["attention"] = shape.layers * 4 * shape.heads * shape.head_dim * (T * (T + 1) // 2)
    else:
        out.update({k: v * T for k, v in _lawcat_extra_per_token(shape, lawcat).items()})
    out = {k: v * batch for k, v in out.items()}
    out["total"] = sum(out.values())
    return out


def decode_flops(config, context: int, model: str = "teacher", lawcat=None, batch: int = 1) -> dict[str, int]:
    """FLOPs of one decoding step after `context` tokens (logits for the new token included)."""
    shape = config if isinstance(config, ModelShape) else ModelShape.from_config(config)
    out = dict(matmul_flops_per_token(shape))
    if model == "teacher":
        out["attention"] = shape.layers * 4 * shape.heads * shape.head_dim * (context + 1)
    elif model == "student":
        out.update(_lawcat_extra_per_token(shape, lawcat))
    else:
        raise ValueError(f"model must be 'teacher' or 'student', got {model!r}")
    out = {k: v * batch for k, v in out.items()}
    out["total"] = sum(out.values())
    return out
