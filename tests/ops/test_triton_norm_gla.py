"""Tests for lawcat.ops.triton_norm_gla against an independent float64 recurrence.

CPU (no GPU): needs triton installed; the kernels run under the Triton interpreter
(TRITON_INTERPRET=1 is set by this module before the first kernel is built), small shapes only.
GPU: the tests marked ``cuda`` run the compiled kernels at larger shapes and in bf16.

    TRITON_INTERPRET=1 python -m pytest tests/ops/test_triton_norm_gla.py -q -s       # CPU, ~30 s
    python -m pytest tests/ops/test_triton_norm_gla.py -q -s -m cuda                   # GPU, ~2 min (compiles)

-s prints the relative errors of every case.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch
import torch.nn.functional as F

HAS_TRITON = importlib.util.find_spec("triton") is not None
HAS_CUDA = torch.cuda.is_available()
# The interpreter must be on before triton is first imported (tests/conftest.py imports it through
# transformers), so it is taken from the environment only: TRITON_INTERPRET=1 python -m pytest ...
INTERPRET = HAS_TRITON and os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")

needs_interpreter = pytest.mark.skipif(
    not INTERPRET,
    reason="CPU kernel tests need triton (pip install triton) and TRITON_INTERPRET=1 set in the environment "
           "before pytest starts; on a GPU run the cuda-marked tests instead",
)
needs_cuda = pytest.mark.skipif(not (HAS_TRITON and HAS_CUDA), reason="needs a CUDA device and triton")


@pytest.fixture(autouse=True)
def _poison_buffers(monkeypatch):
    """Every output and scratch buffer starts as NaN: unwritten elements cannot pass."""
    if HAS_TRITON:
        import lawcat.ops.triton_norm_gla.ops as ops

        monkeypatch.setattr(ops, "POISON", True)
    yield


def _device_for_interpreter():
    return torch.device("cpu")


# ----------------------------------------------------------------------------------------------
# independent reference: plain float64 loop over t
# ----------------------------------------------------------------------------------------------
def naive_normalized_gla(q, k, v, g, scale, initial_state=None, eps=1e-6):
    """o_t = scale q_t S_t / (scale q_t . z_t + eps); S_t = diag(e^{g_t}) S_{t-1} + k_t^T v_t, z likewise."""
    q, k, v, g = (x.double() for x in (q, k, v, g))
    B, T, H, K = q.shape
    V = v.shape[-1]
    if initial_state is None:
        S = torch.zeros(B, H, K, V, dtype=torch.float64, device=q.device)
        z = torch.zeros(B, H, K, dtype=torch.float64, device=q.device)
    else:
        S = initial_state[..., :V].double()
        z = initial_state[..., V].double()
    outs = []
    for t in range(T):
        a = g[:, t].exp()  # [B, H, K]
        S = a[..., None] * S + k[:, t, :, :, None] * v[:, t, :, None, :]
        z = a * z + k[:, t]
        num = scale * torch.einsum("bhk,bhkv->bhv", q[:, t], S)
        den = scale * (q[:, t] * z).sum(-1)
        outs.append(num / (den + eps)[..., None])
    o = torch.stack(outs, dim=1)
    final = torch.cat([S, z[..., None]], dim=-1)
    return o, final


def make_inputs(B, T, H, K, V, dtype, device, x_min=None, seed=0, positive_den=True):
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=gen)

    if positive_den:
        # positive features keep den away from 0 (as LAWCAT's feature maps do)
        q = F.softplus(rnd(B, T, H, K)) * 0.5
        k = F.softplus(rnd(B, T, H, K)) * 0.5
    else:
        q = rnd(B, T, H, K)
        k = rnd(B, T, H, K)
    v = rnd(B, T, H, V)
    x = rnd(B, T, H, K) * 3.0
    if x_min is not None:
        # push a fraction of the gate logits down to x_min (strong decay)
        mask = torch.rand(B, T, H, K, generator=gen) < 0.5
        x = torch.where(mask, torch.full_like(x, x_min), x)
    g = F.logsigmoid(x) / 16.0
    return [t.to(device=device, dtype=dtype) for t in (q, k, v)] + [g.to(device=device, dtype=torch.float32)]


def rel(a, b):
    a = a.double()
    b = b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def run_case(B, T, H, K, V, dtype, device, *, use_h0, final, x_min=None, seed=0, cps=None, tol=1e-4,
             gtol=None, eps=1e-6, chunk=None):
    from lawcat.ops.triton_norm_gla import normalized_gla

    gtol = tol if gtol is None else gtol
    q, k, v, g = make_inputs(B, T, H, K, V, dtype, device, x_min=x_min, seed=seed)
    scale = K ** -0.5
    h0 = None
    if use_h0:
        gen = torch.Generator(device="cpu").manual_seed(seed + 1)
        h0 = torch.randn(B, H, K, V + 1, generator=gen)
        h0[..., V] = h0[..., V].abs() + 1.0  # keep the denominator positive
        h0 = h0.to(device)
    leaves = [t.clone().requires_grad_(True) for t in (q, k, v, g)]
    h0_leaf = h0.clone().requires_grad_(True) if h0 is not None else None
    o, ht = normalized_gla(*leaves, scale=scale, initial_state=h0_leaf, output_final_state=final, eps=eps,
                           chunks_per_segment=cps, chunk=chunk)
    assert o.dtype == v.dtype and o.shape == v.shape
    assert torch.isfinite(o).all()
    if final:
        assert ht is not None and ht.shape == (B, H, K, V + 1) and ht.dtype == torch.float32
    else:
        assert ht is None

    gen = torch.Generator(device="cpu").manual_seed(seed + 2)
    do = torch.randn(B, T, H, V, generator=gen).to(device=device, dtype=dtype)
    dht = torch.randn(B, H, K, V + 1, generator=gen).to(device) if final else None
    loss = (o.float() * do.float()).sum()
    if final:
        loss = loss + (ht * dht).sum()
    loss.backward()
    got = {"o": o.detach(), "dq": leaves[0].grad, "dk": leaves[1].grad, "dv": leaves[2].grad, "dg": leaves[3].grad}
    if final:
        got["ht"] = ht.detach()
    if use_h0:
        got["dh0"] = h0_leaf.grad

    # reference in float64 (on the inputs' device: the GPU runs its T-step loop much faster)
    rl = [t.detach().double().requires_grad_(True) for t in (q, k, v, g)]
    rh0 = h0.detach().double().requires_grad_(True) if use_h0 else None
    ro, rht = naive_normalized_gla(*rl, scale=scale, initial_state=rh0, eps=eps)
    rloss = (ro * do.double()).sum()
    if final:
        rloss = rloss + (rht * dht.double()).sum()
    rloss.backward()
    ref = {"o": ro.detach(), "dq": rl[0].grad, "dk": rl[1].grad, "dv": rl[2].grad, "dg": rl[3].grad}
    if final:
        ref["ht"] = rht.detach()
    if use_h0:
        ref["dh0"] = rh0.grad

    errs = {}
    for name in ref:
        a = got[name]
        assert a is not None, f"{name} missing"
        assert a.dtype == (torch.float32 if name in ("ht", "dh0", "dg") else dtype), (name, a.dtype)
        assert torch.isfinite(a).all(), f"{name} has non-finite values"
        errs[name] = rel(a, ref[name])
    for name, e in errs.items():
        bound = tol if name in ("o", "ht") else gtol
        assert e <= bound, f"{name}: rel err {e:.3e} > {bound:.1e} (all: {errs})"
    return errs


# ----------------------------------------------------------------------------------------------
# interpreter (CPU) tests: small shapes, fp32
# ----------------------------------------------------------------------------------------------
INTERP_CASES = [
    # B, T,   H, K,  V,  use_h0, final, x_min, cps
    (1, 64, 1, 16, 16, False, False, None, None),    # exactly one chunk
    (2, 37, 2, 32, 16, True, True, None, None),      # T < chunk, B > 1
    (1, 200, 2, 64, 64, True, True, -20.0, 1),       # odd T, strong decay, one chunk per segment
    (1, 200, 1, 64, 64, False, True, -20.0, 2),      # two-level scan with a partial segment
    (2, 130, 1, 128, 64, True, False, None, 3),      # K = 128 (two K tiles in the state kernels)
    (1, 100, 1, 64, 128, True, True, -20.0, None),   # V = 128
    (1, 129, 1, 48, 40, True, True, None, 2),        # dims that are not powers of two
]


@needs_interpreter
@pytest.mark.parametrize("B,T,H,K,V,use_h0,final,x_min,cps", INTERP_CASES)
def test_interpreter_fp32(B, T, H, K, V, use_h0, final, x_min, cps):
    errs = run_case(B, T, H, K, V, torch.float32, _device_for_interpreter(), use_h0=use_h0, final=final,
                    x_min=x_min, cps=cps, tol=1e-4, gtol=1e-4)
    print(f"\n[norm_gla interp] B={B} T={T} H={H} K={K} V={V} h0={use_h0} ht={final} x_min={x_min} cps={cps} "
          + " ".join(f"{n}={e:.1e}" for n, e in errs.items()))


def _patch_interpreter_bf16_dot():
    """Triton's interpreter (seen in 3.9) multiplies the raw uint16 bit patterns in a bf16 tl.dot.
    Upcast bf16 operands exactly (bits << 16) inside the interpreter's dot; False if that fails."""
    try:
        import numpy as np
        import triton.language as tl
        from triton.runtime import interpreter as itp

        cls = itp.InterpreterBuilder
        if getattr(cls.create_dot, "_lawcat_bf16", False):
            return True
        orig = cls.create_dot

        def up(h):
            if h.dtype == tl.bfloat16:
                return (h.data.astype(np.uint32) << 16).view(np.float32)
            return h.data

        def create_dot(self, a, b, d, input_precision, max_num_imprecise_acc):
            if a.dtype == tl.bfloat16 or b.dtype == tl.bfloat16:
                return itp.TensorHandle(np.matmul(up(a), up(b), dtype=d.data.dtype) + d.data, d.dtype.scalar)
            return orig(self, a, b, d, input_precision, max_num_imprecise_acc)

        create_dot._lawcat_bf16 = True
        cls.create_dot = create_dot
        return True
    except Exception:  # pragma: no cover - depends on triton internals
        return False


