"""bench_norm_gla.py's diagnostics of lawcat's own kernel: per-kernel device time with registers and spills
(--breakdown T), and a sweep of launch configurations and paths (--tune T). Run through bench_norm_gla.py."""
import json
import sys

import torch
from bench_norm_gla import _import_normalized_gla, bench, free, fwd_bwd_fn, make_inputs

from lawcat.bench.tables import format_ms


def breakdown(args, dtype, g_dtype):
    from torch.profiler import ProfilerActivity, profile

    normalized_gla = _import_normalized_gla()
    T = args.breakdown
    q, k, v, g = make_inputs(args.B, T, args.H, args.K, args.V, dtype, g_dtype, requires_grad=True)
    do = torch.randn(args.B, T, args.H, args.V, device="cuda", dtype=dtype)
    for _ in range(3):
        o, _ = normalized_gla(q, k, v, g)
        o.backward(do)
    torch.cuda.synchronize()
    n = 10
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(n):
            o, _ = normalized_gla(q, k, v, g)
            o.backward(do)
        torch.cuda.synchronize()
    rows = {}
    for e in prof.key_averages():
        t = getattr(e, "device_time_total", None)
        if t is None:
            t = getattr(e, "cuda_time_total", 0.0)
        if t and e.count:
            rows[e.key] = {"ms_per_call": t / 1000.0 / n, "calls_per_iter": e.count / n}
    print(f"\nper-kernel device time of ours (fwd+bwd), T={T}:")
    for name, r in sorted(rows.items(), key=lambda kv: -kv[1]["ms_per_call"])[:15]:
        print(f"  {r['ms_per_call']:9.3f} ms  x{r['calls_per_iter']:.0f}  {name[:90]}")
    res = {}
    try:  # registers / spills of the compiled kernels (triton internals; best effort)
        kmod = sys.modules["lawcat.ops.triton_norm_gla._kernels"]
        for name in dir(kmod):
            fn = getattr(kmod, name)
            caches = getattr(fn, "device_caches", None)
            if not caches:
                continue
            for dev, entry in caches.items():
                cache = entry[0] if isinstance(entry, tuple) else entry
                for key, ck in cache.items():
                    res.setdefault(name, []).append({"regs": getattr(ck, "n_regs", None),
                                                     "spills": getattr(ck, "n_spills", None),
                                                     "shared": getattr(getattr(ck, "metadata", None), "shared", None)})
        for name, lst in res.items():
            print(f"  {name}: " + ", ".join(f"regs={d['regs']} spills={d['spills']} smem={d['shared']}" for d in lst))
    except Exception as e:
        print(f"  (no register report: {type(e).__name__}: {e})")
    return {"T": T, "kernels": rows, "compiled": res}


TUNE_CONFIGS = [
    {},
    {"bwd_grad_warps": 8},
    {"fwd_out_warps": 8},
    {"programs_per_sm": 4},
    {"programs_per_sm": 16},
    {"num_stages": 2},
    {"factor_range": 30.0},   # the block path, blocks factored (what chunks with strong decays take)
    {"factor_range": -1.0},   # the block path, every block pair by pair (the slowest exact case)
]


def tune(args, dtype, g_dtype):
    normalized_gla = _import_normalized_gla()
    ops = sys.modules["lawcat.ops.triton_norm_gla.ops"]
    saved = dict(ops.CONFIG)
    T = args.tune
    q, k, v, g = make_inputs(args.B, T, args.H, args.K, args.V, dtype, g_dtype, requires_grad=True)
    do = torch.randn(args.B, T, args.H, args.V, device="cuda", dtype=dtype)
    out = []
    print(f"\ntuning ours at T={T}: fwd / fwd+bwd median ms")
    for cfg in TUNE_CONFIGS:
        ops.CONFIG.clear()
        ops.CONFIG.update(saved)
        ops.CONFIG.update(cfg)
        rec = {"config": cfg}
        try:
            with torch.no_grad():
                rec["fwd"] = bench(lambda: normalized_gla(q, k, v, g), args.warmup, args.rep)
            rec["fwdbwd"] = bench(fwd_bwd_fn(lambda *a: normalized_gla(*a)[0], [q, k, v, g], do), args.warmup, args.rep)
        except Exception as e:
            rec["error"] = f"{type(e).__name__}: {str(e)[:200]}"
        print(f"  {format_ms(rec.get('fwd')):>8} {format_ms(rec.get('fwdbwd')):>8}  "
              f"{json.dumps(cfg)} {rec.get('error', '')}", flush=True)
        out.append(rec)
        free()
    ops.CONFIG.clear()
    ops.CONFIG.update(saved)
    return {"T": T, "results": out}
