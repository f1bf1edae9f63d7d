"""Normalized GLA ops against an independent float64 recurrence written here, forward and backward."""
import pytest
import torch

from lawcat.ops.gla import gla_augmented, normalized_gla
from lawcat.ops.gla_reference import augment_ones, gla_chunked, gla_recurrent


def naive_normalized(q, k, v, g, scale, S0=None, z0=None, eps=1e-6):
    """Eq. 8 element by element: S_t = diag(a_t) S_{t-1} + k_t^T v_t; z_t = a_t * z_{t-1} + k_t;
    o = qS / (q.z + eps)."""
    B, T, H, K = q.shape
    V = v.shape[-1]
    S = torch.zeros(B, H, K, V, dtype=torch.float64) if S0 is None else S0.clone()
    z = torch.zeros(B, H, K, dtype=torch.float64) if z0 is None else z0.clone()
    out = torch.empty(B, T, H, V, dtype=torch.float64)
    for t in range(T):
        a = g[:, t].exp()
        S = a[..., None] * S + k[:, t][..., None] * v[:, t][..., None, :]
        z = a * z + k[:, t]
        num = (q[:, t][..., None] * S).sum(-2) * scale
        den = (q[:, t] * z).sum(-1, keepdim=True) * scale
        out[:, t] = num / (den + eps)
    return out, S, z


