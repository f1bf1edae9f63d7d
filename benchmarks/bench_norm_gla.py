#!/usr/bin/env python
"""GPU timing of normalized GLA (LAWCAT Eq. 8) against fla and SDPA, at Llama-3.2-1B shapes.

Compares, per sequence length T (batch 1, 32 heads, K = V = 64, bf16 by default):
  ours       lawcat.ops.triton_norm_gla.normalized_gla (num and den together)
  fla64      fla chunk_gla with V = 64 (plain GLA, no normalizer: the speed target)
  fla65      fla chunk_gla on v extended by a ones column (V = 65), then the division
  flash      SDPA FlashAttention-2 backend, causal, 32 query / 8 KV heads
  cudnn      SDPA cuDNN backend, same
Forward (eager), forward+backward (eager), and for T <= --graph-max-T the forward and
forward+backward replayed from a captured CUDA graph (removes the launch overhead).
Median milliseconds via triton.testing.do_bench (CUDA events).  fla is optional: without it those
columns are skipped.  Prints a table at the end and writes everything to the JSON path given.

    python benchmarks/bench_norm_gla.py results/bench_norm_gla.json
    python benchmarks/bench_norm_gla.py out.json --T 1024,16384 --no-sdpa --K 128 --V 128
    python benchmarks/bench_norm_gla.py out.json --breakdown 65536     # per-kernel times of ours
    python benchmarks/bench_norm_gla.py out.json --tune 65536          # launch-config sweep of ours

fla's first calls autotune and compile many kernel variants (forward and backward): on the lent H100
more than six minutes passed without the first fla number.  Later lengths reuse them, and Triton keeps
compiled kernels and fla's autotune results in TRITON_CACHE_DIR: point it at a carried folder, or tar
it into $OUT, to reuse them in a later run.  Measurements that would start after --time-budget seconds
are skipped so the table still prints inside a 10-minute command limit; split runs with --methods.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
import traceback

import torch
import torch.nn.functional as F

from lawcat.bench.tables import format_ms

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

EPS = 1e-6


def _import_normalized_gla():
    """lawcat.ops.triton_norm_gla.normalized_gla; if the rest of lawcat fails to import (missing
    optional dependencies on the GPU machine), load just this subpackage under stub parents."""
    try:
        from lawcat.ops.triton_norm_gla import normalized_gla
        return normalized_gla
    except ImportError as e:
        print(f"(import lawcat failed: {e}; loading lawcat/ops/triton_norm_gla alone)", flush=True)
        import types

        for name in list(sys.modules):
            if name == "lawcat" or name.startswith("lawcat."):
                del sys.modules[name]
        for name, sub in (("lawcat", "lawcat"), ("lawcat.ops", os.path.join("lawcat", "ops"))):
            mod = types.ModuleType(name)
            mod.__path__ = [os.path.join(ROOT, sub)]
            sys.modules[name] = mod
        from lawcat.ops.triton_norm_gla import normalized_gla
        return normalized_gla


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="JSON output path")
    p.add_argument("--T", default="1024,2048,4096,8192,16384,32768,65536,131072",
                   help="comma-separated sequence lengths")
    p.add_argument("--B", type=int, default=1)
    p.add_argument("--H", type=int, default=32, help="query heads (and linear-attention heads)")
    p.add_argument("--kv-heads", type=int, default=8, help="KV heads for SDPA (GQA)")
    p.add_argument("--K", type=int, default=64)
    p.add_argument("--V", type=int, default=64)
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    p.add_argument("--g-dtype", default=None, choices=[None, "bf16", "fp16", "fp32"],
                   help="dtype of the log decay g (default: same as --dtype)")
    p.add_argument("--graph-max-T", type=int, default=8192, help="CUDA-graph replay up to this T")
    p.add_argument("--no-bwd", action="store_true", help="skip forward+backward timings")
    p.add_argument("--no-sdpa", action="store_true")
    p.add_argument("--no-fla", action="store_true")
    p.add_argument("--fla-configs", default="autotune", choices=["autotune", "pinned"],
                   help="pinned: fla's kernels run the one config lawcat pins them to (lawcat.ops.fla_backend: no "
                        "minutes of autotuning, but not fla's tuned best; say so next to any ratio)")
    p.add_argument("--methods", default="ours,fla64,fla65,flash,cudnn",
                   help="comma-separated subset of ours,fla64,fla65,flash,cudnn")
    p.add_argument("--sdpa-max-T", type=int, default=131072, help="SDPA forward up to this T")
    p.add_argument("--sdpa-bwd-max-T", type=int, default=32768, help="SDPA forward+backward up to this T")
    p.add_argument("--time-budget", type=float, default=540.0,
                   help="seconds; measurements that would start later are skipped (table still printed)")
    p.add_argument("--warmup", type=float, default=25.0, help="do_bench warm-up, ms")
    p.add_argument("--rep", type=float, default=200.0, help="do_bench repetition time, ms")
    p.add_argument("--check-T", type=int, default=4096, help="T of the correctness cross-check (0: skip)")
    p.add_argument("--breakdown", type=int, default=0, help="also list ours' kernels at this T (profiler)")
    p.add_argument("--tune", type=int, default=0,
                   help="also time ours under several launch configurations at this T (then exit)")
    return p.parse_args()


DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def make_inputs(B, T, H, K, V, dtype, g_dtype, requires_grad=False, seed=0):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    q = torch.randn(B, T, H, K, device="cuda", generator=gen).to(dtype)
    k = torch.randn(B, T, H, K, device="cuda", generator=gen).to(dtype)
    # positive features (LAWCAT uses a positive feature map), den away from zero
    q = F.softplus(q.float()).to(dtype) * 0.5
    k = F.softplus(k.float()).to(dtype) * 0.5
    v = torch.randn(B, T, H, V, device="cuda", generator=gen).to(dtype)
    g = (F.logsigmoid(torch.randn(B, T, H, K, device="cuda", generator=gen) * 3.0) / 16.0).to(g_dtype)
    out = [q, k, v, g]
    if requires_grad:
        out = [t.requires_grad_(True) for t in out]
    return out


def bench(fn, warmup, rep):
    import triton

    return float(triton.testing.do_bench(fn, warmup=warmup, rep=rep, return_mode="median"))


def bench_graph(fn, warmup, rep):
    import triton

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    torch.cuda.synchronize()
    ms = float(triton.testing.do_bench(graph.replay, warmup=warmup, rep=rep, return_mode="median"))
    del graph
    return ms


def free():
    gc.collect()
    torch.cuda.empty_cache()


def make_methods(args, fla_gla):
    normalized_gla = _import_normalized_gla()
    V = args.V

    def ours(q, k, v, g):
        return normalized_gla(q, k, v, g, eps=EPS)[0]

    def fla64(q, k, v, g):
        return fla_gla(q, k, v, g)[0]

    def fla65(q, k, v, g):
        v1 = torch.cat([v, torch.ones_like(v[..., :1])], dim=-1)
        o = fla_gla(q, k, v1, g)[0]
        return o[..., :V] / (o[..., V:] + EPS)

    methods = {"ours": ours}
    if fla_gla is not None:
        methods["fla64"] = fla64
        methods["fla65"] = fla65
    return methods


def sdpa_methods(args):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    def make(backend):
        def run(q, k, v):
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                      enable_gqa=k.shape[1] != q.shape[1])
        return run

    return {"flash": make(SDPBackend.FLASH_ATTENTION), "cudnn": make(SDPBackend.CUDNN_ATTENTION)}


def sdpa_inputs(B, T, H, KVH, D, dtype, requires_grad=False):
    q = torch.randn(B, H, T, D, device="cuda", dtype=dtype)
    k = torch.randn(B, KVH, T, D, device="cuda", dtype=dtype)
    v = torch.randn(B, KVH, T, D, device="cuda", dtype=dtype)
    if requires_grad:
        q, k, v = (t.requires_grad_(True) for t in (q, k, v))
    return q, k, v


def fwd_bwd_fn(f, inputs, grad_out):
    def run():
        o = f(*inputs)
        torch.autograd.grad(o, inputs, grad_out)  # no .grad accumulation inside the timed region
    return run


START = time.time()
TIME_BUDGET = [float("inf")]


def timed(results, key, thunk):
    t0 = time.time()
    if t0 - START > TIME_BUDGET[0]:
        results[key] = None
        results.setdefault("skipped", []).append(key)
        return
    print(f"  {key} ...", end="", flush=True)
    try:
        results[key] = thunk()
        print(f" {results[key]:.4f} ms  ({time.time() - t0:.0f} s incl. compile/autotune)", flush=True)
    except Exception as e:  # keep going: one failing variant must not end the run
        results[key] = None
        results.setdefault("errors", {})[key] = f"{type(e).__name__}: {e}"
        print(f"\n  ! {key}: {type(e).__name__}: {str(e)[:300]}", flush=True)
    finally:
        free()


def rel(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm()).item()


def cross_check(args, fla_gla, dtype, g_dtype):
    """ours vs fla65 (when fla is there) and vs an fp32 chunk-by-chunk torch evaluation of ours."""
    normalized_gla = _import_normalized_gla()
    T = args.check_T
    q, k, v, g = make_inputs(args.B, T, args.H, args.K, args.V, dtype, g_dtype, requires_grad=True, seed=1)
    o, _ = normalized_gla(q, k, v, g, eps=EPS)
    do = torch.randn_like(o)
    o.backward(do)
    grads = [t.grad.clone() for t in (q, k, v, g)]
    # fp32 run of our kernel (IEEE dots) as the reference for the bf16 one
    q32, k32, v32, g32 = (t.detach().float().requires_grad_(True) for t in (q, k, v, g))
    o32, _ = normalized_gla(q32, k32, v32, g32, eps=EPS)
    o32.backward(do.float())
    out = {"T": T, "bf16_vs_fp32": {"o": rel(o.float(), o32)}}
    for n, a, b in zip("qkvg", grads, (q32.grad, k32.grad, v32.grad, g32.grad)):
        out["bf16_vs_fp32"]["d" + n] = rel(a.float(), b)
    if fla_gla is not None:
        with torch.no_grad():
            v1 = torch.cat([v32, torch.ones_like(v32[..., :1])], dim=-1)
            of, _ = fla_gla(q32, k32, v1, g32)
            ref = of[..., : args.V] / (of[..., args.V:] + EPS)
            out["fp32_vs_fla65_fp32"] = rel(o32.detach(), ref)
    return out


def diagnostics():
    """The per-kernel breakdown and the launch-config sweep (norm_gla_diagnostics.py, which reuses this file's
    helpers), imported when asked for."""
    import norm_gla_diagnostics

    return norm_gla_diagnostics


def main():
    args = parse_args()
    if not torch.cuda.is_available():
        print("bench_norm_gla: needs a CUDA device", file=sys.stderr)
        return 2
    import triton

    TIME_BUDGET[0] = args.time_budget
    dtype = DTYPES[args.dtype]
    g_dtype = DTYPES[args.g_dtype] if args.g_dtype else dtype
    Ts = [int(t) for t in args.T.split(",") if t]

    fla_gla = None
    fla_version = None
    if not args.no_fla:
        try:
            if args.fla_configs == "pinned":
                from lawcat.ops.fla_backend import _fla

                fla_gla = _fla()[0]
            else:
                from fla.ops.gla import chunk_gla as fla_gla  # noqa: F811
            import fla

            fla_version = getattr(fla, "__version__", "?")
        except Exception as e:
            print(f"fla not available ({type(e).__name__}: {e}); skipping fla columns", flush=True)
            fla_gla = None

    meta = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "fla": fla_version,
        "fla_configs": args.fla_configs,
        "python": platform.python_version(),
        "B": args.B, "H": args.H, "kv_heads": args.kv_heads, "K": args.K, "V": args.V,
        "dtype": args.dtype, "g_dtype": str(g_dtype).replace("torch.", ""),
        "timer": "triton.testing.do_bench median ms",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(json.dumps(meta), flush=True)
    report = {"meta": meta, "rows": []}

    if args.tune:
        report["tune"] = diagnostics().tune(args, dtype, g_dtype)
        with open(args.out, "w") as fh:
            json.dump(report, fh, indent=1)
        if args.breakdown:
            report["breakdown"] = diagnostics().breakdown(args, dtype, g_dtype)
            with open(args.out, "w") as fh:
                json.dump(report, fh, indent=1)
        return 0

    if args.check_T:
        try:
            report["check"] = cross_check(args, fla_gla, dtype, g_dtype)
            print("check:", json.dumps(report["check"]), flush=True)
        except Exception as e:
            report["check"] = {"error": f"{type(e).__name__}: {e}"}
            traceback.print_exc()
        free()

    wanted = set(m.strip() for m in args.methods.split(",") if m.strip())
    methods = {n: f for n, f in make_methods(args, fla_gla).items() if n in wanted}
    smethods = {} if args.no_sdpa else {n: f for n, f in sdpa_methods(args).items() if n in wanted}
    W, R = args.warmup, args.rep

    for T in Ts:
        row = {"T": T}
        print(f"T={T}", flush=True)
        q, k, v, g = make_inputs(args.B, T, args.H, args.K, args.V, dtype, g_dtype)
        for name, f in methods.items():
            with torch.no_grad():
                timed(row, f"{name}_fwd", lambda: bench(lambda: f(q, k, v, g), W, R))
                if T <= args.graph_max_T:
                    timed(row, f"{name}_fwd_graph", lambda: bench_graph(lambda: f(q, k, v, g), W, R))
        q = k = v = g = None  # not `del`: the lambdas above refer to them
        free()
        if not args.no_bwd:
            inputs = make_inputs(args.B, T, args.H, args.K, args.V, dtype, g_dtype, requires_grad=True)
            do = torch.randn(args.B, T, args.H, args.V, device="cuda", dtype=dtype)
            for name, f in methods.items():
                fb = fwd_bwd_fn(f, inputs, do)
                timed(row, f"{name}_fwdbwd", lambda: bench(fb, W, R))
                if T <= args.graph_max_T:
                    timed(row, f"{name}_fwdbwd_graph", lambda: bench_graph(fb, W, R))
            del inputs, do
            free()
        for name, f in smethods.items():
            if T <= args.sdpa_max_T:
                sq, sk, sv = sdpa_inputs(args.B, T, args.H, args.kv_heads, args.K, dtype)
                with torch.no_grad():
                    timed(row, f"{name}_fwd", lambda: bench(lambda: f(sq, sk, sv), W, R))
                del sq, sk, sv
                free()
            if not args.no_bwd and T <= args.sdpa_bwd_max_T:
                si = sdpa_inputs(args.B, T, args.H, args.kv_heads, args.K, dtype, requires_grad=True)
                sdo = torch.randn(args.B, args.H, T, args.K, device="cuda", dtype=dtype)
                timed(row, f"{name}_fwdbwd", lambda: bench(fwd_bwd_fn(f, si, sdo), W, R))
                del si, sdo
                free()
        if row.get("ours_fwd") and row.get("fla64_fwd"):
            row["ratio_fwd_ours_over_fla64"] = row["ours_fwd"] / row["fla64_fwd"]
        if row.get("ours_fwdbwd") and row.get("fla64_fwdbwd"):
            row["ratio_fwdbwd_ours_over_fla64"] = row["ours_fwdbwd"] / row["fla64_fwdbwd"]
        print("  row: " + json.dumps(row), flush=True)
        report["rows"].append(row)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as fh:
            json.dump(report, fh, indent=1)

    if args.breakdown:
        try:
            report["breakdown"] = diagnostics().breakdown(args, dtype, g_dtype)
        except Exception as e:
            report["breakdown"] = {"error": f"{type(e).__name__}: {e}"}
            traceback.print_exc()
        with open(args.out, "w") as fh:
            json.dump(report, fh, indent=1)

    print_table(report)
    return 0


def print_table(report):
    rows = report["rows"]
    m = report["meta"]
    print(f"\nnormalized GLA, {m['device']}, B={m['B']} H={m['H']} K={m['K']} V={m['V']} {m['dtype']}, "
          f"median ms (do_bench); 'x' = ours / fla64")
    cols = [
        ("T", None), ("ours", "ours_fwd"), ("fla64", "fla64_fwd"), ("fla65", "fla65_fwd"),
        ("x", "ratio_fwd_ours_over_fla64"),
        ("flash", "flash_fwd"), ("cudnn", "cudnn_fwd"),
        ("ours fb", "ours_fwdbwd"), ("fla64 fb", "fla64_fwdbwd"), ("fla65 fb", "fla65_fwdbwd"),
        ("x fb", "ratio_fwdbwd_ours_over_fla64"),
        ("ours g", "ours_fwd_graph"), ("fla64 g", "fla64_fwd_graph"), ("fla65 g", "fla65_fwd_graph"),
        ("ours fb g", "ours_fwdbwd_graph"), ("fla64 fb g", "fla64_fwdbwd_graph"),
    ]
    present = [c for c in cols if c[1] is None or any(r.get(c[1]) is not None for r in rows)]
    header = " | ".join(f"{c[0]:>9}" for c in present)
    print(header)
    print("-" * len(header))
    for r in rows:
        cells = []
        for name, key in present:
            if key is None:
                t = r["T"]
                cells.append(f"{(str(t // 1024) + 'K') if t % 1024 == 0 else str(t):>9}")
            else:
                cells.append(f"{format_ms(r.get(key)):>9}")
        print(" | ".join(cells))
    if "check" in report:
        print("check:", json.dumps(report["check"]))
    skipped = {r["T"]: r["skipped"] for r in rows if r.get("skipped")}
    if skipped:
        print("skipped (time budget):", json.dumps(skipped)[:1000])
    errs = {r["T"]: r["errors"] for r in rows if r.get("errors")}
    if errs:
        print("errors:", json.dumps(errs)[:2000])
    print("fb = forward+backward, g = CUDA-graph replay; fla65 = chunk_gla on [v, 1] then the division")


if __name__ == "__main__":
    sys.exit(main())
