#!/usr/bin/env python
"""The attention operator alone: SDPA (flash, cuDNN) vs lawcat's normalized GLA, Llama-3.2-1B shapes (issue #5).

    python benchmarks/bench_attention_op.py --lengths 1k..128k --out results/bench/attention-op
    python benchmarks/bench_attention_op.py --lengths 1k..128k --op-methods sdpa-flash,sdpa-cudnn,gla,gla-triton --out /tmp/op

32 query heads, 8 KV heads, head dim 64, batch 1, bf16 by default (--op-shape heads,kv_heads,head_dim). SDPA runs
causal under torch.nn.attention.sdpa_kernel(<backend>) with enable_gqa (K/V repeated outside the timing for a
backend without GQA); gla is lawcat.ops.gla.normalized_gla (fla's chunk_gla on CUDA, V + 1 = 65 wide), gla-triton
lawcat.ops.triton_norm_gla. No model is loaded. `lawcat bench --what op` with a 480 s time budget.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from lawcat.bench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["--what", "op", "--time-budget", "480", *sys.argv[1:]]))