def rand_inputs(B, T, H, K, V, dtype=torch.float64, gate_scale=1.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.rand(B, T, H, K, generator=gen, dtype=dtype)      # positive, like feature-map outputs
    k = torch.rand(B, T, H, K, generator=gen, dtype=dtype)
    v = torch.randn(B, T, H, V, generator=gen, dtype=dtype)
    g = torch.nn.functional.logsigmoid(torch.randn(B, T, H, K, generator=gen, dtype=dtype) * 3) / 16 * gate_scale
    return q, k, v, g


@pytest.mark.parametrize("B,T,H,K,V,chunk", [(1, 1, 1, 4, 3, 4), (2, 37, 3, 8, 5, 8), (1, 64, 2, 16, 16, 16),
                                              (2, 130, 4, 8, 6, 64), (1, 9, 2, 4, 4, 64)])
def test_forward_matches_naive(B, T, H, K, V, chunk):
    q, k, v, g = rand_inputs(B, T, H, K, V)
    ref, S, z = naive_normalized(q, k, v, g, 0.5)
    out, state = normalized_gla(q, k, v, g, scale=0.5, backend="reference", chunk_size=chunk)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(state[..., :-1], S, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(state[..., -1], z, rtol=1e-10, atol=1e-10)


def test_chunked_recurrent_stepwise_agree():
    q, k, v, g = rand_inputs(2, 45, 3, 8, 7, dtype=torch.float32, seed=1)
    va = augment_ones(v)
    o_chunk, s_chunk = gla_chunked(q, k, va, g, 1.0, chunk_size=16)
    o_rec, s_rec = gla_recurrent(q, k, va, g, 1.0)
    state, steps = None, []
    for t in range(q.shape[1]):
        o, state = gla_augmented(q[:, t:t + 1], k[:, t:t + 1], va[:, t:t + 1], g[:, t:t + 1], 1.0, state)
        steps.append(o)
    torch.testing.assert_close(o_chunk, o_rec, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat(steps, 1), o_rec, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(s_chunk, s_rec, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state, s_rec, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("split", [1, 17, 32, 44])
def test_state_carried_across_calls(split):
    q, k, v, g = rand_inputs(1, 45, 2, 8, 4, seed=2)
    full, s_full = normalized_gla(q, k, v, g, backend="reference", chunk_size=16)
    a, s_a = normalized_gla(q[:, :split], k[:, :split], v[:, :split], g[:, :split], backend="reference", chunk_size=16)
    b, s_b = normalized_gla(q[:, split:], k[:, split:], v[:, split:], g[:, split:], initial_state=s_a,
                            backend="reference", chunk_size=16)
    torch.testing.assert_close(torch.cat([a, b], 1), full, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(s_b, s_full, rtol=1e-10, atol=1e-10)


def test_initial_state_matches_naive():
    q, k, v, g = rand_inputs(2, 20, 2, 4, 3, seed=3)
    S0 = torch.rand(2, 2, 4, 3, dtype=torch.float64)
    z0 = torch.rand(2, 2, 4, dtype=torch.float64)
    ref, _, _ = naive_normalized(q, k, v, g, 1.0, S0, z0)
    out, _ = normalized_gla(q, k, v, g, initial_state=torch.cat([S0, z0[..., None]], -1), backend="reference",
                            chunk_size=8)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend,chunk", [("reference", 8), ("reference", 64), ("recurrent", 64)])
def test_gradients_match_naive(backend, chunk):
    q, k, v, g = rand_inputs(2, 23, 2, 4, 3, seed=4)
    S0 = torch.rand(2, 2, 4, 4, dtype=torch.float64)
    leaves = [t.clone().requires_grad_() for t in (q, k, v, g, S0)]
    w = torch.randn(2, 23, 2, 3, dtype=torch.float64)
    out, state = normalized_gla(*leaves[:4], initial_state=leaves[4], backend=backend, chunk_size=chunk)
    ((out * w).sum() + state.sum()).backward()
    got = [t.grad for t in leaves]
    ref_leaves = [t.clone().requires_grad_() for t in (q, k, v, g, S0)]
    S0r = ref_leaves[4]
    ref, S, z = naive_normalized(*ref_leaves[:4], 1.0, S0r[..., :-1], S0r[..., -1])
    ((ref * w).sum() + S.sum() + z.sum()).backward()
    for a, b in zip(got, (t.grad for t in ref_leaves)):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


def test_gradcheck_chunked():
    q, k, v, g = rand_inputs(1, 11, 1, 3, 2, seed=5)
    inputs = [t.clone().requires_grad_() for t in (q, k, v, g)]
    assert torch.autograd.gradcheck(lambda *a: normalized_gla(*a, backend="reference", chunk_size=4)[0], inputs)


def test_strong_gates_stay_finite():
    """logsigmoid(-20)/16 per step is ~-1.25; over a 64-token chunk exp(+80) would overflow a naive form."""
    q, k, v, _ = rand_inputs(1, 200, 2, 8, 4, dtype=torch.float32, seed=6)
    g = torch.full_like(q, -1.25)
    g[:, ::7] = 0.0
    out, state = normalized_gla(q, k, v, g, backend="reference", chunk_size=64)
    ref, _ = normalized_gla(q.double(), k.double(), v.double(), g.double(), backend="recurrent")
    assert torch.isfinite(out).all() and torch.isfinite(state).all()
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-4)


def test_unnormalized_is_numerator_only():
    q, k, v, g = rand_inputs(1, 10, 1, 4, 3, seed=7)
    out, _ = normalized_gla(q, k, v, g, normalize=False, backend="reference")
    aug, _ = gla_recurrent(q, k, augment_ones(v), g, 1.0)
    torch.testing.assert_close(out, aug[..., :-1])


def test_bad_backend_and_state_shape():
    q, k, v, g = rand_inputs(1, 4, 1, 4, 3)
    with pytest.raises(ValueError, match="unknown GLA backend"):
        normalized_gla(q, k, v, g, backend="magic")
    with pytest.raises(ValueError, match="initial_state has shape"):
        normalized_gla(q, k, v, g, initial_state=torch.zeros(1, 1, 4, 3), backend="reference")


@pytest.mark.parametrize("g_value", [-0.5, -15.0])
def test_factored_and_pairwise_paths_agree_with_recurrence(g_value):
    """-0.5/step stays in the float64-factored range; -15/step (960 nats per 64-chunk) takes the pairwise path."""
    q, k, v, g = rand_inputs(1, 150, 2, 8, 4, seed=8)
    g = torch.full_like(g, g_value)
    g[:, ::5] = 0.0
    qs, ks, vs, gs = (t.clone().requires_grad_() for t in (q, k, v, g))
    out, state = normalized_gla(qs, ks, vs, gs, backend="reference", chunk_size=64)
    out.sum().backward()
    qr, kr, vr, gr = (t.clone().requires_grad_() for t in (q, k, v, g))
    ref, ref_state = normalized_gla(qr, kr, vr, gr, backend="recurrent")
    ref.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(qs.grad).all() and torch.isfinite(gs.grad).all()
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(state, ref_state, rtol=1e-9, atol=1e-9)
    for a, b in ((qs, qr), (ks, kr), (vs, vr), (gs, gr)):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("backend", ["fla", "triton"])
def test_gpu_backends_serve_cpu_tensors_through_the_reference(backend, monkeypatch):
    """A student trained with a GPU backend keeps it in its config; on CPU its calls take the reference ops."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    torch.manual_seed(0)
    q, k = torch.rand(1, 9, 2, 4), torch.rand(1, 9, 2, 4)
    v, g = torch.randn(1, 9, 2, 3), -torch.rand(1, 9, 2, 4)
    ref, ref_state = normalized_gla(q, k, v, g, backend="reference")
    out, state = normalized_gla(q, k, v, g, backend=backend)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(state, ref_state)