@needs_interpreter
def test_interpreter_bf16():
    if not _patch_interpreter_bf16_dot():
        pytest.skip("cannot work around the Triton interpreter's bf16 tl.dot on this triton version")
    errs = run_case(1, 100, 2, 32, 32, torch.bfloat16, _device_for_interpreter(), use_h0=True, final=True,
                    x_min=-20.0, cps=1, tol=2e-2, gtol=3e-2)
    print("\n[norm_gla interp bf16] " + " ".join(f"{n}={e:.1e}" for n, e in errs.items()))


@needs_interpreter
@pytest.mark.parametrize("overrides", [{"seq_block_k": 32}, {"programs_per_sm": 1}, {"bwd_split": True},
                                       {"bwd_split": True, "factor_range": 30.0},
                                       {"bwd_split": True, "factor_range": -1.0}])
def test_interpreter_launch_variants(monkeypatch, overrides):
    """Launch variants the automatic configuration may not pick on the CPU: K-tiled state kernels, one segment, the
    gradient kernel in two passes (on each of its paths)."""
    import lawcat.ops.triton_norm_gla.ops as ops

    for key, val in overrides.items():
        monkeypatch.setitem(ops.CONFIG, key, val)
    errs = run_case(2, 150, 1, 64, 32, torch.float32, _device_for_interpreter(), use_h0=True, final=True,
                    x_min=-20.0, cps=2, tol=1e-4, gtol=1e-4)
    print(f"\n[norm_gla interp {overrides}] " + " ".join(f"{n}={e:.1e}" for n, e in errs.items()))


