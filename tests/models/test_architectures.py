"""Named architectures: published sizes (counted on the meta device) and random-weight models that work."""
import pytest
import torch
from transformers import AutoModelForCausalLM

from lawcat.models.architectures import (
    ARCHITECTURES,
    UnknownArchitectureError,
    arch_config,
    build_random_model,
    count_parameters,
    list_architectures,
    parse_reported,
)
from tests.conftest import FAMILY_CONFIGS


def test_llama_3_2_1b_has_its_published_size():
    n = count_parameters("llama-3.2-1b")
    assert abs(n - 1.24e9) / 1.24e9 < 0.01
    assert n == 1_235_814_400  # embeddings tied: counted once


def test_llama_3_8b_and_smollm2_135m_published_sizes():
    assert abs(count_parameters("llama-3-8b") - 8.03e9) / 8.03e9 < 0.01
    assert count_parameters("smollm2-135m") == 134_515_008


@pytest.mark.parametrize("name", list_architectures())
def test_every_architecture_rounds_to_its_reported_size(name):
    value, half_unit = parse_reported(ARCHITECTURES[name].reported)
    n = count_parameters(name)
    assert abs(n - value) <= half_unit, f"{name}: {n:,} parameters does not round to {ARCHITECTURES[name].reported}"


def test_published_shapes():
    c = arch_config("llama-3.2-1b")
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim,
            c.vocab_size, c.tie_word_embeddings) == (16, 2048, 32, 8, 64, 128256, True)
    assert c.rope_parameters["rope_type"] == "llama3" and c.rope_parameters["factor"] == 32.0
    c = arch_config("llama-3-8b")
    assert (c.num_hidden_layers, c.hidden_size, c.intermediate_size, c.num_key_value_heads, c.tie_word_embeddings) == \
        (32, 4096, 14336, 8, False)
    c = arch_config("smollm2-135m")
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.vocab_size) == \
        (30, 576, 9, 3, 49152)
    assert arch_config("qwen3-8b").model_type == "qwen3" and arch_config("qwen2.5-7b").model_type == "qwen2"


def test_parse_reported_and_unknown_name():
    assert parse_reported("1.24B") == (1.24e9, pytest.approx(0.005e9))
    assert parse_reported("135M") == (135e6, 0.5e6)
    with pytest.raises(UnknownArchitectureError, match="unknown architecture 'llama-9'"):
        arch_config("llama-9")


@pytest.mark.parametrize("family", list(FAMILY_CONFIGS))
def test_random_model_is_complete(family):
    """Built on meta + to_empty: every tensor must be initialised, ties kept, RoPE buffers recomputed.
    Loading a normally-built model's weights into it must give exactly that model's logits."""
    cfg = FAMILY_CONFIGS[family]()
    torch.manual_seed(0)
    ref = AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa").eval()
    model = build_random_model(cfg, "cpu", torch.float32, seed=1)
    for (n, b), (_, rb) in zip(model.named_buffers(), ref.named_buffers()):
        torch.testing.assert_close(b, rb, msg=f"buffer {n}")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    if cfg.tie_word_embeddings:
        assert model.lm_head.weight is model.model.embed_tokens.weight
    ids = torch.randint(0, cfg.vocab_size, (1, 12))
    with torch.no_grad():
        assert torch.isfinite(model(ids).logits).all()
        model.load_state_dict(ref.state_dict())
        torch.testing.assert_close(model(ids).logits, ref(ids).logits)


def test_random_model_in_bf16_from_name():
    model = build_random_model("tiny-llama", "cpu", torch.bfloat16, seed=0)
    assert model.dtype == torch.bfloat16 and model.model.rotary_emb.inv_freq.dtype == torch.float32
    assert model.lawcat_source == "random:tiny-llama"
    w = model.model.layers[0].mlp.up_proj.weight.float()
    assert 0.015 < w.std().item() < 0.025  # normal(0, 0.02)
    a = build_random_model("tiny-llama", "cpu", torch.bfloat16, seed=0)
    torch.testing.assert_close(a.model.layers[1].self_attn.q_proj.weight, model.model.layers[1].self_attn.q_proj.weight)
