"""Named teacher architectures with their published shapes, and random-weight models built from them.

A benchmark of speed and memory needs the shapes, not the weights: `build_random_model("llama-3-8b",
"cuda", torch.bfloat16)` makes an 8B Llama in a few seconds and without a download. The model is first
built on the meta device (no memory, no init), then given real storage with `to_empty` and filled with a
cheap init (normal(0, 0.02) matrices, unit norms, zero biases) drawn on the target device. The two things
`to_empty` leaves behind are fixed by hand: tied embeddings are re-tied, and the RoPE frequency buffers
(computed in `__init__`, not parameters) are recomputed from the config.

Every entry is the `config.json` its model publishes (sizes, heads, RoPE, tying); `reported` is the size the
model card / hub shows, which the parameter count of the built model must round to
(tests/models/test_architectures.py checks it).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig

from ..errors import LawcatError

__all__ = ["ARCHITECTURES", "Architecture", "UnknownArchitectureError", "arch_config", "build_random_model",
           "count_parameters", "list_architectures", "parse_reported"]


class UnknownArchitectureError(LawcatError):
    pass


@dataclass(frozen=True)
class Architecture:
    family: str                 # transformers model_type
    config: dict                # the published config.json fields that set the shapes
    reported: str               # parameter count as the model card / hub shows it ("1.24B", "135M")
    source: str                 # where the shapes come from
    test_only: bool = False
    notes: str = ""
    extra: dict = field(default_factory=dict)


_LLAMA3_ROPE_1B = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192}
_LLAMA31_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                 "original_max_position_embeddings": 8192}


def _llama3(hidden, inter, layers, heads, kv, **kw):
    base = dict(vocab_size=128256, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                num_attention_heads=heads, num_key_value_heads=kv, head_dim=hidden // heads, rms_norm_eps=1e-5,
                rope_theta=500000.0, bos_token_id=128000, eos_token_id=128001, hidden_act="silu")
    base.update(kw)
    return base


def _smollm2(hidden, inter, layers, heads, kv, rope_theta):
    return dict(vocab_size=49152, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=8192, rms_norm_eps=1e-5,
                rope_theta=rope_theta, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, hidden_act="silu")


def _qwen(vocab, hidden, inter, layers, heads, kv, tie, max_pos, eps=1e-6, **kw):
    base = dict(vocab_size=vocab, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                num_attention_heads=heads, num_key_value_heads=kv, tie_word_embeddings=tie,
                max_position_embeddings=max_pos, rms_norm_eps=eps, rope_theta=1000000.0, hidden_act="silu")
    base.update(kw)
    return base


ARCHITECTURES: dict[str, Architecture] = {
    # Llama 3.x (meta-llama/*): GQA with 8 KV heads, vocab 128256.
    "llama-3.2-1b": Architecture("llama", _llama3(2048, 8192, 16, 32, 8, max_position_embeddings=131072,
                                                  rope_scaling=_LLAMA3_ROPE_1B, tie_word_embeddings=True),
                                 "1.24B", "meta-llama/Llama-3.2-1B config.json"),
    "llama-3.2-3b": Architecture("llama", _llama3(3072, 8192, 28, 24, 8, max_position_embeddings=131072,
                                                  rope_scaling=_LLAMA3_ROPE_1B, tie_word_embeddings=True),
                                 "3.21B", "meta-llama/Llama-3.2-3B config.json"),
    "llama-3-8b": Architecture("llama", _llama3(4096, 14336, 32, 32, 8, max_position_embeddings=8192,
                                                tie_word_embeddings=False),
                               "8.03B", "meta-llama/Meta-Llama-3-8B config.json (the LAWCAT paper's teacher)"),
    "llama-3.1-8b": Architecture("llama", _llama3(4096, 14336, 32, 32, 8, max_position_embeddings=131072,
                                                  rope_scaling=_LLAMA31_ROPE, tie_word_embeddings=False),
                                 "8.03B", "meta-llama/Llama-3.1-8B config.json"),
    "llama-2-7b": Architecture("llama", dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                                             num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                                             max_position_embeddings=4096, rms_norm_eps=1e-5, rope_theta=10000.0,
                                             tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
                                             hidden_act="silu"),
                               "6.74B", "meta-llama/Llama-2-7b-hf config.json"),
    # SmolLM2 (HuggingFaceTB/*): Llama architecture, tied embeddings, vocab 49152.
    "smollm2-135m": Architecture("llama", _smollm2(576, 1536, 30, 9, 3, 100000.0), "135M",
                                 "HuggingFaceTB/SmolLM2-135M config.json (lawcat's default teacher)"),
    "smollm2-360m": Architecture("llama", _smollm2(960, 2560, 32, 15, 5, 100000.0), "362M",
                                 "HuggingFaceTB/SmolLM2-360M config.json"),
    "smollm2-1.7b": Architecture("llama", _smollm2(2048, 8192, 24, 32, 32, 130000.0), "1.71B",
                                 "HuggingFaceTB/SmolLM2-1.7B config.json"),
    # Mistral 7B v0.3: no sliding window (v0.1's 4096 window would give the teacher a masked, O(T^2) path).
    "mistral-7b": Architecture("mistral", dict(vocab_size=32768, hidden_size=4096, intermediate_size=14336,
                                               num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                                               head_dim=128, max_position_embeddings=32768, rms_norm_eps=1e-5,
                                               rope_theta=1000000.0, sliding_window=None, tie_word_embeddings=False,
                                               bos_token_id=1, eos_token_id=2, hidden_act="silu"),
                               "7.25B", "mistralai/Mistral-7B-v0.3 config.json"),
    # Qwen2.5 (Qwen/*): q/k/v biases.
    "qwen2.5-0.5b": Architecture("qwen2", _qwen(151936, 896, 4864, 24, 14, 2, True, 32768), "0.49B",
                                 "Qwen/Qwen2.5-0.5B config.json"),
    "qwen2.5-1.5b": Architecture("qwen2", _qwen(151936, 1536, 8960, 28, 12, 2, True, 131072), "1.54B",
                                 "Qwen/Qwen2.5-1.5B config.json"),
    "qwen2.5-7b": Architecture("qwen2", _qwen(152064, 3584, 18944, 28, 28, 4, False, 131072), "7.62B",
                               "Qwen/Qwen2.5-7B config.json"),
    # Qwen3 (Qwen/*): head_dim 128 independent of hidden size, q/k RMSNorm.
    "qwen3-0.6b": Architecture("qwen3", _qwen(151936, 1024, 3072, 28, 16, 8, True, 40960, head_dim=128), "0.6B",
                               "Qwen/Qwen3-0.6B config.json"),
    "qwen3-1.7b": Architecture("qwen3", _qwen(151936, 2048, 6144, 28, 16, 8, True, 40960, head_dim=128), "1.7B",
                               "Qwen/Qwen3-1.7B config.json"),
    "qwen3-8b": Architecture("qwen3", _qwen(151936, 4096, 12288, 36, 32, 8, False, 40960, head_dim=128), "8.19B",
                             "Qwen/Qwen3-8B config.json"),
    # Tiny shapes for tests and smoke runs on CPU.
    "tiny-llama": Architecture("llama", dict(vocab_size=256, hidden_size=64, intermediate_size=128,
                                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                             max_position_embeddings=4096, rope_theta=10000.0,
                                             tie_word_embeddings=True),
                               "0.09M", "lawcat tests (2 layers)", test_only=True),
}


def list_architectures(include_test: bool = False) -> list[str]:
    return [n for n, a in ARCHITECTURES.items() if include_test or not a.test_only]


def arch_config(name: str) -> PretrainedConfig:
    """The transformers config of a named architecture (a fresh object each call)."""
    key = name.lower()
    if key not in ARCHITECTURES:
        raise UnknownArchitectureError(
            f"unknown architecture {name!r}; known: {', '.join(list_architectures(include_test=True))}")
    arch = ARCHITECTURES[key]
    cfg = AutoConfig.for_model(arch.family, **copy.deepcopy(arch.config))
    cfg.lawcat_arch = key
    return cfg


def parse_reported(text: str) -> tuple[float, float]:
    """'1.24B' -> (1.24e9, 0.005e9): the value and half a unit of its last printed digit."""
    unit = {"K": 1e3, "M": 1e6, "B": 1e9}[text[-1].upper()]
    digits = text[:-1]
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return float(digits) * unit, 0.5 * 10 ** -decimals * unit


def _as_config(config_or_name) -> PretrainedConfig:
    return arch_config(config_or_name) if isinstance(config_or_name, str) else config_or_name


def _meta_model(config: PretrainedConfig, dtype, attn_implementation: str | None):
    kw = {"dtype": dtype}
    if attn_implementation:
        kw["attn_implementation"] = attn_implementation
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, **kw)


def count_parameters(config_or_name) -> int:
    """Parameters of the model a config describes (tied weights once), built on the meta device: no memory."""
    model = _meta_model(_as_config(config_or_name), torch.float32, None)
    return sum(p.numel() for p in model.parameters())


def _rebuild_rope_buffers(model: torch.nn.Module, device) -> None:
    """to_empty leaves buffers as garbage; the only ones a decoder has are RoPE's, computed from the config."""
    fixed = set()
    for name, module in model.named_modules():
        if type(module).__name__.endswith("RotaryEmbedding"):
            fresh = type(module)(config=module.config)  # built on CPU: a few hundred floats
            for bname, buf in fresh.named_buffers(recurse=False):
                module._buffers[bname] = buf.to(device)
                fixed.add(f"{name}.{bname}" if name else bname)
    left = [n for n, _ in model.named_buffers() if n not in fixed]
    if left:
        raise RuntimeError(f"build_random_model does not know how to initialise the buffers {left}")


def build_random_model(config_or_name, device="cpu", dtype: torch.dtype = torch.float32, seed: int = 0,
                       std: float = 0.02, attn_implementation: str | None = "sdpa"):
    """A causal LM of the given architecture with random weights, built directly on `device` in `dtype`.

    Meant for speed and memory measurements: the weights are random, so the outputs are meaningless.
    """
    config = _as_config(config_or_name)
    model = _meta_model(config, dtype, attn_implementation)
    device = torch.device(device)
    model.to_empty(device=device)
    if getattr(model.config, "tie_word_embeddings", False):
        model.tie_weights()
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, std, generator=gen)
            elif name.endswith("bias"):
                p.zero_()
            else:  # RMSNorm weights (including Qwen3's q/k norms)
                p.fill_(1.0)
    _rebuild_rope_buffers(model, device)
    model.lawcat_source = f"random:{getattr(config, 'lawcat_arch', config.model_type)}"
    model.lawcat_file_sha256 = None
    return model.eval()
