"""A fake but realistic results dict (shaped like an H100 run of Llama-3.2-1B) for the report/plot tests."""
from __future__ import annotations

from lawcat.bench.settings import FORMAT, FORMAT_VERSION

GiB = 1 << 30
K = 1024
TEACHER_MS = {1: 20.7, 2: 21.0, 4: 24.9, 8: 52.4, 16: 123, 32: 323, 64: 945, 128: 3300}
TEACHER_GIB = {1: 2.6, 2: 2.65, 4: 2.8, 8: 3.1, 16: 3.6, 32: 4.6, 64: 6.6, 128: 10.6}
STUDENT_MS = {1: 30.0, 2: 31.0, 4: 33.0, 8: 40.0, 16: 80.0, 32: 160.0, 64: 320.0, 128: 640.0, 256: 1280.0}


def _ok(kind, model, length, ms, **extra):
    rec = {"kind": kind, "model": model, "length": length, "batch": 1, "status": "ok", "ms": ms,
           "times_ms": [ms * 0.99, ms, ms * 1.02], "peak_bytes": None, "base_bytes": None,
           "tokens_per_s": (length if kind == "prefill" else 1) / (ms / 1e3)}
    if kind == "op":
        rec["shape"] = {"heads": 32, "kv_heads": 8, "head_dim": 64}
    rec.update(extra)
    return rec


def fake_results() -> dict:
    recs = []
    for k in (1, 2, 4, 8, 16, 32, 64, 128, 256):
        T = k * K
        if k in TEACHER_MS:
            recs.append(_ok("prefill", "teacher", T, TEACHER_MS[k], peak_bytes=int(TEACHER_GIB[k] * GiB),
                            utilization=0.3, flops=1, flops_per_s=1.0))
        else:
            recs.append({"kind": "prefill", "model": "teacher", "length": T, "batch": 1, "status": "oom", "ms": None,
                         "times_ms": [], "peak_bytes": 79 * GiB, "base_bytes": 2 * GiB,
                         "error": "OutOfMemoryError: CUDA out of memory"})
        recs.append(_ok("prefill", "student", T, STUDENT_MS[k], peak_bytes=int(2.7 * GiB), utilization=0.2,
                        flops=1, flops_per_s=1.0, chunk_size=8192))
    recs.append({"kind": "prefill", "model": "teacher", "length": 512 * K, "batch": 1, "status": "skipped",
                 "reason": "out of memory at 262144 tokens"})
    recs.append(_ok("prefill", "student", 512 * K, 2560.0, peak_bytes=int(2.7 * GiB), utilization=0.2))
    for k in (1, 4, 16, 64, 128):
        C = k * K
        recs.append(_ok("decode", "teacher", C, 60 + 0.2 * k, state_bytes=32 * K * C, peak_bytes=int(3 * GiB)))
        recs.append(_ok("decode", "student", C, 45.0, state_bytes=16 * 32 * 64 * 65 * 4 + 16 * 3 * 2560 * 2,
                        peak_bytes=int(2.6 * GiB)))
    for k in (1, 4, 16, 64, 128):
        T = k * K
        recs.append(_ok("op", "sdpa-flash", T, 0.038 * k * k, gqa="enable_gqa"))
        recs.append(_ok("op", "sdpa-cudnn", T, 0.026 * k * k, gqa="expanded"))
        recs.append(_ok("op", "gla", T, max(0.7, 0.062 * k), backend="fla"))
    return {
        "format": FORMAT, "version": FORMAT_VERSION,
        "run": {"date": "2026-11-23T00:00:00Z", "argv": ["lawcat", "bench", "llama-3.2-1b"], "device": "cuda",
                "dtype": "bfloat16",
                "settings": {"batch": 1, "chunk_size": 8192, "decode_steps": 32, "decode_warmup": 4,
                             "teacher_cache": True},
                "machine": {"device": "NVIDIA H100 80GB HBM3", "device_total_bytes": 80 * GiB, "torch": "2.11.0",
                            "transformers": "5.17.0", "fla_core": "0.6.0", "triton": "3.6.0"}},
        "model": {"name": "llama-3.2-1b", "source": "random weights, architecture llama-3.2-1b", "params": 1235814400,
                  "lawcat_params": 4_000_000, "dtype": "bfloat16", "attn_implementation": "sdpa"},
        "matmul": {"n": 8192, "dtype": "bfloat16", "flops": 2 * 8192 ** 3, "status": "ok", "ms": 1.4,
                   "times_ms": [1.4], "flops_per_s": 2 * 8192 ** 3 / 1.4e-3},
        "records": recs,
    }
