"""LawcatAttention against attention written out independently from the teacher's weights."""
import pytest
import torch

from lawcat import LawcatConfig, linearize
from tests.conftest import make_teacher


def independent_features(x, W):
    p = torch.einsum("thd,hdf->thf", x, W)
    return torch.cat([torch.softmax(p, -1), torch.softmax(-p, -1)], -1)


def naive_layer(attn, x, cfg, use_gate=True):
    """Quadratic-time LAWCAT (or hybrid) attention for one sequence x [T, hidden], before o_proj."""
    T = x.shape[0]
    H, Hkv, D = attn.num_heads, attn.num_kv_heads, attn.head_dim
    q = (x @ attn.q_proj.weight.T + (attn.q_proj.bias if attn.q_proj.bias is not None else 0)).view(T, H, D)
    k = (x @ attn.k_proj.weight.T + (attn.k_proj.bias if attn.k_proj.bias is not None else 0)).view(T, Hkv, D)
    v = (x @ attn.v_proj.weight.T + (attn.v_proj.bias if attn.v_proj.bias is not None else 0)).view(T, Hkv, D)
    if attn.q_norm is not None:
        q, k = attn.q_norm(q), attn.k_norm(k)
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
           "lawcat-swa64"]


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("family", ["llama", "qwen2", "qwen3"])
def test_layer_matches_independent_attention(family, preset):
    torch.manual_seed(1)
    cfg = LawcatConfig.from_preset(preset, chunk_size=8, window_size=5 if "swa" in preset or preset == "lolcats" else 0)
    student = linearize(make_teacher(family), cfg)
    attn = student.model.layers[1].self_attn
    with torch.no_grad():  # non-trivial conv taps and maps, so the test sees them
        for name, p in attn.named_parameters():
            if name.startswith(("conv", "feature_map")):
                p.add_(torch.randn_like(p) * 0.3)
    x = torch.randn(2, 19, student.config.model_hidden_size)
    with torch.no_grad():
        got, _ = attn.linear_attention(x)
        for b in range(2):
            torch.testing.assert_close(got[b], naive_layer(attn, x[b], student.config), rtol=1e-4, atol=1e-5)


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
