"""Where a stage-1 step spends its time: torch.profiler over a few steps, the top operators by device time.

    python benchmarks/profile_stage1.py --length 1162 --batch-size 8 --gla-backend triton --out prof.json
    python benchmarks/profile_stage1.py --teacher random:smollm2-135m --tokenizer DIR ...   # no GGUF needed

results/stage1-throughput/h200-2026-12-01 found the fused step (all layers as one wide layer) at 2.45x the
teacher's forward while dispatching fewer operators than it, so the remainder is device work; this lists which
(self CUDA time per operator, summed over the profiled steps, and the share of the step). On a CPU it profiles
CPU time instead (the plumbing check; the figures mean nothing for a GPU).
"""
import argparse
import json

import torch
from profiling import profile_ops
from stage1_setup import stage1_setup

from lawcat.distill.stage1 import attention_transfer_step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", default="default")
    ap.add_argument("--tokenizer", default=None, help="tokenizer folder for a random: teacher")
    ap.add_argument("--length", type=int, default=1162)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--layer-group", type=int, default=0)
    ap.add_argument("--gla-backend", default="auto")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    teacher, student, tok, batch, params, ac, device = stage1_setup(a.teacher, a.tokenizer, a.length,
                                                                    a.batch_size, a.gla_backend)
    n = float(batch["attention_mask"].sum())

    def step():
        for p in params:
            p.grad = None
        attention_transfer_step(student, batch, 1000.0, n, ac, layer_group=a.layer_group)

    cuda = device.type == "cuda"
    attr, events, total = profile_ops(step, a.steps, cuda)
    top = sorted(events, key=lambda e: getattr(e, attr), reverse=True)[:a.top]
    rows = [{"op": e.key, "calls": e.count, "ms_per_step": getattr(e, attr) / 1000 / a.steps,
             "share": getattr(e, attr) / total} for e in top]
    res = {"device": torch.cuda.get_device_name() if cuda else "cpu", "time": attr, "layer_group": a.layer_group,
           "gla_backend": a.gla_backend, "tokens": int(n), "ms_per_step_total": total / 1000 / a.steps, "top": rows}
    for r in rows:
        print(f"{r['ms_per_step']:9.3f} ms  {100 * r['share']:5.1f} %  x{r['calls'] // a.steps:<5d} {r['op'][:90]}")
    print(f"{res['ms_per_step_total']:9.3f} ms per step in all ({attr})")
    if a.out:
        json.dump(res, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
