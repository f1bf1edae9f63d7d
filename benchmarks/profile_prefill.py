"""Where a student's prefill spends its time: torch.profiler over a few prefills, operators by device time.

    python benchmarks/profile_prefill.py llama-3.2-1b --length 16384 --gla-backend triton --out prof.json
    python benchmarks/profile_prefill.py smollm2-135m --length 512 --device cpu          # the plumbing, on a CPU

`lawcat bench` on the Llama-3.2-1B shape (results/bench/h200-llama-3.2-1b-2026-12-02) found the student's prefill
at 32.6 % matmul utilisation at every length from 8K, against the teacher's 56-59 %: the time goes outside the
projections and the MLP. This lists where (self device time per operator, summed over the profiled prefills, its
share of the total) and groups it: matmul (the teacher's own products), gla (the linear-attention kernel), front
(conv and feature map) and the rest (gate, masks, casts, copies). LAWCAT_FUSED_FRONT=0 profiles the unfused front.
On a CPU it profiles CPU time (the figures mean nothing for a GPU).
"""
import argparse
import json

import torch
from profiling import profile_ops, wall_ms_per_run

from lawcat import LawcatConfig, linearize
from lawcat.bench.measure import random_ids
from lawcat.models.architectures import build_random_model

# operator-name fragments of each group (aten op names on CPU; kernel names on CUDA)
GROUPS = {
    "matmul": ("gemm", "mm", "matmul", "linear", "cutlass", "sm90_xmma", "nvjet", "cublas"),
    "gla": ("chunk_", "gla", "_fwd_out_kernel", "_fwd_local_kernel", "_seg_scan_kernel", "recurrent"),
    "front": ("_conv_map_kernel", "conv", "softmax"),  # conv + feature map, fused (lawcat.ops.triton_front) or not
}


def group_of(name: str) -> str:
    low = name.lower()
    for group, parts in GROUPS.items():
        if any(p in low for p in parts):
            return group
    return "other"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("arch", help="a named architecture (random weights), e.g. llama-3.2-1b")
    ap.add_argument("--length", type=int, default=16384)
    ap.add_argument("--chunk-size", type=int, default=8192)
    ap.add_argument("--gla-backend", default="auto")
    ap.add_argument("--preset", default="lawcat")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    device = torch.device(a.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    teacher = build_random_model(a.arch, device, dtype, 0)
    student = linearize(teacher, LawcatConfig.from_preset(a.preset, gla_backend=a.gla_backend)).eval()
    ids = random_ids(teacher.config.vocab_size, 1, a.length, device, 0)

    def run():
        with torch.no_grad():
            student.prefill(ids, chunk_size=a.chunk_size)

    cuda = device.type == "cuda"
    attr, events, total = profile_ops(run, a.runs, cuda)
    wall_ms = wall_ms_per_run(run, a.runs, cuda)
    groups: dict[str, float] = {}
    for e in events:
        groups[group_of(e.key)] = groups.get(group_of(e.key), 0.0) + getattr(e, attr)
    top = sorted(events, key=lambda e: getattr(e, attr), reverse=True)[:a.top]
    rows = [{"op": e.key, "group": group_of(e.key), "calls_per_run": e.count / a.runs,
             "ms_per_run": getattr(e, attr) / 1000 / a.runs, "share": getattr(e, attr) / total} for e in top]
    res = {"device": torch.cuda.get_device_name() if cuda else "cpu", "time": attr, "arch": a.arch,
           "length": a.length, "chunk_size": a.chunk_size, "gla_backend": a.gla_backend, "preset": a.preset,
           "ms_per_run_total": total / 1000 / a.runs,
           # wall time of an unprofiled prefill: what it exceeds the summed device time by is launch and host work
           "wall_ms_per_run": wall_ms, "ops_per_run": sum(e.count for e in events) / a.runs,
           "groups": {g: {"ms_per_run": t / 1000 / a.runs, "share": t / total} for g, t in sorted(groups.items())},
           "top": rows}
    for r in rows:
        print(f"{r['ms_per_run']:9.3f} ms  {100 * r['share']:5.1f} %  {r['group']:6s} x{r['calls_per_run']:<6.0f} "
              f"{r['op'][:90]}")
    for g, v in res["groups"].items():
        print(f"{g:6s} {v['ms_per_run']:9.3f} ms per prefill ({100 * v['share']:.1f} %)")
    print(f"{res['ms_per_run_total']:9.3f} ms per prefill of {a.length} tokens in all ({attr}); "
          f"{wall_ms:.3f} ms wall unprofiled; {res['ops_per_run']:.0f} operators with self time per prefill "
          "(kernels on CUDA)")
    if a.out:
        json.dump(res, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
