"""The attention operator alone, at a fixed shape: PyTorch SDPA under each requested backend against lawcat's
normalized GLA (default shape Llama-3.2-1B's: 32 query heads, 8 KV heads, head dim 64).

No model is involved, so this isolates the kernel from the rest of the layer; FLOPs are the operator's own
(causal softmax attention: quadratic in T; GLA: linear).
"""
from __future__ import annotations

import contextlib

import torch

from .errors import BenchError
from .measure import with_flops
from .planner import power_law
from .settings import OP_METHODS, BenchSettings
from .timing import free_memory, is_oom, measure

__all__ = ["OP_METHODS", "default_op_methods", "measure_op"]

def default_op_methods(device) -> list[str]:
    """The methods run when none are asked for: on CUDA flash and cuDNN SDPA, GLA, and Triton GLA where it is
    available; elsewhere flash and math SDPA, and GLA."""
    if torch.device(device).type == "cuda":
        methods = ["sdpa-flash", "sdpa-cudnn", "gla"]
        with contextlib.suppress(Exception):
            from ..ops.triton_launch import triton_available

            if triton_available():
                methods.append("gla-triton")
        return methods
    return ["sdpa-flash", "sdpa-math", "gla"]


_SDPA_BACKENDS = {"sdpa-flash": "FLASH_ATTENTION", "sdpa-cudnn": "CUDNN_ATTENTION",
                  "sdpa-efficient": "EFFICIENT_ATTENTION", "sdpa-math": "MATH"}


def _op_callable(method: str, T: int, s: BenchSettings, device, dtype):
    """(fn, notes): inputs are made here, once, so the timed call is the operator only."""
    import torch.nn.functional as F

    B, H, Hkv, D = s.batch, s.op_heads, s.op_kv_heads, s.op_head_dim
    gen = torch.Generator(device=device).manual_seed(s.seed + T)

    def rnd(*shape, dt=dtype):
        return torch.randn(*shape, device=device, dtype=dt, generator=gen)

    if method in _SDPA_BACKENDS:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        backend = getattr(SDPBackend, _SDPA_BACKENDS[method])
        q, k, v = rnd(B, H, T, D), rnd(B, Hkv, T, D), rnd(B, Hkv, T, D)
        notes = {"gqa": "enable_gqa"}

        def fn():
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)

        try:  # some backends take no GQA: give them K/V repeated to the query heads (outside the timing)
            fn()
        except Exception as e:  # noqa: BLE001
            if is_oom(e) or Hkv == H:
                raise
            k, v = k.repeat_interleave(H // Hkv, 1), v.repeat_interleave(H // Hkv, 1)
            notes = {"gqa": "expanded"}

            def fn():
                with sdpa_kernel(backend):
                    return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return fn, notes
    # GLA: H heads (k, v already repeated to the query heads, as the layer does), feature dim = head_dim.
    fq = torch.softmax(rnd(B, T, H, D, dt=torch.float32), -1).to(dtype)
    fk = torch.softmax(rnd(B, T, H, D, dt=torch.float32), -1).to(dtype)
    v = rnd(B, T, H, D)
    g = torch.nn.functional.logsigmoid(rnd(B, T, H, D, dt=torch.float32)) / 16
    if method == "gla":
        from ..ops.gla import _pick, normalized_gla

        def fn():
            return normalized_gla(fq, fk, v, g, scale=1.0)
        return fn, {"backend": _pick("auto", fq)}
    if method == "gla-triton":
        from ..ops.triton_norm_gla import normalized_gla as triton_gla

        def fn():
            return triton_gla(fq, fk, v, g, scale=1.0, output_final_state=True)
        return fn, {"backend": "lawcat.ops.triton_norm_gla"}
    raise BenchError(f"unknown op method {method!r}")


def measure_op(s: BenchSettings, device, dtype, planner, emit):
    """One record per (length, method); a method that fails while preparing is recorded (oom / unsupported /
    error), not raised."""
    methods = s.op_methods or default_op_methods(device)
    for T in (s.op_lengths or s.lengths):
        for method in methods:
            series = ("op", method)
            base = {"kind": "op", "model": method, "length": T, "batch": s.batch,
                    "shape": {"heads": s.op_heads, "kv_heads": s.op_kv_heads, "head_dim": s.op_head_dim}}
            reason = planner.skip_reason(series, T, power_law(2.0 if method.startswith("sdpa") else 1.0))
            if reason:
                emit({**base, "status": "skipped", "reason": reason})
                continue
            notes, fn, err = {}, None, None
            free_memory(device)
            try:
                fn, notes = _op_callable(method, T, s, device, dtype)
            except Exception as e:  # noqa: BLE001 - OOM or an unavailable kernel while preparing
                err = e
            if err is not None:
                status = "oom" if is_oom(err) else ("unsupported" if "kernel" in str(err).lower() else "error")
                rec = {**base, "status": status, "ms": None, "times_ms": [], "peak_bytes": None,
                       "base_bytes": None, "error": f"{type(err).__name__}: {str(err).strip()[:200]}"}
                err = None
            else:
                with torch.no_grad():
                    m = measure(fn, device, planner.warmup(series, s.warmup), s.repeats, s.max_seconds)
                rec = {**base, **notes, **m.as_record()}
            fn = None
            free_memory(device)
            H, D = s.op_heads, s.op_head_dim
            flops = (4 * H * D * (T * (T + 1) // 2) if method.startswith("sdpa") else T * 2 * (2 * H * D * (D + 1)))
            rec = with_flops(rec, s.batch * flops, None, s.batch * T)
            rec.pop("utilization", None)
            emit(rec)
            planner.done(series, T, rec)
