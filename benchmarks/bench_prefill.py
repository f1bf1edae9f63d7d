#!/usr/bin/env python
"""Prefill latency, peak memory and matmul utilisation, teacher vs LAWCAT student (issue #5).

    python benchmarks/bench_prefill.py --arch llama-3.2-1b --lengths 1k..128k --out results/bench/prefill-llama-3.2-1b
    python benchmarks/bench_prefill.py --arch llama-3.2-1b --lengths 256k,512k,1m --out /tmp/long   # past the teacher's OOM
    python benchmarks/bench_prefill.py runs/pk --lengths 1k..32k --out reports/prefill-pk          # a trained student

`lawcat bench --what prefill` with a time budget (default 480 s, so a 10-minute GPU command still ends with
bench.json, bench.md and the charts); every option of `lawcat bench` applies (see --help). The matmul
reference rate is measured in the same run. Merge runs with
`lawcat bench --from-json a/bench.json b/bench.json --out merged`.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from lawcat.bench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["--what", "prefill,matmul", "--time-budget", "480", *sys.argv[1:]]))
