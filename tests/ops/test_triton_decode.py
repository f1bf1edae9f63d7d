"""lawcat.ops.triton_decode.decode_step against lawcat_attention on one token, and inside a whole student.

CPU: the kernel runs under the Triton interpreter (tests/conftest.py sets TRITON_INTERPRET=1); GPU: the
cuda-marked test.
"""
from __future__ import annotations

import importlib.util
import os

import pytest
import torch
from torch.nn import functional as F

from lawcat import LawcatConfig
from lawcat.layers.attention import LayerWeights, lawcat_attention
from lawcat.ops.triton_decode import decode_step

HAS_TRITON = importlib.util.find_spec("triton") is not None
INTERPRET = HAS_TRITON and os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
needs_interpreter = pytest.mark.skipif(not INTERPRET, reason="needs triton and TRITON_INTERPRET=1 in the environment")
needs_cuda = pytest.mark.skipif(not (HAS_TRITON and torch.cuda.is_available()), reason="needs a CUDA device")


def _case(B, H, HKV, D, V, W, gate, device="cpu", dtype=torch.float32, seed=0, shared_map=True):
    gen = torch.Generator().manual_seed(seed)
    r = lambda *s, scale=1.0: (torch.randn(*s, generator=gen) * scale).to(device)  # noqa: E731
    t = dict(q=r(B, H, D).to(dtype), k=r(B, HKV, D).to(dtype), v=r(B, HKV, V).to(dtype),
             gate_logits=r(B, H, D, scale=3.0) if gate else None,
             conv_q_state=r(B, W - 1, H * D).to(dtype), conv_k_state=r(B, W - 1, HKV * D).to(dtype),
             conv_q=r(H * D, W, scale=0.5), conv_k=r(HKV * D, W, scale=0.5), map_q=r(H, D, D // 2, scale=0.3),
             state=torch.rand(B, H, D, V + 1, generator=gen).to(device))
    t["map_k"] = t["map_q"] if shared_map else r(H, D, D // 2, scale=0.3)
    return t


def _reference(t, normalize=True, normalizer=16.0, eps=1e-6, mask=None):
    """lawcat_attention (the PyTorch ops) on the same token and states; returns (out, its new states)."""
    H, HKV = t["q"].shape[1], t["k"].shape[1]
    cfg = LawcatConfig(normalize=normalize, eps=eps, gla_backend="reference")
    w = LayerWeights(H, HKV, t["conv_q"], t["conv_k"], t["map_q"], t["map_k"], None)
    g = None if t["gate_logits"] is None else (F.logsigmoid(t["gate_logits"].float()) / normalizer)[:, None]
    state = {"conv_q": t["conv_q_state"].clone(), "conv_k": t["conv_k_state"].clone(), "gla": t["state"].clone()}
    m = None if mask is None else mask[:, None]
    out, new = lawcat_attention(cfg, w, t["q"][:, None], t["k"][:, None], t["v"][:, None], g, m, state)
    return out[:, 0], new


CASES = [
    # B, H, HKV, D,  V,  W, gate
    (1, 2, 2, 16, 16, 4, True),
    (2, 6, 2, 32, 32, 4, True),      # GQA: three query heads per key
    (1, 3, 1, 64, 64, 4, False),     # no gate: the state never decays
    (2, 2, 1, 24, 40, 3, True),      # dims that are not powers of two, V != D
    (1, 2, 2, 16, 16, 2, True),      # one carried row
]


@needs_interpreter
@pytest.mark.parametrize("B,H,HKV,D,V,W,gate", CASES)
def test_interpreter_equals_lawcat_attention(B, H, HKV, D, V, W, gate):
    for normalize in (True, False):
        t = _case(B, H, HKV, D, V, W, gate, seed=D + W)
        want, new = _reference(t, normalize)
        got = decode_step(**t, normalize=normalize)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(t["state"], new["gla"], rtol=1e-5, atol=1e-6)   # advanced in place
        torch.testing.assert_close(t["conv_q_state"], new["conv_q"], rtol=0, atol=0)
        torch.testing.assert_close(t["conv_k_state"], new["conv_k"], rtol=0, atol=0)


@needs_interpreter
@pytest.mark.parametrize("HKV", [1, 3])
def test_interpreter_a_padded_row_is_what_lawcat_attention_makes_of_it(HKV):
    """mask [B]: a padded row neither feeds nor decays the state and shifts a zero row into the conv's; the other
    rows are untouched by it."""
    t = _case(3, 3, HKV, 16, 16, 4, True, seed=11)
    mask = torch.tensor([1.0, 0.0, 1.0])
    want, new = _reference(t, mask=mask)
    got = decode_step(**t, mask=mask)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for name, ref in (("state", "gla"), ("conv_q_state", "conv_q"), ("conv_k_state", "conv_k")):
        torch.testing.assert_close(t[name], new[ref], rtol=1e-5, atol=1e-6)
    assert not t["conv_k_state"][1, -1].any()  # the padded token's key row is zero


@needs_interpreter
def test_interpreter_separate_maps_and_several_steps():
    """Separate q and k maps; three tokens in a row, each step fed the states the last one left."""
    t = _case(2, 4, 2, 16, 16, 4, True, seed=5, shared_map=False)
    ref_states = {"conv_q": t["conv_q_state"].clone(), "conv_k": t["conv_k_state"].clone(), "gla": t["state"].clone()}
    gen = torch.Generator().manual_seed(9)
    for _ in range(3):
        for name in ("q", "k", "v", "gate_logits"):
            t[name] = torch.randn(t[name].shape, generator=gen)
        r = dict(t, conv_q_state=ref_states["conv_q"], conv_k_state=ref_states["conv_k"], state=ref_states["gla"])
        want, ref_states = _reference(r)
        got = decode_step(**t)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(t["state"], ref_states["gla"], rtol=1e-5, atol=1e-6)


@needs_interpreter
@pytest.mark.parametrize("preset", ["lawcat", "lawcat-rope", "lawcat-shared-conv-separate-maps"])
def test_interpreter_student_decodes_the_same_through_the_kernel(monkeypatch, preset):
    """gla_backend="triton" at inference decodes through decode_step (counted): the logits of the steps after a
    padded prefill (one of them padded too), and the states they leave, equal those with LAWCAT_FUSED_DECODE=0
    (the PyTorch ops)."""
    from lawcat import linearize
    from lawcat.ops import triton_decode
    from tests.conftest import make_teacher

    calls = []
    real = triton_decode.decode_step
    monkeypatch.setattr(triton_decode, "decode_step", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    ids = torch.randint(0, 97, (2, 40))
    mask = torch.ones(2, 36, dtype=torch.long)
    mask[1, :5] = 0  # left padding in the prompt; the decoded tokens are all real
    outs = {}
    for fused in ("1", "0"):
        monkeypatch.setenv("LAWCAT_FUSED_DECODE", fused)
        torch.manual_seed(0)
        student = linearize(make_teacher("llama"), LawcatConfig.from_preset(preset, gla_backend="triton")).eval()
        for p in student.lawcat_parameters():  # off the identity-like init, so every weight matters
            with torch.no_grad():
                p.add_(0.05 * torch.randn_like(p))
        full = torch.cat([mask, torch.ones(2, 4, dtype=torch.long)], 1)
        full[1, 37] = 0  # one padded decode token (the kernel's mask path)
        with torch.no_grad():
            _, cache = student.prefill(ids[:, :36], attention_mask=mask)
            steps = [student(ids[:, t:t + 1], attention_mask=full[:, :t + 1], past_key_values=cache,
                             use_cache=True).logits for t in range(36, 40)]
        outs[fused] = torch.cat(steps, 1), [dict(layer.state) for layer in cache.layers]
    assert len(calls) == 4 * 2  # four steps, two layers
    torch.testing.assert_close(outs["1"][0], outs["0"][0], rtol=1e-4, atol=1e-4)
    for fused_layer, plain_layer in zip(outs["1"][1], outs["0"][1]):
        for name, t in plain_layer.items():
            torch.testing.assert_close(fused_layer[name], t, rtol=1e-4, atol=1e-5)


def test_rejects_what_does_not_fit():
    t = _case(1, 2, 2, 16, 16, 4, True)
    with pytest.raises(ValueError, match="state must be float32"):
        decode_step(**dict(t, state=t["state"].double()))
    with pytest.raises(ValueError, match="conv states"):
        decode_step(**dict(t, conv_k_state=t["conv_k_state"][:, :2]))
    with pytest.raises(ValueError, match="mask must be"):
        decode_step(**t, mask=torch.ones(2))
    with pytest.raises(ValueError, match="gate_logits"):
        decode_step(**dict(t, gate_logits=t["gate_logits"][:, :1]))
    with pytest.raises(ValueError, match="contiguous"):
        decode_step(**dict(t, state=t["state"].transpose(2, 3).contiguous().transpose(2, 3)))


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_equals_lawcat_attention(dtype):
    t = _case(3, 32, 8, 64, 64, 4, True, device="cuda", dtype=dtype, seed=1)
    want, new = _reference(t)
    got = decode_step(**t)
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(got.float(), want.float(), rtol=tol, atol=tol)
    torch.testing.assert_close(t["state"], new["gla"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(t["conv_k_state"], new["conv_k"], rtol=0, atol=0)


@needs_interpreter
def test_interpreter_compiled_step_keeps_the_kernel():
    """Under torch.compile(fullgraph=True) the kernel is a custom op inside the graph (no break): the compiled
    step calls it, and its logits and the states it leaves equal the eager step's. (~1 min of compilation.)"""
    from lawcat import linearize
    from tests.conftest import make_teacher

    torch.manual_seed(0)
    student = linearize(make_teacher("llama"), LawcatConfig(gla_backend="triton")).eval()
    ids = torch.randint(0, 97, (2, 20))
    with torch.no_grad():
        _, cache = student.prefill(ids[:, :19])
        saved = cache.snapshot()
        eager = student(ids[:, 19:], past_key_values=cache, use_cache=True).logits
        eager_states = [{n: t.clone() for n, t in layer.state.items()} for layer in cache.layers]
        cache.restore(saved)
        graphs = []

        def recording(gm, example_inputs):  # what dynamo hands a backend: the traced step, before any lowering
            graphs.append(str(gm.graph))
            return gm.forward

        def step(x):  # with an all-ones mask, which a compiled step keeps (the kernel takes it)
            return student(x, attention_mask=torch.ones(2, 20, dtype=torch.long), past_key_values=cache,
                           use_cache=True).logits

        torch.compile(step, backend=recording, fullgraph=True, dynamic=False)(ids[:, 19:])
        cache.restore(saved)
        compiled = torch.compile(step, fullgraph=True, dynamic=False)(ids[:, 19:])
    assert len(graphs) == 1 and graphs[0].count("lawcat.decode_step") == len(cache.layers)
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-4)
    for layer, want in zip(cache.layers, eager_states):
        for name, t in want.items():
            torch.testing.assert_close(layer.state[name], t, rtol=1e-4, atol=1e-5)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("backend", ["auto", "triton"])
def test_gpu_student_decodes_the_same_through_the_kernel(monkeypatch, backend):
    """On CUDA the default backend ("auto": fla's prefill) decodes through the kernel too: the logits of steps after
    a prefill equal those with LAWCAT_FUSED_DECODE=0."""
    from lawcat import linearize
    from lawcat.ops import triton_decode
    from tests.conftest import make_teacher

    calls = []
    real = triton_decode.decode_step
    monkeypatch.setattr(triton_decode, "decode_step", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    ids = torch.randint(0, 97, (2, 80), device="cuda")
    outs = {}
    for fused in ("1", "0"):
        monkeypatch.setenv("LAWCAT_FUSED_DECODE", fused)
        torch.manual_seed(0)
        student = linearize(make_teacher("llama"), LawcatConfig(gla_backend=backend)).cuda().eval()
        with torch.no_grad():
            _, cache = student.prefill(ids[:, :76])
            outs[fused] = torch.cat([student(ids[:, t:t + 1], past_key_values=cache, use_cache=True).logits
                                     for t in range(76, 80)], 1)
    assert len(calls) == 4 * 2
    torch.testing.assert_close(outs["1"], outs["0"], rtol=1e-4, atol=1e-4)
