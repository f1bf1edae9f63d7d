"""Stage-1 throughput against the teacher's forward-only throughput on the same batches.

    python benchmarks/stage1_throughput.py --teacher default --length 1162 --batch-size 8 --steps 20 --out t.json

Both are timed with CUDA events after warm-up, bf16 autocast, on identical padded batches of passkey samples.
The teacher figure is a plain forward (no lm_head loss, logits of the last position only).
"""
import argparse
import json
import time

import torch

from lawcat import LawcatConfig, linearize, load_teacher
from lawcat.data import BatchIterator, encode_all, make_samples, pad_token_id
from lawcat.distill.stage1 import attention_transfer_step


def timed(fn, steps, device):
    for _ in range(3):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(steps):
            fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1000 / steps
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", default="default")
    ap.add_argument("--length", type=int, default=1162)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    teacher, tok = load_teacher(a.teacher, device=device)
    student = linearize(teacher, LawcatConfig())
    student.requires_grad_(False)
    for p in student.lawcat_parameters():
        p.requires_grad_(True)
    samples = make_samples("passkey", tok, a.length, a.batch_size, seed=0, purpose="train")
    batch = next(iter(BatchIterator(encode_all(tok, samples), a.batch_size, pad_token_id(tok), epochs=1)))
    batch = {k: v.to(device) for k, v in batch.items()}
    n_tok = int(batch["attention_mask"].sum())
    ac = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if device.type == "cuda" else None
    import contextlib
    ac = ac or contextlib.nullcontext

    def teacher_fwd():
        with torch.no_grad(), ac():
            teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=1)

    def stage1():
        for p in student.lawcat_parameters():
            p.grad = None
        attention_transfer_step(student, batch, 1000.0, float(n_tok), ac, True)

    t_teacher, t_stage1 = timed(teacher_fwd, a.steps, device), timed(stage1, a.steps, device)
    res = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "batch_size": a.batch_size,
           "tokens_per_batch": n_tok, "teacher_forward_tok_s": n_tok / t_teacher, "stage1_tok_s": n_tok / t_stage1,
           "stage1_over_teacher": t_teacher / t_stage1}
    print(json.dumps(res, indent=2))
    if a.out:
        json.dump(res, open(a.out, "w"), indent=2)


if __name__ == "__main__":
    main()
