"""bench: prefill / decode / memory measurements of a teacher and its LAWCAT student, and their plots.

    architectures  named published shapes (llama-3.2-1b, llama-3-8b, smollm2-135m, ...), random-weight models
    flops          analytic matmul FLOPs per token / per prefill from a config
    timing         median-of-repeats timing (CUDA events on GPU), peak memory, OOM caught per point
    settings       BenchSettings, the measurement kinds, the results format
    harness        load_pair (teacher + student), run_bench (prefill, decode, attention op, matmul rate)
    measure        the prefill and decode measurements, global warm-up, cache sizes
    attention_op   the attention operator alone (SDPA flash / cuDNN vs normalized GLA backends)
    planner        skips points after an OOM or when the time budget would be overrun
    errors         BenchError
    teacher_decode the teacher's decode over a static KV cache: eager, CUDA-graphed or compiled
    report         bench.json format and checks, reading, writing, merging runs
    tables         bench.md: one markdown table per section, the prefill and decode floors
    plots          PNG charts (latency / memory vs length, decode ms/token, operator)
    cli            `lawcat bench` (add_bench_parser, cmd_bench)
"""
from ..models.architectures import ARCHITECTURES, arch_config, build_random_model, count_parameters, list_architectures
from .errors import BenchError
from .flops import ModelShape, decode_flops, matmul_flops_per_token, prefill_flops
from .harness import cache_nbytes, load_pair, run_bench
from .report import merge_results, read_results, validate_results, write_report
from .settings import BenchSettings
from .tables import markdown_report

__all__ = [
    "ARCHITECTURES", "BenchError", "BenchSettings", "ModelShape", "arch_config", "build_random_model", "cache_nbytes",
    "count_parameters", "decode_flops", "list_architectures", "load_pair", "markdown_report", "matmul_flops_per_token",
    "merge_results", "prefill_flops", "read_results", "run_bench", "validate_results", "write_report",
]
