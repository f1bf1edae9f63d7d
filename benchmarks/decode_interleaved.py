"""A student's decode step after prompts of several lengths, timed round-robin in one process.

`lawcat bench` measures its decode points one after another; on a shared or thermally drifting machine (the 2-core
CPU box drifts by 1.5x over an hour) minutes-apart points differ for reasons that are not the context. Here every
context gets its prefill first, then rounds of a few steps each, context after context, so the drift falls on all
of them alike; what is left is what the context itself costs.

    python benchmarks/decode_interleaved.py passkey-smollm2 --contexts 1k,4k,32k --rounds 12 --steps 8 \
        --out results/cpu/speed-2core/decode_interleaved.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from lawcat import LawcatForCausalLM
from lawcat.machine import machine_info
from lawcat.units import parse_lengths


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a student run directory or a shipped student's name")
    p.add_argument("--contexts", default="1k,4k,32k")
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--steps", type=int, default=8, help="steps per context per round")
    p.add_argument("--warmup", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="a JSON file for every step time")
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    model = LawcatForCausalLM.from_pretrained(args.model).eval()
    vocab = model.config.vocab_size
    caches, prefill_s = {}, {}
    with torch.no_grad():
        for C in parse_lengths(args.contexts):
            t = time.perf_counter()
            _, caches[C] = model.prefill(torch.randint(0, vocab, (1, C)))
            prefill_s[C] = time.perf_counter() - t
            print(f"prefill {C}: {prefill_s[C]:.1f} s", flush=True)
        token = torch.randint(0, vocab, (1, 1))
        for cache in caches.values():
            for _ in range(args.warmup):
                model(input_ids=token, past_key_values=cache, use_cache=True)
        times = {C: [] for C in caches}
        for _ in range(args.rounds):
            for C, cache in caches.items():
                for _ in range(args.steps):
                    t = time.perf_counter()
                    model(input_ids=token, past_key_values=cache, use_cache=True)
                    times[C].append((time.perf_counter() - t) * 1e3)
    result = {"model": args.model, "threads": torch.get_num_threads(), "rounds": args.rounds, "steps": args.steps,
              "machine": machine_info(),
              "contexts": {str(C): {"median_ms": statistics.median(v), "p10_ms": statistics.quantiles(v, n=10)[0],
                                    "p90_ms": statistics.quantiles(v, n=10)[-1], "n": len(v),
                                    "prefill_s": prefill_s[C], "state_bytes": caches[C].nbytes(), "times_ms": v}
                           for C, v in times.items()}}
    for C, r in result["contexts"].items():
        print(f"context {C}: median {r['median_ms']:.1f} ms/step (p10 {r['p10_ms']:.1f}, p90 {r['p90_ms']:.1f}), "
              f"state {r['state_bytes'] / 2**20:.2f} MiB")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
