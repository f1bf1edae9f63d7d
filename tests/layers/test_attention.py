"""LawcatAttention against attention written out independently from the teacher's weights."""
import importlib.util
import os

import pytest
import torch

from lawcat import LawcatConfig, linearize
from lawcat.layers import attention as attention_module
from lawcat.layers.rope import apply_rope
from tests.conftest import make_teacher

# Llama 3's frequency-dependent RoPE scaling, with an original context short enough that tiny tests reach it.
LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 64}


def hand_rope(x, positions, inv_freq):
    """x [..., T, H, D] rotated as RoPE defines it: the channel pair (i, i + D/2) turns by positions * inv_freq[i].

    Written out pair by pair, independently of lawcat's and transformers' rotate_half."""
    half = x.shape[-1] // 2
    angle = positions.float()[..., None] * inv_freq.float()          # [..., T, D/2]
    c, s = angle.cos().unsqueeze(-2), angle.sin().unsqueeze(-2)     # over the heads
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * c - b * s, b * c + a * s], dim=-1)


def independent_features(x, W):
    p = torch.einsum("thd,hdf->thf", x, W)
    return torch.cat([torch.softmax(p, -1), torch.softmax(-p, -1)], -1)


def naive_layer(attn, x, cfg, use_gate=True, positions=None, inv_freq=None):
    """Quadratic-time LAWCAT (or hybrid) attention for one sequence x [T, hidden], before o_proj.

    With cfg.use_rope, q and k are rotated at `positions` [T] with the teacher's `inv_freq`, before the conv."""
    T = x.shape[0]
    H, Hkv, D = attn.num_heads, attn.num_kv_heads, attn.head_dim
    q = (x @ attn.q_proj.weight.T + (attn.q_proj.bias if attn.q_proj.bias is not None else 0)).view(T, H, D)
    k = (x @ attn.k_proj.weight.T + (attn.k_proj.bias if attn.k_proj.bias is not None else 0)).view(T, Hkv, D)
    v = (x @ attn.v_proj.weight.T + (attn.v_proj.bias if attn.v_proj.bias is not None else 0)).view(T, Hkv, D)
    if attn.q_norm is not None:
        q, k = attn.q_norm(q), attn.k_norm(k)
    if cfg.use_rope:
        q, k = hand_rope(q, positions, inv_freq), hand_rope(k, positions, inv_freq)
    if cfg.use_conv:
        def conv(z, w):  # z [T, C], w [C, W]: y_t = sum_d w[:, W-1-d] z_{t-d}
            W = w.shape[1]
            return torch.stack([sum(w[:, W - 1 - d] * z[t - d] for d in range(W) if t - d >= 0) for t in range(T)])
        wq = attn.conv_qk.view(Hkv, D, -1).repeat_interleave(H // Hkv, 0).reshape(H * D, -1) if cfg.shared_conv \
            else attn.conv_q
        wk = attn.conv_qk if cfg.shared_conv else attn.conv_k
        q, k = conv(q.reshape(T, -1), wq).view(T, H, D), conv(k.reshape(T, -1), wk).view(T, Hkv, D)
    rep = H // Hkv
    k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
    fq = independent_features(q, attn.feature_map.weight)
    fk = independent_features(k, (attn.feature_map if cfg.shared_feature_map else attn.feature_map_k).weight)
    if use_gate and cfg.use_gate:
        g = torch.nn.functional.logsigmoid(attn.gate.up(attn.gate.down(x))) / cfg.gate_logit_normalizer
        G = g.view(T, H, -1).cumsum(0)
    else:
        G = torch.zeros(T, H, fq.shape[-1])
    out = torch.zeros(T, H, D)
    w = cfg.window_size
    f = torch.sigmoid(attn.window_factor) if w else None
    for t in range(T):
        lin = torch.stack([(fq[t] * fk[s] * (G[t] - G[s]).exp()).sum(-1) for s in range(t + 1)])  # [t+1, H]
        if w:
            scores = torch.stack([(q[t] * k[s]).sum(-1) / D ** 0.5 for s in range(t + 1)])
            inwin = torch.tensor([t - s < w for s in range(t + 1)])
            m = scores[inwin].amax(0)
            weights = torch.where(inwin[:, None], f * (scores - m).exp(), (1 - f) * lin)
        else:
            weights = lin
        num = (weights[..., None] * v[: t + 1]).sum(0)
        out[t] = num / (weights.sum(0)[:, None] + cfg.eps) if cfg.normalize else num
    return out.reshape(T, H * D)


PRESETS = ["lawcat", "lawcat-no-conv", "lawcat-no-norm", "lawcat-shared-conv-separate-maps", "lolcats",
           "lawcat-swa64", "lawcat-rope"]


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("family", ["llama", "qwen2", "qwen3"])
def test_layer_matches_independent_attention(family, preset):
    torch.manual_seed(1)
    cfg = LawcatConfig.from_preset(preset, chunk_size=8, window_size=5 if "swa" in preset or preset == "lolcats" else 0)
    teacher = make_teacher(family, **({"rope_scaling": LLAMA3_SCALING} if family == "llama" else {}))
    student = linearize(teacher, cfg)
    attn = student.model.layers[1].self_attn
    with torch.no_grad():  # non-trivial conv taps and maps, so the test sees them
        for name, p in attn.named_parameters():
            if name.startswith(("conv", "feature_map")):
                p.add_(torch.randn_like(p) * 0.3)
    x = torch.randn(2, 19, student.config.model_hidden_size)
    positions = torch.arange(19) + torch.tensor([[40], [3]])  # rows at different absolute offsets
    inv_freq = teacher.model.rotary_emb.inv_freq
    with torch.no_grad():
        got, _ = attn.linear_attention(x, position_embeddings=student.model.rotary_emb(x, positions))
        for b in range(2):
            want = naive_layer(attn, x[b], student.config, positions=positions[b], inv_freq=inv_freq)
            torch.testing.assert_close(got[b], want, rtol=1e-4, atol=1e-5)


def test_presets_rope():
    """LoLCATs keeps the teacher's RoPE (issue 18); LAWCAT drops it; the ablations switch one thing each."""
    use_rope = {name: LawcatConfig.from_preset(name).use_rope for name in ("lolcats", "lawcat-rope", "lawcat",
                                                                           "lawcat-swa64")}
    assert use_rope == {"lolcats": True, "lawcat-rope": True, "lawcat": False, "lawcat-swa64": False}


@pytest.mark.parametrize("preset", ["lolcats", "lawcat-rope"])
@pytest.mark.parametrize("family", ["llama", "qwen3"])
def test_q_and_k_reach_the_feature_map_rotated_like_the_teachers(family, preset, monkeypatch):
    """The q and k the feature map receives, in a later chunk of a left-padded batch, are the teacher's projections
    rotated by the teacher's RoPE (Llama 3 scaling for llama; after Qwen3's q/k norm) at their absolute positions:
    counted over real tokens, continuing from the chunks before."""
    teacher = make_teacher(family, **({"rope_scaling": LLAMA3_SCALING} if family == "llama" else {}))
    # the conv at exact identity, so lawcat-rope's map sees the rotated projections themselves
    student = linearize(teacher, LawcatConfig.from_preset(preset, window_size=4, conv_init_other=0.0)).eval()
    assert student.model.rotary_emb is teacher.model.rotary_emb
    inv_freq = teacher.model.rotary_emb.inv_freq
    if family == "llama":  # the scaled frequencies, not the plain ones, are the ones in play
        D = student.config.attn_head_dim
        assert not torch.allclose(inv_freq, 1.0 / 10000.0 ** (torch.arange(0, D, 2).float() / D))
    ids = torch.randint(1, 97, (2, 90))
    mask = torch.ones(2, 90, dtype=torch.long)
    mask[1, :7] = 0
    with torch.no_grad():
        _, cache = student.prefill(ids[:, :80], attention_mask=mask[:, :80], chunk_size=30)
        seen = []
        original = attention_module.hedgehog
        monkeypatch.setattr(attention_module, "hedgehog", lambda x, w: (seen.append(x), original(x, w))[1])
        student(ids[:, 80:], attention_mask=mask, past_key_values=cache, use_cache=True)
    q_seen, k_seen = seen[0], seen[1]  # layer 0: the map on q, then on k
    tl = teacher.model.layers[0]
    with torch.no_grad():
        x = tl.input_layernorm(teacher.model.embed_tokens(ids[:, 80:]))
        B, T, H, D = 2, 10, student.config.attn_heads, student.config.attn_head_dim
        q = tl.self_attn.q_proj(x).view(B, T, H, D)
        k = tl.self_attn.k_proj(x).view(B, T, -1, D)
        if hasattr(tl.self_attn, "q_norm"):
            q, k = tl.self_attn.q_norm(q), tl.self_attn.k_norm(k)
    positions = torch.arange(10) + torch.tensor([[80], [73]])  # row 1 had 7 pads before
    torch.testing.assert_close(q_seen, hand_rope(q, positions, inv_freq), rtol=1e-5, atol=1e-5)
    want_k = hand_rope(k, positions, inv_freq).repeat_interleave(H // k.shape[2], dim=2)
    torch.testing.assert_close(k_seen, want_k, rtol=1e-5, atol=1e-5)
    assert cache.positions.tolist() == [90, 83]


def test_rope_needs_positions():
    student = linearize(make_teacher("llama"), LawcatConfig.from_preset("lolcats"))
    with pytest.raises(ValueError, match="position_embeddings"):
        student.model.layers[0].self_attn(torch.randn(1, 5, student.config.model_hidden_size))


def test_partial_rotary_rotates_the_leading_channels_only():
    """cos/sin narrower than the head (partial rotary) turn the first channels and pass the rest through."""
    q, k = torch.randn(2, 6, 4, 16), torch.randn(2, 6, 2, 16)
    inv_freq = 1.0 / 100.0 ** (torch.arange(0, 8, 2).float() / 8)
    positions = torch.arange(6).expand(2, 6) + 5
    angle = torch.cat([positions[..., None] * inv_freq] * 2, -1)
    rq, rk = apply_rope(q, k, angle.cos(), angle.sin())
    torch.testing.assert_close(rq[..., :8], hand_rope(q[..., :8], positions, inv_freq))
    torch.testing.assert_close(rk[..., :8], hand_rope(k[..., :8], positions, inv_freq))
    assert torch.equal(rq[..., 8:], q[..., 8:]) and torch.equal(rk[..., 8:], k[..., 8:])


INTERPRET = importlib.util.find_spec("triton") is not None and os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@pytest.mark.skipif(not INTERPRET, reason="needs triton and TRITON_INTERPRET=1 (set by tests/conftest.py on CPU)")
def test_fused_conv_map_kernel_takes_the_rotated_q_and_k(monkeypatch):
    """gla_backend="triton" at inference sends lawcat-rope through the fused conv + map kernel too: a chunked,
    left-padded prefill and decoding steps give the logits of the PyTorch ops (LAWCAT_FUSED_FRONT=0)."""
    ids = torch.randint(0, 97, (2, 40))
    mask = torch.ones(2, 40, dtype=torch.long)
    mask[1, :9] = 0
    outs, calls = {}, []
    from lawcat.ops import triton_front

    original = triton_front.conv_feature_map
    monkeypatch.setattr(triton_front, "conv_feature_map", lambda *a, **kw: (calls.append(1), original(*a, **kw))[1])
    for fused in ("1", "0"):
        monkeypatch.setenv("LAWCAT_FUSED_FRONT", fused)
        torch.manual_seed(0)
        student = linearize(make_teacher("llama"), LawcatConfig.from_preset("lawcat-rope", gla_backend="triton"))
        with torch.no_grad():
            logits, cache = student.eval().prefill(ids[:, :35], attention_mask=mask[:, :35], chunk_size=16)
            steps = [student(ids[:, t:t + 1], attention_mask=mask[:, :t + 1], past_key_values=cache,
                             use_cache=True).logits for t in range(35, 38)]
        outs[fused] = (logits, torch.cat(steps, 1))
        if fused == "1":
            assert calls, "the fused kernel was not used"
    torch.testing.assert_close(outs["1"][0], outs["0"][0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(outs["1"][1], outs["0"][1], rtol=1e-4, atol=1e-4)


def test_fresh_model_is_plain_normalized_linear_attention():
    """Conv at identity and gate forced open: the layer is exactly normalized linear attention with phi."""
    student = linearize(make_teacher("llama"), LawcatConfig(conv_init_other=0.0))
    attn = student.model.layers[0].self_attn
    with torch.no_grad():
        attn.gate.up.weight.zero_()
        attn.gate.up.bias.fill_(60.0)          # logsigmoid(60)/16 ~ -5e-28: no decay
    x = torch.randn(1, 23, student.config.model_hidden_size)
    with torch.no_grad():
        got, _ = attn.linear_attention(x)
        T, H, D = 23, attn.num_heads, attn.head_dim
        q = (x[0] @ attn.q_proj.weight.T).view(T, H, D)
        k = (x[0] @ attn.k_proj.weight.T).view(T, -1, D).repeat_interleave(H // attn.num_kv_heads, 1)
        v = (x[0] @ attn.v_proj.weight.T).view(T, -1, D).repeat_interleave(H // attn.num_kv_heads, 1)
        fq, fk = independent_features(q, attn.feature_map.weight), independent_features(k, attn.feature_map.weight)
        A = torch.einsum("thf,shf->hts", fq, fk).tril()
        ref = torch.einsum("hts,shd->thd", A / A.sum(-1, keepdim=True), v).reshape(T, -1)
    torch.testing.assert_close(got[0], ref, rtol=1e-4, atol=1e-5)


def test_softmax_attention_is_the_teachers():
    teacher = make_teacher("qwen3")
    student = linearize(teacher, LawcatConfig())
    x = torch.randn(1, 12, student.config.model_hidden_size)
    pos = torch.arange(12)[None]
    with torch.no_grad():
        cos_sin = student.model.rotary_emb(x, pos)
        ours = student.model.layers[0].self_attn.o_proj(student.model.layers[0].self_attn.softmax_attention(x, cos_sin))
        theirs, _ = teacher.model.layers[0].self_attn(x, position_embeddings=cos_sin, attention_mask=None)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_new_parameters_are_only_lawcats():
    student = linearize(make_teacher("llama"), LawcatConfig(gate_rank=8))
    attn = student.model.layers[0].self_attn
    names = {n for n, p in attn.named_parameters() if any(p is q for q in attn.new_parameters())}
    assert names == {"conv_q", "conv_k", "feature_map.weight", "gate.down.weight", "gate.up.weight", "gate.up.bias"}
    assert attn.gate.down.weight.shape == (8, student.config.model_hidden_size)
