#!/usr/bin/env python
"""Decode latency per token, tokens/s and cache size at several context lengths, teacher vs student (issue #5).

    python benchmarks/bench_decode.py --arch llama-3.2-1b --decode-contexts 1k,4k,16k,64k,128k --out results/bench/decode-llama-3.2-1b

Teacher: HF DynamicCache; student: the recurrent LawcatCache; eager (no CUDA graphs). Each context is prefilled
untimed, then --decode-steps single-token steps are timed one by one (CUDA events). `lawcat bench --what decode`
with a 480 s time budget; every `lawcat bench` option applies.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from lawcat.bench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["--what", "decode", "--time-budget", "480", *sys.argv[1:]]))
