"""Where the fused stage-1 step's time goes, part by part, and what the candidate rewrites of each part cost.

    python benchmarks/stage1_parts.py --teacher default --length 1162 --batch-size 8 --out parts.json
    python benchmarks/stage1_parts.py --teacher random:smollm2-135m --tokenizer DIR ...   # no GGUF needed

On one padded batch of passkey samples, CUDA events, bf16 autocast, median of --steps runs after warm-up:
  teacher_pass      the no-grad teacher half of a fused step (every layer's teacher_step, what stage 1 collects)
  student_<impl>    the LAWCAT half, forward + backward of the loss: eager with the cuDNN conv, eager with the
                    shift conv, and torch.compile (shift conv, GLA kernel opaque)
  conv_<impl>, hedgehog, gate, gla_<backend>   single pieces at the fused shape, forward + backward
The sum teacher_pass + student_x is what a step of that kind costs, next to the teacher's plain forward.
"""
import argparse
import json
import statistics
import time
from functools import partial

import torch
from stage1_setup import stage1_setup

from lawcat.distill.stage1 import _compiled_student, _embed, _squared_error
from lawcat.layers.attention import stack_weights, stacked_linear_attention
from lawcat.layers.feature_map import hedgehog
from lawcat.layers.gate import stacked_gate
from lawcat.ops.conv import causal_conv1d
from lawcat.ops.gla import normalized_gla


def median_seconds(fn, steps: int, device) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(steps):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1000)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fwd_bwd(fn, *leaves):
    """Forward and backward of sum(fn(*leaves)) (the backward is what training pays)."""
    def run():
        for x in leaves:
            x.grad = None
        out = fn(*leaves)
        out.float().sum().backward()
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", default="default")
    ap.add_argument("--tokenizer", default=None)
    ap.add_argument("--length", type=int, default=1162)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--gla-backends", default="triton", help="comma list; fla may autotune for minutes")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    teacher, student, tok, batch, params, ac, device = stage1_setup(a.teacher, a.tokenizer, a.length,
                                                                    a.batch_size, a.gla_backends.split(",")[0])
    n = float(batch["attention_mask"].sum())
    cuda = device.type == "cuda"
    layers = list(student.model.layers)
    attns = [layer.self_attn for layer in layers]

    def teacher_pass():
        h, rope, pad_mask = _embed(student, batch, ac)
        xs, qs, ks, vs, targets = [], [], [], [], []
        with torch.no_grad(), ac():
            for layer in layers:
                h, x, (q, k, v), target = layer.teacher_step(h, pad_mask, rope)
                xs.append(x), qs.append(q), ks.append(k), vs.append(v), targets.append(target)
            return xs, qs, ks, vs, torch.stack(targets, dim=2), pad_mask, rope

    xs, qs, ks, vs, target, pad_mask, rope = teacher_pass()
    res = {"device": torch.cuda.get_device_name() if cuda else "cpu", "teacher": a.teacher,
           "batch_size": a.batch_size, "tokens": n, "heads_fused": sum(m.num_heads for m in attns), "s": {}}

    def record(name, fn):
        try:
            res["s"][name] = median_seconds(fn, a.steps, device)
        except Exception as e:  # one part failing (a compile error, say) must not hide the others
            res["s"][name] = None
            res.setdefault("errors", {})[name] = f"{type(e).__name__}: {e}"[:500]
        print(f"{name:>24}: {res['s'][name]}", flush=True)

    def with_grad_zero(fn):
        def run():
            for p in params:
                p.grad = None
            fn()
        return run

    def student_side(impl):
        def run():
            with ac():
                pred = impl(attns, xs, qs, ks, vs, pad_mask, rope)
                loss = _squared_error(pred, target, batch["attention_mask"]) / n * 1000.0
            loss.backward()
        return with_grad_zero(run)

    with torch.no_grad(), ac():
        record("teacher_forward", lambda: teacher(input_ids=batch["input_ids"],
                                                  attention_mask=batch["attention_mask"], logits_to_keep=1))
    record("teacher_pass", teacher_pass)
    record("student_eager_conv", student_side(stacked_linear_attention))
    record("student_eager_shift", student_side(partial(stacked_linear_attention, conv_impl="shift")))
    if not a.no_compile:
        t0 = time.perf_counter()
        record("student_compiled", student_side(_compiled_student()))
        res["compile_and_time_s"] = time.perf_counter() - t0

    # Single pieces at the fused shape (leaves that require grad, as the real step's inputs would).
    w = stack_weights([m.weights() for m in attns])
    q = torch.cat(qs, dim=2).detach()
    B, T, H, D = q.shape
    qf = q.reshape(B, T, -1).clone().requires_grad_(True)
    cw = w.conv_q.detach().clone().requires_grad_(True)
    for impl in ("conv", "shift"):
        record(f"conv_{impl}", fwd_bwd(lambda x, wt, impl=impl: causal_conv1d(x, wt, None, impl)[0], qf, cw))
    qh = q.clone().requires_grad_(True)
    mw = w.map_q.detach().clone().requires_grad_(True)
    with ac():
        record("hedgehog", fwd_bwd(lambda x, wt: hedgehog(x, wt), qh, mw))
    gx = torch.stack(xs, dim=2).detach()
    with ac():
        record("gate", with_grad_zero(lambda: stacked_gate([m.gate for m in attns], gx).sum().backward()))
    with torch.no_grad(), ac():
        fq = hedgehog(q, w.map_q)
        kk = torch.cat(ks, dim=2).repeat_interleave(H // w.num_kv_heads, dim=2)
        fk = hedgehog(kk, w.map_k)
        vv = torch.cat(vs, dim=2).repeat_interleave(H // w.num_kv_heads, dim=2)
        g = stacked_gate([m.gate for m in attns], gx)
    leaves = [t.detach().clone().requires_grad_(True) for t in (fq, fk, vv, g)]
    for backend in a.gla_backends.split(","):
        record(f"gla_{backend}", fwd_bwd(lambda *t, b=backend: normalized_gla(*t, backend=b)[0], *leaves))
    s = res["s"]
    for kind in ("student_eager_conv", "student_eager_shift", "student_compiled"):
        if s.get(kind) and s.get("teacher_pass"):
            res[f"step_{kind}_over_teacher_forward"] = s["teacher_forward"] / (s["teacher_pass"] + s[kind])
    print(json.dumps(res, indent=2))
    if a.out:
        json.dump(res, open(a.out, "w"), indent=2)


if __name__ == "__main__":
    main()
