"""Training throughput of both stages against the teacher's forward-only throughput on the same batches.

    python benchmarks/stage1_throughput.py --teacher default --length 1162 --batch-size 8 --steps 20 --out t.json
    python benchmarks/stage1_throughput.py --gla-backends auto,triton --out t.json   # fla vs lawcat's Triton kernel
    python benchmarks/stage1_throughput.py --layer-groups 0,1 --out t.json          # all layers fused vs one by one
    python benchmarks/stage1_throughput.py --teacher random:smollm2-135m --tokenizer DIR   # no GGUF needed
    python benchmarks/stage1_throughput.py --gla-backends triton --compile both --out t.json   # eager and compiled
    python benchmarks/stage1_throughput.py --cuda-graph both --teacher-graph --out t.json  # stage 1 replayed from
                                                 # CUDA graphs; also the teacher's forward as a CUDA graph, for scale
    python benchmarks/stage1_throughput.py --gate-logit -300 ...   # gates as strong as training makes them

All three are timed with CUDA events after warm-up, bf16 autocast on CUDA, on one identical padded batch of passkey
samples: the teacher's plain forward (logits of the last position only), a stage-1 step (attention transfer;
--layer-groups picks how many layers run as one fused pass, 0 = all) and a stage-2 step (LoRA, full forward +
backward, next-token loss). The seconds per step also size a time-boxed run (benchmarks/gpu/plan_steps.py). With
several --gla-backends or --layer-groups, stage 1 is timed once per pair and stage 2 once per backend (the first of
each is the headline; all of them go under "by_backend", keyed "<backend>" for stage 2 and "<backend>/group<G>" for
stage 1, with "/compiled" appended for stage 1 under torch.compile: --compile on|off|both, fused groups only, and
"/graph" for stage 1 replayed from CUDA graphs: --cuda-graph on|off|both, all layers fused,
lawcat.distill.stage1_graph; with on or both, stage 2 is also timed replayed from CUDA graphs, as "stage2_graph"
under its backend).
Stage 1 runs as training runs it: right-padded batches, layers unmasked (lawcat.distill.stage1._embed).
"""
import argparse
import contextlib
import json
import time
from functools import partial

import torch

from lawcat import LawcatConfig, linearize, load_teacher
from lawcat.cuda_graphs import warm_up_on_side_stream
from lawcat.data import BatchIterator, encode_all, make_samples, pad_token_id
from lawcat.distill.stage1 import attention_transfer_step
from lawcat.distill.stage1_graph import GraphedStage1
from lawcat.distill.stage2 import GraphedStage2, stage2_loss
from lawcat.models.lora import add_lora, lora_parameters


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


