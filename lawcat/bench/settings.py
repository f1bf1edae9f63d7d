"""What a bench run measures and how (BenchSettings), and the names the results file is written with. Every
other bench module reads these; this one imports none of them."""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import BenchError

__all__ = ["BenchSettings", "FORMAT", "FORMAT_VERSION", "KINDS", "OP_METHODS", "TEACHER_DECODE_MODES",
           "teacher_series"]

FORMAT, FORMAT_VERSION = "lawcat-bench", 1
KINDS = ("prefill", "decode", "op", "matmul")
TEACHER_DECODE_MODES = ("dynamic", "static", "graph", "compiled")


def teacher_series(mode: str) -> str:
    """The name a teacher decode mode's records carry: "teacher" for HF's default path, "teacher-<mode>" else."""
    return "teacher" if mode == "dynamic" else f"teacher-{mode}"


# The attention-operator methods lawcat.bench.attention_op can time.
OP_METHODS = ("sdpa-flash", "sdpa-cudnn", "sdpa-efficient", "sdpa-math", "gla", "gla-triton")


def _default_lengths():
    return [1 << k for k in range(10, 18)]  # 1K .. 128K


@dataclass
class BenchSettings:
    what: tuple = ("prefill", "decode", "op")
    lengths: list = field(default_factory=_default_lengths)           # prefill prompt lengths
    decode_contexts: list = field(default_factory=lambda: [1024, 4096, 16384, 65536, 131072])
    decode_steps: int = 32
    decode_warmup: int = 4
    decode_graph: bool = False                                         # student decode steps as a CUDA graph
    decode_compile: bool = False     # student decode step under torch.compile (reduce-overhead on CUDA)
    # The teacher's decode paths, each its own series: "dynamic" (HF DynamicCache, eager; series "teacher") and
    # over a static KV cache "static" (eager), "graph" (lawcat's CUDA graph), "compiled" (torch.compile
    # reduce-overhead); see lawcat.bench.teacher_decode. Ratios take the fastest.
    teacher_decode: tuple = ("dynamic",)
    op_lengths: list | None = None                                     # default: `lengths`
    op_methods: list | None = None                                     # default: by device
    op_heads: int = 32
    op_kv_heads: int = 8
    op_head_dim: int = 64
    batch: int = 1
    decode_batches: list | None = None                                 # batch sizes of decode (default: [batch])
    chunk_size: int = 8192                                             # student prefill chunk
    # prefills of up to graph_prefill.MAX_TOKENS replayed from CUDA graphs, both models: the student's in its
    # padded bucket (lawcat.models.graph_prefill), the teacher's captured at the exact length
    prefill_graph: bool = False
    compile_blocks: bool = False     # both models' norms and MLPs under torch.compile (lawcat.models.compile_blocks)
    models: tuple = ("teacher", "student")
    warmup: int = 1
    repeats: int = 5
    max_seconds: float = 20.0                                          # of timed runs per point
    skip_warmup_after_s: float = 2.0
    time_budget: float | None = None                                   # seconds for the whole run
    continue_after_oom: bool = False
    teacher_cache: bool = True                                         # teacher prefill builds its KV cache
    matmul_n: int | None = None
    global_warmup: bool = True                                         # compile/autotune before any point
    seed: int = 0

    def validate(self) -> None:
        bad = [w for w in self.what if w not in KINDS]
        if bad:
            raise BenchError(f"unknown measurement(s) {bad}; choose from {', '.join(KINDS)}")
        bad = [m for m in self.models if m not in ("teacher", "student")]
        if bad:
            raise BenchError(f"unknown model(s) {bad}; choose teacher and/or student")
        bad = [m for m in self.teacher_decode if m not in TEACHER_DECODE_MODES]
        if bad or not self.teacher_decode:
            raise BenchError(f"unknown teacher decode mode(s) {bad or '(none given)'}; choose from "
                             f"{', '.join(TEACHER_DECODE_MODES)}")
        bad = [m for m in (self.op_methods or []) if m not in OP_METHODS]
        if bad:
            raise BenchError(f"unknown op method(s) {bad}; choose from {', '.join(OP_METHODS)}")
        for name in ("lengths", "decode_contexts"):
            if any(int(x) < 1 for x in getattr(self, name)):
                raise BenchError(f"{name} must be positive token counts")
        if self.decode_graph and self.decode_compile:
            raise BenchError("choose one of decode_graph and decode_compile for the student's decode step")
        if self.prefill_graph and not self.teacher_cache:
            # transformers reads a capture as tracing: without a cache its mask then leaves SDPA's causal fast path,
            # so the graphed teacher would be timed on a slower path than its eager one
            raise BenchError("prefill_graph times the teacher with its KV cache built; drop --no-teacher-cache")
        if any(int(b) < 1 for b in self.decode_batches or []):
            raise BenchError("decode_batches must be batch sizes >= 1")
        if self.batch < 1 or self.repeats < 1 or self.chunk_size < 1:
            raise BenchError("batch, repeats and chunk_size must be >= 1")
