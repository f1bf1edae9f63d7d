"""The fla CUDA path against the plain-PyTorch reference (run on a GPU; skipped elsewhere)."""
import pytest
import torch

from lawcat.ops.gla import gla_augmented, normalized_gla
from lawcat.ops.gla_reference import augment_ones

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
pytestmark = [pytest.mark.cuda, cuda]


def rel_err(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def inputs(B, T, H, K, V, dtype, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    q = torch.rand(B, T, H, K, device="cuda", generator=g).softmax(-1).to(dtype)
    k = torch.rand(B, T, H, K, device="cuda", generator=g).softmax(-1).to(dtype)
    v = torch.randn(B, T, H, V, device="cuda", generator=g).to(dtype)
    gate = (torch.nn.functional.logsigmoid(torch.randn(B, T, H, K, device="cuda", generator=g) * 3) / 16)
    return q, k, v, gate


# Each new dtype costs fla a full Triton autotune (minutes on a fresh machine), so every shape is bf16, the dtype
# lawcat trains and evaluates in on a GPU: the default teacher's heads (9 x 64), a batch with an odd length, and
# a 128-wide head (Llama-3-8B's).
@pytest.mark.parametrize("B,T,H,K,V,dtype", [(1, 1000, 9, 64, 64, torch.bfloat16), (2, 333, 4, 64, 64, torch.bfloat16),
                                             (1, 257, 8, 128, 128, torch.bfloat16)])
def test_forward_and_backward_match_reference(B, T, H, K, V, dtype):
    q, k, v, g = inputs(B, T, H, K, V, dtype, seed=T)
    S0 = torch.rand(B, H, K, V + 1, device="cuda") * 0.1
    # One upstream gradient for both backends (drawn once: the comparison is meaningless otherwise).
    w = torch.randn(B, T, H, V, device="cuda", generator=torch.Generator(device="cuda").manual_seed(1))
    tol = 2e-2
    outs, grads = {}, {}
    for backend in ("fla", "reference"):
        leaves = [t.detach().clone().requires_grad_() for t in (q, k, v, g, S0)]
        # NaN-poison check: any unwritten element of the fast path's output would propagate.
        out, state = normalized_gla(*leaves[:4], initial_state=leaves[4], backend=backend)
        ((out.float() * w).sum() + state.sum() * 1e-3).backward()
        assert torch.isfinite(out).all() and torch.isfinite(state).all()
        outs[backend] = (out, state)
        grads[backend] = [t.grad for t in leaves]
    errs = {"out": rel_err(outs["fla"][0], outs["reference"][0]),
            "state": rel_err(outs["fla"][1], outs["reference"][1])}
    errs.update({f"d{name}": rel_err(a, b)
                 for name, a, b in zip("q k v g S0".split(), grads["fla"], grads["reference"])})
    print(f"\nPARITY B={B} T={T} H={H} K={K} V={V} {str(dtype)[6:]}: "
          + " ".join(f"{k}={v:.1e}" for k, v in errs.items()))
    assert errs["out"] < tol and errs["state"] < tol
    for name in "q k v g S0".split():
        assert errs[f"d{name}"] < tol * 2, f"grad {name}: rel err {errs[f'd{name}']:.2e}"


def test_step_kernel_matches_reference_and_chunk():
    q, k, v, g = inputs(2, 40, 4, 64, 64, torch.bfloat16, seed=3)
    va = augment_ones(v)
    ref, _ = gla_augmented(q, k, va, g, 1.0, backend="reference")
    state, steps = None, []
    for t in range(40):
        o, state = gla_augmented(q[:, t:t + 1], k[:, t:t + 1], va[:, t:t + 1], g[:, t:t + 1], 1.0, state, backend="fla")
        steps.append(o)
    assert rel_err(torch.cat(steps, 1), ref) < 2e-2
    chunk_then_step, st = gla_augmented(q[:, :30], k[:, :30], va[:, :30], g[:, :30], 1.0, backend="fla")
    for t in range(30, 40):
        o, st = gla_augmented(q[:, t:t + 1], k[:, t:t + 1], va[:, t:t + 1], g[:, t:t + 1], 1.0, st, backend="fla")
    assert rel_err(st, gla_augmented(q, k, va, g, 1.0, backend="reference")[1]) < 2e-2


def test_student_on_cuda_matches_cpu_reference():
    from lawcat import LawcatConfig, linearize
    from tests.conftest import make_teacher

    teacher = make_teacher("llama")
    student = linearize(teacher, LawcatConfig()).eval()
    ids = torch.randint(0, 97, (2, 300))
    with torch.no_grad():
        cpu = student(ids).logits
        gpu_model = student.to("cuda")
        gpu = gpu_model(ids.cuda()).logits.cpu()
        _, cache = gpu_model.prefill(ids.cuda()[:, :200], chunk_size=64)
        steps = [gpu_model(ids.cuda()[:, t:t + 1], past_key_values=cache, use_cache=True).logits
                 for t in range(200, 210)]
    assert rel_err(gpu, cpu) < 1e-2
    assert rel_err(torch.cat(steps, 1).cpu(), cpu[:, 200:210]) < 1e-2