def graphed(fn):
    """fn (no arguments, CUDA work only) captured once in a CUDA graph; returns its replay."""
    warm_up_on_side_stream(fn, 2)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", default="default")
    ap.add_argument("--length", type=int, default=1162)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out", default=None)
    ap.add_argument("--gla-backends", default="auto", help="comma list of auto (fla on CUDA), triton, reference")
    ap.add_argument("--layer-groups", default="0", help="comma list of stage-1 layer groups (0 = all layers fused)")
    ap.add_argument("--tokenizer", default=None, help="tokenizer folder for a random: teacher (else the default's)")
    ap.add_argument("--compile", default="off", choices=("off", "on", "both"),
                    help="stage 1's fused LAWCAT side through torch.compile (stage1.compile)")
    ap.add_argument("--cuda-graph", default="off", choices=("off", "on", "both"),
                    help="stage 1 replayed from CUDA graphs (stage1.cuda_graph; CUDA only, all layers fused)")
    ap.add_argument("--teacher-graph", action="store_true",
                    help="also time the teacher's forward captured in a CUDA graph (no launch overhead)")
    ap.add_argument("--gate-logit", type=float, default=None,
                    help="set every gate's bias to this logit (e.g. -300: g = logsigmoid(-300) / 16 = -19 per step, "
                         "as trained gates reach): timings at trained-like gates instead of the initial ones")
    a = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    teacher, tok = load_teacher(a.teacher, device=device, tokenizer_dir=a.tokenizer)
    student = linearize(teacher, LawcatConfig())
    if a.gate_logit is not None:
        with torch.no_grad():
            for layer in student.model.layers:
                layer.self_attn.gate.up.bias.fill_(a.gate_logit)
    add_lora(student)  # B = 0: stage 1 is unchanged by it, exactly as in a real run
    student.requires_grad_(False)
    samples = make_samples("passkey", tok, a.length, a.batch_size, seed=0, purpose="train")
    batch = next(iter(BatchIterator(encode_all(tok, samples), a.batch_size, pad_token_id(tok), epochs=1)))
    batch = {k: v.to(device) for k, v in batch.items()}
    n_tok = int(batch["attention_mask"].sum())
    n_labels = float((batch["labels"][:, 1:] != -100).sum())
    ac = partial(torch.autocast, device.type, dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext

    def teacher_fwd():
        with torch.no_grad(), ac():
            teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=1)

    def train_step(params, loss):
        def step():
            for p in params:
                p.grad = None
            loss()
        return step

    s1_params = student.lawcat_parameters()
    s2_params = lora_parameters(student) + s1_params
    for p in s2_params:
        p.requires_grad_(True)
    t_teacher = timed(teacher_fwd, a.steps, device)
    t_teacher_graph = timed(graphed(teacher_fwd), a.steps, device) if a.teacher_graph else None
    by_backend = {}
    groups = [int(g) for g in a.layer_groups.split(",")]
    for backend in a.gla_backends.split(","):
        student.config.gla_backend = backend  # the layers read it from the shared config at each call
        t2 = timed(train_step(s2_params, lambda: stage2_loss(student, ac, batch, n_labels, True)), a.steps, device)
        by_backend[backend] = {"stage2_tok_s": n_tok / t2, "s_per_step": {"stage2": t2}}
        if a.cuda_graph != "off":  # stage 2 replayed from CUDA graphs too ("stage2_graph")
            step2 = GraphedStage2(student, s2_params, ac, pad_id=pad_token_id(tok))
            try:
                t2g = timed(train_step(s2_params, partial(step2, batch, n_labels)), a.steps, device)
                by_backend[backend]["s_per_step"]["stage2_graph"] = t2g
                by_backend[backend]["stage2_graph_tok_s"] = n_tok / t2g
            except Exception as e:  # recorded, not hidden
                by_backend[backend]["stage2_graph_error"] = f"{type(e).__name__}: {e}"
                print(f"{backend} stage 2 graph: {by_backend[backend]['stage2_graph_error']}")
            finally:
                step2.release()
        modes = {"off": [False], "on": [True], "both": [False, True]}
        runs = [(g, c, False) for g in groups for c in modes[a.compile] if not (c and g == 1)]
        runs += [(0, False, True) for graph in modes[a.cuda_graph] if graph]
        for group, compiled, graph in runs:
            key = f"{backend}/group{group}" + ("/compiled" if compiled else "") + ("/graph" if graph else "")
            if graph:
                step = GraphedStage1(student, s1_params, 1000.0, ac, pad_id=pad_token_id(tok))
                loss = partial(step, batch, float(n_tok))
            else:
                loss = partial(attention_transfer_step, student, batch, 1000.0, float(n_tok), ac, layer_group=group,
                               compile=compiled, right_padded=True)
            try:
                t1 = timed(train_step(s1_params, loss), a.steps, device)
            except Exception as e:  # recorded, not hidden: the entry says why it has no timing
                if not graph:
                    raise
                step.release()
                by_backend[key] = {"error": f"{type(e).__name__}: {e}"}
                print(f"{key}: {by_backend[key]['error']}")
                continue
            if graph:
                step.release()  # its pool holds a whole step's activations
            by_backend[key] = {"stage1_tok_s": n_tok / t1, "stage1_over_teacher": t_teacher / t1,
                               "s_per_step": {"teacher_forward": t_teacher, "stage1": t1}}
            if t_teacher_graph:
                by_backend[key]["stage1_over_graphed_teacher"] = t_teacher_graph / t1
                by_backend[key]["s_per_step"]["teacher_forward_graphed"] = t_teacher_graph
    first_backend = a.gla_backends.split(",")[0]
    first_s1 = next(k for k in by_backend if k.startswith(f"{first_backend}/") and "error" not in by_backend[k])
    s1_head, s2_head = by_backend[first_s1], by_backend[first_backend]
    res = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "teacher": a.teacher,
           "gate_logit": a.gate_logit,
           "batch_size": a.batch_size, "tokens_per_batch": n_tok, "teacher_forward_tok_s": n_tok / t_teacher,
           "stage1_tok_s": s1_head["stage1_tok_s"], "stage2_tok_s": s2_head["stage2_tok_s"],
           "stage1_over_teacher": s1_head["stage1_over_teacher"], "teacher_forward_graphed_tok_s":
           n_tok / t_teacher_graph if t_teacher_graph else None,
           "s_per_step": {**s1_head["s_per_step"], **s2_head["s_per_step"]}, "by_backend": by_backend}
    print(json.dumps(res, indent=2))
    if a.out:
        json.dump(res, open(a.out, "w"), indent=2)


if __name__ == "__main__":
    main()
