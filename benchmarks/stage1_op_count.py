"""How many PyTorch operators one stage-1 step dispatches, against the teacher's forward (CPU is enough).

    python benchmarks/stage1_op_count.py --length 128 --batch-size 2 --out ops.json

Both stage-1 forms are counted: layer by layer (stage1.layer_group=1) and all layers fused into one wide
layer (layer_group=0, the default).

At the default teacher's size a stage-1 step on the GPU is launch-bound (results/passkey/h200-run1: 12.5 % of
the teacher's forward throughput), so the number of operators dispatched per step is the quantity to cut. It
does not depend on the device, so it can be measured and improved here. "without GLA internals" replaces the
GLA op by one opaque autograd function, as a fused kernel (fla or lawcat's Triton kernel) looks from Python;
only aten operators called from Python (not from inside other aten operators) are counted.
"""
import argparse
import collections
import json

import torch
from torch.profiler import ProfilerActivity, profile

import lawcat.layers.attention as attention_module
from lawcat import LawcatConfig, linearize, load_teacher
from lawcat.data import BatchIterator, encode_all, make_samples, pad_token_id
from lawcat.distill.stage1 import attention_transfer_step


class OpaqueGLA(torch.autograd.Function):
    """Stands in for one fused GLA kernel: one op forward, one op backward."""

    @staticmethod
    def forward(ctx, q, k, v, g):
        return v.clone(), torch.zeros(q.shape[0], q.shape[2], q.shape[3], v.shape[3] + 1)

    @staticmethod
    def backward(ctx, d_out, d_state):
        return None, None, d_out, None


def opaque_gla(q, k, v, g, *args, **kwargs):
    return OpaqueGLA.apply(q, k, v, g)


def count_ops(fn) -> collections.Counter:
    fn()  # warm-up: lazy initialisation must not be counted
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    top = [e for e in prof.events()
           if e.name.startswith("aten::") and (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::"))]
    return collections.Counter(e.name for e in top)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", default="default")
    ap.add_argument("--length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    teacher, tok = load_teacher(a.teacher)
    student = linearize(teacher, LawcatConfig())
    student.requires_grad_(False)
    for p in student.lawcat_parameters():
        p.requires_grad_(True)
    samples = make_samples("passkey", tok, a.length, a.batch_size, seed=0, purpose="train")
    batch = next(iter(BatchIterator(encode_all(tok, samples), a.batch_size, pad_token_id(tok), epochs=1)))
    n = float(batch["attention_mask"].sum())
    layers = teacher.config.num_hidden_layers
    with torch.no_grad():
        teacher_ops = count_ops(lambda: teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                                logits_to_keep=1))
    res = {"layers": layers, "teacher_forward_ops": sum(teacher_ops.values())}
    real_gla = attention_module.normalized_gla
    for group, label in ((1, "per_layer"), (0, "fused")):  # layer_group 1: one layer at a time; 0: all at once
        step = lambda: attention_transfer_step(student, batch, 1000.0, n, layer_group=group)  # noqa: E731
        full = count_ops(step)
        attention_module.normalized_gla = opaque_gla
        try:
            fused = count_ops(step)
        finally:
            attention_module.normalized_gla = real_gla
        res[label] = {"stage1_ops": sum(full.values()), "stage1_ops_without_gla_internals": sum(fused.values()),
                      "stage1_ops_per_layer_without_gla_internals": sum(fused.values()) / layers,
                      "most_common_without_gla_internals": fused.most_common(20)}
    print(json.dumps(res, indent=1))
    if a.out:
        json.dump(res, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
