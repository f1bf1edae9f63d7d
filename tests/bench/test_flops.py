"""The analytic FLOP counter against hand computations."""
import pytest
from transformers import LlamaConfig

from lawcat import LawcatConfig
from lawcat.bench.flops import ModelShape, decode_flops, matmul_flops_per_token, prefill_flops
from lawcat.models.architectures import arch_config, count_parameters

# hidden 8, MLP 16, 2 layers, 2 query heads / 1 KV head of dim 4, vocab 10.
TINY = LlamaConfig(vocab_size=10, hidden_size=8, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
                   num_key_value_heads=1, head_dim=4)


def test_per_token_terms_by_hand():
    f = matmul_flops_per_token(ModelShape.from_config(TINY))
    # q: 2*8*(2*4) = 128 per layer; k, v: 2*8*4 = 64; o: 128; MLP: 3 matrices * 2*8*16 = 768; x2 layers.
    assert f == {"q_proj": 256, "k_proj": 128, "v_proj": 128, "o_proj": 256, "mlp": 1536, "lm_head": 160}


def test_teacher_prefill_by_hand():
    f = prefill_flops(TINY, 3, "teacher")
    # dense: 2304 per token * 3 tokens = 6912; lm_head once (last position): 2*8*10 = 160;
    # causal attention: 2 layers * (QK^T + PV: 2 * 2 FLOPs) * 2 heads * dim 4 * 6 pairs (3*4/2) = 384.
    assert f["attention"] == 384
    assert f["lm_head"] == 160
    assert f["total"] == 6912 + 160 + 384 == 7456


def test_student_prefill_by_hand():
    f = prefill_flops(TINY, 3, "student", LawcatConfig(gate_rank=32))
    # per layer and token: gate 2*8*32 + 2*32*(2 heads*4) = 1024; Hedgehog on q and k: 2 * 2*2*4*2 = 64;
    # state update + readout: 2 * 2*2*4*(4+1) = 160. x 2 layers x 3 tokens.
    assert (f["gate"], f["feature_map"], f["linear_attention"]) == (6144, 384, 960)
    assert "attention" not in f
    assert f["total"] == 6912 + 160 + 6144 + 384 + 960 == 14560
    no_gate = prefill_flops(TINY, 3, "student", LawcatConfig(use_gate=False))
    assert no_gate["gate"] == 0


def test_attention_is_quadratic_and_batch_scales():
    a1, a2 = (prefill_flops(TINY, T, "teacher")["attention"] for T in (1000, 2000))
    assert a2 / a1 == pytest.approx(4.0, rel=1e-3)
    assert prefill_flops(TINY, 5, "teacher", batch=3)["total"] == 3 * prefill_flops(TINY, 5, "teacher")["total"]
    assert decode_flops(TINY, 5, "teacher")["attention"] == 2 * 4 * 2 * 4 * 6
    assert decode_flops(TINY, 5, "student")["linear_attention"] == 2 * 160  # 2 layers
    with pytest.raises(ValueError):
        prefill_flops(TINY, 3, "nobody")


def test_llama_3_2_1b_dense_flops_are_twice_the_matrix_parameters():
    """Independent check: per-token dense FLOPs = 2 x (parameters - embeddings - norm weights) (~2 GFLOP)."""
    cfg = arch_config("llama-3.2-1b")
    f = matmul_flops_per_token(ModelShape.from_config(cfg))
    dense = sum(v for k, v in f.items() if k != "lm_head")
    norms = cfg.hidden_size * (2 * cfg.num_hidden_layers + 1)
    assert dense == 2 * (count_parameters(cfg) - cfg.vocab_size * cfg.hidden_size - norms)
    assert 1.9e9 < dense < 2.0e9


def test_shape_from_student_config_equals_teacher():
    cfg = LawcatConfig(teacher_config=TINY.to_dict())
    assert ModelShape.from_config(cfg) == ModelShape.from_config(TINY) == ModelShape(2, 8, 16, 2, 1, 4, 10)
