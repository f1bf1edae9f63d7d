"""The student's graphed decode step with the fused decode kernel (lawcat.ops.triton_decode) and without it,
timed side by side: two CUDA graphs of the same model and cache, replayed in alternating rounds, so the ratio is
one run's and drift falls on both alike. Also the step's floor (weights and state read once at the run's copy
bandwidth) and the step under torch.compile if asked.

    python benchmarks/decode_fused_ab.py llama-3.2-1b --context 1024 --batches 1,16 --out ab.json

CUDA only (a CUDA graph per variant). LAWCAT_FUSED_DECODE is read at every layer call, so each graph captures the
path that was on when it was captured.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics

import torch

from lawcat.bench.harness import load_pair
from lawcat.bench.measure import cache_nbytes
from lawcat.bench.timing import copy_bandwidth
from lawcat.machine import machine_info
from lawcat.models.graph_decode import StaticDecoder
from lawcat.ops import triton_decode


def _decoder(student, ids, fused: bool) -> StaticDecoder:
    """A graphed decoder captured with the fused kernel on or off; checks the capture took the path asked for (a
    silent fallback would time the same step twice and read as "no gain")."""
    calls = []
    real = triton_decode.decode_step
    triton_decode.decode_step = lambda *a, **kw: calls.append(1) or real(*a, **kw)
    os.environ["LAWCAT_FUSED_DECODE"] = "1" if fused else "0"
    try:
        with torch.no_grad():
            _, cache = student.prefill(ids)
            dec = StaticDecoder(student, cache)  # captured now, with the path the variable selects
    finally:
        os.environ.pop("LAWCAT_FUSED_DECODE")
        triton_decode.decode_step = real
    if bool(calls) != fused:
        raise SystemExit(f"the {'fused' if fused else 'unfused'} decoder made {len(calls)} fused kernel calls")
    return dec


def _time_round(dec: StaticDecoder, token, steps: int) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(steps):
        dec.step(token)
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / steps


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("arch", help="a named architecture (random weights), e.g. llama-3.2-1b")
    p.add_argument("--context", type=int, default=1024)
    p.add_argument("--batches", default="1")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--steps", type=int, default=50, help="replays per variant per round")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("decode_fused_ab.py needs a CUDA device")
    dtype = getattr(torch, args.dtype)
    teacher, student, info = load_pair(arch=args.arch, device="cuda", dtype=dtype, gla_backend="triton")
    del teacher
    student.eval()
    weights = sum(t.numel() * t.element_size() for t in student.parameters())
    bw = copy_bandwidth("cuda")["bytes_per_s"]
    result = {"arch": args.arch, "dtype": args.dtype, "context": args.context, "machine": machine_info(),
              "copy_bytes_per_s": bw, "weights_bytes": weights, "batches": {}}
    for B in (int(b) for b in args.batches.split(",")):
        ids = torch.randint(0, student.config.vocab_size, (B, args.context), device="cuda")
        token = torch.randint(0, student.config.vocab_size, (B,), device="cuda")
        decs = {"fused": _decoder(student, ids, True), "unfused": _decoder(student, ids, False)}
        for dec in decs.values():
            _time_round(dec, token, 10)  # warm-up replays
        times = {name: [] for name in decs}
        for _ in range(args.rounds):
            for name, dec in decs.items():
                times[name].append(_time_round(dec, token, args.steps))
        state = cache_nbytes(decs["fused"].cache)
        floor_ms = (weights + state) / bw * 1e3
        rec = {name: {"median_ms": statistics.median(v), "min_ms": min(v), "max_ms": max(v), "rounds_ms": v}
               for name, v in times.items()}
        rec.update(state_bytes=state, floor_ms=floor_ms,
                   speedup=rec["unfused"]["median_ms"] / rec["fused"]["median_ms"],
                   fused_x_floor=rec["fused"]["median_ms"] / floor_ms,
                   unfused_x_floor=rec["unfused"]["median_ms"] / floor_ms)
        result["batches"][str(B)] = rec
        print(f"batch {B}, context {args.context}: fused {rec['fused']['median_ms']:.3f} ms/step "
              f"({rec['fused_x_floor']:.2f}x floor), unfused {rec['unfused']['median_ms']:.3f} "
              f"({rec['unfused_x_floor']:.2f}x floor): {rec['speedup']:.2f}x; floor {floor_ms:.3f} ms", flush=True)
        del decs
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
