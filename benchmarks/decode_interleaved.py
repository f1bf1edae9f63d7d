"""A student's decode step after prompts of several lengths, timed round-robin in one process.

`lawcat bench` measures its decode points one after another; on a shared or thermally drifting machine (the 2-core
CPU box drifts by 1.5x over an hour) minutes-apart points differ for reasons that are not the context. Here every
context gets its prefill first, then rounds of a few steps each, context after context, so the drift falls on all
of them alike; what is left is what the context itself costs.

    python benchmarks/decode_interleaved.py passkey-smollm2 --contexts 1k,4k,32k --rounds 12 --steps 8 \
        --out results/cpu/speed-2core/decode_interleaved.json

`--with-teacher` adds the student's teacher (HF, DynamicCache, eager) at the same contexts to the same rounds, so
the student's speed-up is a ratio measured side by side.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from lawcat import LawcatForCausalLM, load_teacher
from lawcat.bench.measure import cache_nbytes
from lawcat.machine import machine_info
from lawcat.units import parse_lengths


def _crop_to(cache, length: int) -> None:
    """A transformers DynamicCache back to `length` tokens (crop takes the number of tokens to drop, negated)."""
    extra = int(cache.get_seq_length()) - length
    if extra > 0:
        cache.crop(-extra)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a student run directory or a shipped student's name")
    p.add_argument("--contexts", default="1k,4k,32k")
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--steps", type=int, default=8, help="steps per context per round")
    p.add_argument("--warmup", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--with-teacher", action="store_true", help="time the student's teacher in the same rounds")
    p.add_argument("--keep-lora-apart", action="store_true",
                   help="load the student with fold_lora=False (its LoRA as separate matrix products), for A/B")
    p.add_argument("--out", default=None, help="a JSON file for every step time")
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    student = LawcatForCausalLM.from_pretrained(args.model, fold_lora=not args.keep_lora_apart).eval()
    models = {"student": student}
    if args.with_teacher:
        models["teacher"] = load_teacher(student.config.teacher_source)[0].eval()
    vocab = student.config.vocab_size
    caches, prefill_s = {}, {}
    with torch.no_grad():
        for C in parse_lengths(args.contexts):
            ids = torch.randint(0, vocab, (1, C))
            for name, model in models.items():
                t = time.perf_counter()
                if name == "student":
                    _, caches[name, C] = model.prefill(ids)
                else:
                    caches[name, C] = model(input_ids=ids, use_cache=True, logits_to_keep=1).past_key_values
                prefill_s[name, C] = time.perf_counter() - t
                print(f"prefill {name} {C}: {prefill_s[name, C]:.1f} s", flush=True)
        token = torch.randint(0, vocab, (1, 1))
        for (name, C), cache in caches.items():
            for _ in range(args.warmup):
                models[name](input_ids=token, past_key_values=cache, use_cache=True)
            if name == "teacher":
                _crop_to(cache, C)
        times = {key: [] for key in caches}
        for _ in range(args.rounds):
            for (name, C), cache in caches.items():
                for _ in range(args.steps):
                    t = time.perf_counter()
                    models[name](input_ids=token, past_key_values=cache, use_cache=True)
                    times[name, C].append((time.perf_counter() - t) * 1e3)
                if name == "teacher":  # the teacher's cache grew by the steps: back to the context's length
                    _crop_to(cache, C)
    def summary(key, v):
        return {"median_ms": statistics.median(v), "p10_ms": statistics.quantiles(v, n=10)[0],
                "p90_ms": statistics.quantiles(v, n=10)[-1], "n": len(v), "prefill_s": prefill_s[key],
                "state_bytes": cache_nbytes(caches[key]), "times_ms": v}

    result = {"model": args.model, "lora_apart": student.config.lora is not None,
              "threads": torch.get_num_threads(), "rounds": args.rounds, "steps": args.steps,
              "machine": machine_info(),
              "contexts": {str(C): summary((name, C), v) for (name, C), v in times.items() if name == "student"}}
    if args.with_teacher:
        result["teacher"] = {str(C): summary((name, C), v) for (name, C), v in times.items() if name == "teacher"}
        result["speedup"] = {C: result["teacher"][C]["median_ms"] / result["contexts"][C]["median_ms"]
                             for C in result["teacher"]}
    for C, r in result["contexts"].items():
        line = (f"context {C}: student median {r['median_ms']:.1f} ms/step "
                f"(p10 {r['p10_ms']:.1f}, p90 {r['p90_ms']:.1f})")
        if args.with_teacher:
            line += f", teacher {result['teacher'][C]['median_ms']:.1f} ms/step: {result['speedup'][C]:.2f}x"
        print(line + f", student state {r['state_bytes'] / 2**20:.2f} MiB")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
