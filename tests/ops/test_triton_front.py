"""lawcat.ops.triton_front.conv_feature_map against the PyTorch ops it fuses, and inside a whole student.

CPU: the kernel runs under the Triton interpreter (TRITON_INTERPRET=1 set in the environment before pytest
starts, as for tests/ops/test_triton_norm_gla.py); GPU: the cuda-marked test.

    TRITON_INTERPRET=1 python -m pytest tests/ops/test_triton_front.py -q
"""
from __future__ import annotations

import importlib.util
import os

import pytest
import torch

from lawcat.layers.attention import repeat_kv
from lawcat.layers.feature_map import hedgehog
from lawcat.ops.conv import causal_conv1d
from lawcat.ops.triton_front import conv_feature_map

HAS_TRITON = importlib.util.find_spec("triton") is not None
INTERPRET = HAS_TRITON and os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
needs_interpreter = pytest.mark.skipif(not INTERPRET, reason="needs triton and TRITON_INTERPRET=1 in the environment")
needs_cuda = pytest.mark.skipif(not (HAS_TRITON and torch.cuda.is_available()), reason="needs a CUDA device")


def unfused(x, conv_w, map_w, state, mask, groups, mask_output):
    B, T, HX, D = x.shape
    m = None if mask is None else mask[:, :, None, None].to(x.dtype)
    y, _ = causal_conv1d((x if m is None else x * m).reshape(B, T, -1), conv_w, state)
    out = hedgehog(repeat_kv(y.view(B, T, HX, D), groups), map_w)
    return out * m if (mask_output and m is not None) else out


CASES = [
    # B, T,  HX, groups, D, W, state, mask
    (2, 37, 2, 1, 16, 4, False, False),
    (1, 70, 2, 3, 32, 4, True, True),    # GQA keys, chunked-prefill state, padding
    (2, 5, 1, 2, 64, 4, True, True),     # T < W - 1: the state reaches past the block
    (1, 1, 2, 1, 16, 4, True, False),    # one decoding step
    (1, 40, 2, 1, 16, 1, False, True),   # a one-tap conv
    (1, 33, 1, 1, 24, 3, True, True),    # a head dim that is not a power of two
]


@needs_interpreter
@pytest.mark.parametrize("B,T,HX,groups,D,W,use_state,use_mask", CASES)
def test_interpreter_equals_the_unfused_ops(B, T, HX, groups, D, W, use_state, use_mask):
    gen = torch.Generator().manual_seed(T * 31 + D)
    x = torch.randn(B, T, HX, D, generator=gen)
    conv_w, map_w = torch.randn(HX * D, W, generator=gen), torch.randn(HX * groups, D, D // 2, generator=gen)
    state = torch.randn(B, W - 1, HX * D, generator=gen) if use_state else None
    mask = (torch.rand(B, T, generator=gen) > 0.3).float() if use_mask else None
    for mask_output in (False, True):
        got = conv_feature_map(x, conv_w, map_w, state, mask, groups, mask_output=mask_output)
        torch.testing.assert_close(got, unfused(x, conv_w, map_w, state, mask, groups, mask_output),
                                   rtol=1e-5, atol=1e-5)


@needs_interpreter
def test_interpreter_student_is_unchanged_by_the_fused_front_end(monkeypatch):
    """gla_backend="triton" at inference takes the fused front end: logits of a chunked prefill with padding and
    of the decoding steps after it equal those with LAWCAT_FUSED_FRONT=0 (the PyTorch ops), for LAWCAT and GQA."""
    from lawcat import LawcatConfig, linearize
    from tests.conftest import make_teacher

    ids = torch.randint(0, 97, (2, 70))
    mask = torch.ones(2, 70, dtype=torch.long)
    mask[1, :9] = 0  # left padding
    outs = {}
    for fused in ("1", "0"):
        monkeypatch.setenv("LAWCAT_FUSED_FRONT", fused)
        torch.manual_seed(0)
        student = linearize(make_teacher("llama"), LawcatConfig(gla_backend="triton")).eval()
        with torch.no_grad():
            logits, cache = student.prefill(ids[:, :65], attention_mask=mask[:, :65], chunk_size=32)
            steps = [student(ids[:, t:t + 1], attention_mask=mask[:, :t + 1], past_key_values=cache,
                             use_cache=True).logits for t in range(65, 68)]
        outs[fused] = (logits, torch.cat(steps, 1))
    torch.testing.assert_close(outs["1"][0], outs["0"][0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(outs["1"][1], outs["0"][1], rtol=1e-4, atol=1e-4)


def test_rejects_bad_shapes():
    x = torch.zeros(1, 8, 2, 16)
    with pytest.raises(ValueError, match="conv_weight"):
        conv_feature_map(x, torch.zeros(16, 4), torch.zeros(2, 16, 8))
    with pytest.raises(ValueError, match="map_weight"):
        conv_feature_map(x, torch.zeros(32, 4), torch.zeros(2, 16, 16))
    with pytest.raises(ValueError, match="conv state"):
        conv_feature_map(x, torch.zeros(32, 4), torch.zeros(2, 16, 8), state=torch.zeros(1, 2, 32))
    with pytest.raises(ValueError, match="mask"):
        conv_feature_map(x, torch.zeros(32, 4), torch.zeros(2, 16, 8), mask=torch.ones(1, 7))


@pytest.mark.skipif(INTERPRET, reason="the interpreter serves CPU tensors")
def test_cpu_tensors_without_the_interpreter_are_refused():
    with pytest.raises(RuntimeError, match="needs CUDA tensors"):
        conv_feature_map(torch.zeros(1, 8, 2, 16), torch.zeros(32, 4), torch.zeros(2, 16, 8))


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_equals_the_unfused_ops(dtype):
    gen = torch.Generator().manual_seed(0)
    B, T, HX, groups, D, W = 2, 3000, 8, 4, 64, 4
    x = torch.randn(B, T, HX, D, generator=gen).to("cuda", dtype)
    conv_w = (torch.randn(HX * D, W, generator=gen) * 0.5).cuda()
    map_w = (torch.randn(HX * groups, D, D // 2, generator=gen) * 0.2).cuda()
    state = torch.randn(B, W - 1, HX * D, generator=gen).to("cuda", dtype)
    mask = (torch.rand(B, T, generator=gen) > 0.1).float().cuda()
    got = conv_feature_map(x, conv_w, map_w, state, mask, groups, mask_output=True)
    ref = unfused(x, conv_w, map_w, state, mask, groups, True)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(got.float(), ref.float(), rtol=tol, atol=tol)