@needs_interpreter
@pytest.mark.parametrize("factor_range,K,V", [(-1.0, 32, 32), (30.0, 32, 32), (-1.0, 128, 96), (30.0, 48, 128)])
def test_interpreter_every_path_on_mild_gates(monkeypatch, factor_range, K, V):
    """Mild gates take the whole-chunk product; a lowered factor range sends the same inputs down the block path
    (30: blocks factored around their middle rows; -1: every block pair by pair), also with wide and padded head
    dims. All must agree with the recurrence."""
    import lawcat.ops.triton_norm_gla.ops as ops

    monkeypatch.setitem(ops.CONFIG, "factor_range", factor_range)
    errs = run_case(2, 150, 1, K, V, torch.float32, _device_for_interpreter(), use_h0=True, final=True,
                    x_min=-20.0, cps=2, tol=1e-4, gtol=1e-4)
    print(f"\n[norm_gla interp factor_range={factor_range} K={K} V={V}] "
          + " ".join(f"{n}={e:.1e}" for n, e in errs.items()))


@needs_interpreter
def test_interpreter_segmenting_invariance():
    """The two-level scan must give the same numbers for every segment length."""
    from lawcat.ops.triton_norm_gla import normalized_gla

    q, k, v, g = make_inputs(1, 300, 1, 16, 16, torch.float32, "cpu", seed=5)
    outs = [normalized_gla(q, k, v, g, output_final_state=True, chunks_per_segment=c) for c in (1, 2, 5)]
    for o, ht in outs[1:]:
        assert rel(o, outs[0][0]) < 1e-5
        assert rel(ht, outs[0][1]) < 1e-5


@needs_interpreter
@pytest.mark.parametrize("x_min,chunk", [(-140.0, 64), (-400.0, 64), (-400.0, 32), (-400.0, 16)])
def test_interpreter_strong_decay_is_exact_at_every_chunk(x_min, chunk):
    """Gates that decay by ~9 and ~25 per step (logits -140, -400; trained gates reached -19) at every chunk size:
    no decay factor inside a chunk exceeds 1, so nothing overflows (a factored form around the chunk's middle row,
    the kernel before 2026-12-02, gave inf at -140 with 64 rows)."""
    # gtol: at -400 the cumulative decay inside a chunk reaches |G| ~ 1,500 in fp32 (see the next test's atol)
    errs = run_case(1, 150, 2, 32, 32, torch.float32, _device_for_interpreter(), use_h0=True, final=True,
                    x_min=x_min, tol=1e-4, gtol=1e-4 if x_min > -200 else 3e-4, chunk=chunk)
    print(f"\n[norm_gla interp strong decay] x_min={x_min} chunk={chunk} "
          + " ".join(f"{n}={e:.1e}" for n, e in errs.items()))


def test_rejects_a_chunk_it_has_no_kernel_for():
    from lawcat.ops.triton_norm_gla import normalized_gla

    # On a GPU machine the interpreter is off: CPU tensors would fail for that reason, not the chunk's.
    q = torch.ones(1, 4, 1, 8, device="cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="chunk must be one of"):
        normalized_gla(q, q, q, torch.zeros_like(q), chunk=48)


@needs_interpreter
def test_triton_backend_serves_strong_gates_itself():
    """lawcat.ops.gla with backend="triton" on a gate of -25 per step: lawcat's kernel itself, exact."""
    from lawcat.ops.gla import normalized_gla
    from lawcat.ops.gla_reference import augment_ones, gla_recurrent, normalize

    q, k, v, g = make_inputs(1, 40, 2, 16, 16, torch.float32, "cpu", x_min=-400.0)  # g to -25
    out, state = normalized_gla(q, k, v, g, scale=0.25, backend="triton")
    ref, ref_state = gla_recurrent(*(t.double() for t in (q, k)), augment_ones(v.double()), g.double(), 0.25, None)
    # atol: inside a chunk the decays come from a cumulative sum in fp32, here up to |G| ~ 1,000, so a near-zero
    # step's decay is a difference of two such sums (~6e-5 absolute); fla's chunked kernels share that
    torch.testing.assert_close(out.double(), normalize(ref, 1e-6), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(state.double(), ref_state, rtol=1e-4, atol=1e-4)


def test_import_without_triton_kernels():
    """Importing the package must not import the kernel module (nor need triton)."""
    import sys

    import lawcat.ops.triton_norm_gla as m

    assert hasattr(m, "normalized_gla")
    if not HAS_CUDA and not INTERPRET:
        assert "lawcat.ops.triton_norm_gla._kernels" not in sys.modules


def test_rejects_bad_shapes():
    from lawcat.ops.triton_norm_gla import normalized_gla

    q = torch.zeros(1, 4, 1, 8)
    with pytest.raises(ValueError):
        normalized_gla(q, q, torch.zeros(1, 4, 2, 8), q)
    with pytest.raises(ValueError):
        normalized_gla(q, q, torch.zeros(1, 4, 1, 8), q, initial_state=torch.zeros(1, 1, 8, 8))


# ----------------------------------------------------------------------------------------------
# GPU tests
# ----------------------------------------------------------------------------------------------
GPU_CASES = [
    # B, T,    H,  K,   V,  dtype,          use_h0, final, x_min, tol,  gtol
    (1, 1000, 4, 64, 64, torch.float32, True, True, -20.0, 1e-4, 1e-4),
    (2, 777, 3, 128, 128, torch.float32, True, True, -20.0, 1e-4, 1e-4),
    (1, 2048, 32, 64, 64, torch.bfloat16, True, True, -20.0, 1e-2, 2e-2),
    (2, 1025, 8, 128, 128, torch.bfloat16, False, True, -20.0, 1e-2, 2e-2),
    (1, 2000, 4, 64, 128, torch.bfloat16, True, False, None, 1e-2, 2e-2),
]


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("B,T,H,K,V,dtype,use_h0,final,x_min,tol,gtol", GPU_CASES)
def test_gpu(B, T, H, K, V, dtype, use_h0, final, x_min, tol, gtol):
    errs = run_case(B, T, H, K, V, dtype, torch.device("cuda"), use_h0=use_h0, final=final, x_min=x_min,
                    tol=tol, gtol=gtol)
    print(f"\n[norm_gla gpu] B={B} T={T} H={H} K={K} V={V} {dtype} "
          + " ".join(f"{n}={e:.1e}" for n, e in errs.items()))


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("x_min,dtype,tol,gtol", [(-60.0, torch.float32, 1e-4, 1e-4),
                                               (-140.0, torch.bfloat16, 1e-2, 2e-2),
                                               (-400.0, torch.bfloat16, 1e-2, 3e-2)])
def test_gpu_strong_decay(x_min, dtype, tol, gtol):
    """The compiled kernels on strongly decaying gates (~4 and ~9 per step), at the default 64-row chunk."""
    errs = run_case(2, 1000, 4, 64, 64, dtype, torch.device("cuda"), use_h0=True, final=True, x_min=x_min,
                    tol=tol, gtol=gtol)
    print(f"\n[norm_gla gpu strong decay] x_min={x_min} {dtype} " + " ".join(f"{n}={e:.1e}" for n, e in errs.items()))


@pytest.mark.cuda
@needs_cuda
def test_gpu_poisoned_outputs_fully_written():
    """Every output element is written: fill the caching allocator with NaN first."""
    from lawcat.ops.triton_norm_gla import normalized_gla

    B, T, H, K, V = 2, 333, 4, 64, 64
    blob = torch.full((64 << 20,), float("nan"), device="cuda")  # 256 MB of NaN, then freed
    del blob
    q, k, v, g = make_inputs(B, T, H, K, V, torch.bfloat16, "cuda", x_min=-20.0)
    leaves = [t.clone().requires_grad_(True) for t in (q, k, v, g)]
    o, ht = normalized_gla(*leaves, output_final_state=True)
    (o.float().sum() + ht.sum()).backward()
    for t in [o, ht] + [x.grad for x in leaves]:
        assert torch.isfinite(t).all()


@pytest.mark.cuda
@needs_cuda
def test_gpu_matches_chunk_gla_v65():
    """Cross-check with fla's chunk_gla on v extended by a ones column (skipped without fla)."""
    fla_gla = pytest.importorskip("fla.ops.gla")
    from lawcat.ops.triton_norm_gla import normalized_gla

    B, T, H, K, V = 1, 4096, 8, 64, 64
    q, k, v, g = make_inputs(B, T, H, K, V, torch.bfloat16, "cuda", x_min=-20.0)
    o, _ = normalized_gla(q, k, v, g)
    v1 = torch.cat([v, torch.ones_like(v[..., :1])], dim=-1)
    o65, _ = fla_gla.chunk_gla(q, k, v1, g.to(q.dtype))
    ref = o65[..., :V].float() / (o65[..., V:].float() + 1e-6)
    assert rel(o.float(), ref) < 2e-2


@needs_interpreter
def test_model_with_triton_backend_matches_reference():
    """The opt-in fused backend inside a whole student: same logits and decode as the reference path."""
    from lawcat import LawcatConfig, linearize
    from tests.conftest import make_teacher

    ids = torch.randint(0, 97, (2, 70))
    outs = {}
    for backend in ("reference", "triton"):
        torch.manual_seed(0)
        student = linearize(make_teacher("llama"), LawcatConfig(gla_backend=backend)).eval()
        with torch.no_grad():
            full = student(ids).logits
            _, cache = student.prefill(ids[:, :65], chunk_size=32)
            step = student(ids[:, 65:66], past_key_values=cache, use_cache=True).logits
        outs[backend] = (full, step)
    torch.testing.assert_close(outs["triton"][0], outs["reference"][0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(outs["triton"][1], outs["reference"][0][:, 65:66], rtol=1e-4, atol=1e-4)
