"""`lawcat bench`: prefill / decode / memory of a teacher and its LAWCAT student, side by side.

    lawcat bench llama-3.2-1b --lengths 1k..128k --out results/bench/llama-3.2-1b      # random weights, no download
    lawcat bench runs/pk --what prefill,decode --lengths 1k..32k --out reports/bench-pk  # a trained student
    lawcat bench default --device cpu --dtype fp32 --lengths 256,512 --out /tmp/b      # the default teacher
    lawcat bench --what op --lengths 1k..128k --out results/bench/op                   # attention operator only
    lawcat bench --from-json a/bench.json b/bench.json --out merged                    # merge / re-render
    lawcat bench --list-archs

Writes bench.json (every raw number, rewritten after each point, so a killed run keeps what it measured),
bench.md and PNG charts into --out. `add_bench_parser` and `cmd_bench` plug into the main `lawcat` command;
`main(argv)` runs it alone (the benchmarks/bench_*.py scripts use it).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_bench_parser", "build_parser", "cmd_bench", "main"]

_DTYPES = {"bf16": "bfloat16", "bfloat16": "bfloat16", "fp16": "float16", "float16": "float16", "fp32": "float32",
           "float32": "float32"}


def _add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("model", nargs="?", default=None,
                   help="a lawcat run dir, an HF dir, a .gguf file, 'default', or an architecture name "
                        "(random weights; see --list-archs)")
    s.add_argument("--arch", default=None, help="a named architecture with random weights, e.g. llama-3.2-1b")
    s.add_argument("--list-archs", action="store_true", help="print the known architectures and exit")
    s.add_argument("--preset", default="lawcat", help="LAWCAT preset of the student when linearizing a teacher")
    s.add_argument("--gla-backend", default=None,
                   help="the student's GLA kernel: auto (fla on CUDA), triton (lawcat's fused kernel), reference")
    s.add_argument("--fla-autotune", action="store_true",
                   help="let fla autotune its kernels (minutes on a fresh machine) instead of the one pinned config "
                        "each that lawcat gives them (lawcat.ops.fla_backend): for figures that compare against fla")
    s.add_argument("--what", default="prefill,decode,op", help="comma list of prefill, decode, op, matmul")
    s.add_argument("--lengths", default="1k..128k", help="prefill lengths: '1k,2k,4k' or '1k..128k' (doubling)")
    s.add_argument("--decode-contexts", default="1k,4k,16k,64k,128k", help="contexts before the timed decode steps")
    s.add_argument("--decode-steps", type=int, default=32)
    s.add_argument("--decode-warmup", type=int, default=4)
    s.add_argument("--decode-graph", action="store_true",
                   help="the student's decode steps replayed from a CUDA graph (lawcat.models.graph_decode); the "
                        "teacher's KV cache grows every step, so its steps stay eager (see --teacher-decode)")
    s.add_argument("--decode-compile", action="store_true",
                   help="the student's decode step under torch.compile (mode reduce-overhead on CUDA: fused kernels "
                        "replayed from torch's CUDA graphs), instead of eager or --decode-graph")
    s.add_argument("--prefill-graph", action="store_true",
                   help="prefills of up to 4K tokens replayed from CUDA graphs: the student's in its bucket of lengths "
                        "(what prefill(graph=True) gives users), the teacher's captured at each exact length")
    s.add_argument("--compile-blocks", action="store_true",
                   help="both models' norms and MLPs (the modules the student shares with its teacher) under "
                        "torch.compile: fused element-wise work, for prefill and decode alike")
    s.add_argument("--decode-batches", default=None,
                   help="comma list of decode batch sizes, e.g. 1,16,64 (default: --batch); each a table of its own")
    s.add_argument("--teacher-decode", default="dynamic",
                   help="comma list of the teacher's decode paths, each timed as its own series: dynamic (HF "
                        "DynamicCache, eager), and over transformers' StaticCache static (eager), graph (each step "
                        "replayed from a CUDA graph; CUDA only) and compiled (torch.compile, mode reduce-overhead on "
                        "CUDA: transformers' documented fast path). The student's speed-up is against the fastest")
    s.add_argument("--op-lengths", default=None, help="attention-operator lengths (default: --lengths)")
    s.add_argument("--op-methods", default=None,
                   help="comma list of sdpa-flash, sdpa-cudnn, sdpa-efficient, sdpa-math, gla, gla-triton "
                        "(default: flash, cuDNN, gla[, gla-triton] on CUDA)")
    s.add_argument("--op-shape", default="32,8,64", help="heads,kv_heads,head_dim of the operator (Llama-3.2-1B)")
    s.add_argument("--models", default="teacher,student", help="which of teacher,student to measure")
    s.add_argument("--batch", type=int, default=1)
    s.add_argument("--chunk-size", type=int, default=8192, help="student prefill chunk (tokens)")
    s.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda if available)")
    s.add_argument("--dtype", default=None, choices=sorted(_DTYPES), help="default: bf16 on CUDA, fp32 on CPU")
    s.add_argument("--warmup", type=int, default=1)
    s.add_argument("--repeats", type=int, default=5)
    s.add_argument("--max-seconds", type=float, default=20.0, help="stop repeating a point after this much timing")
    s.add_argument("--time-budget", type=float, default=None,
                   help="seconds for the whole run: points predicted to overrun it are skipped")
    s.add_argument("--continue-after-oom", action="store_true", help="try longer lengths after an OOM")
    s.add_argument("--no-global-warmup", action="store_true",
                   help="skip the short prefill + decode per model that compiles kernels before the first point")
    s.add_argument("--no-teacher-cache", action="store_true", help="teacher prefill without building its KV cache")
    s.add_argument("--matmul-n", type=int, default=None, help="size of the reference matmul (default 8192 on CUDA)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-plots", action="store_true")
    s.add_argument("--from-json", nargs="+", default=None,
                   help="re-render (and merge, if several) existing bench.json files instead of measuring")
    s.add_argument("--out", default=None, help="output folder (bench.json, bench.md, PNGs)")


def add_bench_parser(subparsers) -> argparse.ArgumentParser:
    """Add the `bench` subcommand to the main `lawcat` parser's subparsers."""
    s = subparsers.add_parser("bench", help="prefill/decode latency and memory, teacher vs LAWCAT student",
                              description=__doc__.split("\n")[0])
    _add_arguments(s)
    s.set_defaults(func=cmd_bench)
    return s


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lawcat bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(p)
    p.set_defaults(func=cmd_bench)
    return p


def _list_archs() -> int:
    from ..models.architectures import ARCHITECTURES

    print(f"{'name':14s} {'family':8s} {'layers':>6s} {'hidden':>6s} {'heads':>9s} {'hd':>4s} {'vocab':>7s} "
          f"{'size':>6s}")
    for name, a in ARCHITECTURES.items():
        c = a.config
        heads = f"{c['num_attention_heads']}/{c.get('num_key_value_heads', c['num_attention_heads'])}"
        hd = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
        print(f"{name:14s} {a.family:8s} {c['num_hidden_layers']:>6d} {c['hidden_size']:>6d} {heads:>9s} {hd:>4d} "
              f"{c['vocab_size']:>7d} {a.reported:>6s}" + ("  (tests)" if a.test_only else ""))
    return 0


def _progress(r: dict) -> None:
    from ..units import format_length
    from .tables import format_ms

    text = f"{r['kind']:7s} {r['model']:10s} {format_length(r['length']):>6s}: "
    if r["status"] == "ok":
        text += f"{format_ms(r['ms'])} ms"
        if r.get("peak_bytes"):
            text += f", peak {r['peak_bytes'] / 2**30:.2f} GiB"
        if r.get("state_bytes") is not None:
            text += f", cache {r['state_bytes'] / 2**20:.2f} MiB"
    else:
        text += r["status"] + (f" ({r.get('reason') or r.get('error')})" if r.get("reason") or r.get("error") else "")
    print(text, file=sys.stderr, flush=True)


def _batch_sizes(text: str) -> list[int]:
    try:
        return [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        from .errors import BenchError

        raise BenchError(f"--decode-batches {text!r}: give whole numbers, e.g. 1,16,64") from None


def cmd_bench(args) -> int:
    import torch

    from ..units import parse_lengths
    from .harness import BenchError, BenchSettings, load_pair, run_bench
    from .report import merge_results, read_results, write_json, write_report

    if args.list_archs:
        return _list_archs()
    if not args.out:
        raise BenchError("--out is required: the folder for bench.json, bench.md and the charts")
    if args.from_json:
        parts = [read_results(p) for p in args.from_json]
        results = parts[0] if len(parts) == 1 else merge_results(parts)
        paths = write_report(results, args.out, plots=not args.no_plots)
        print(paths["markdown"].read_text())
        return 0

    if args.fla_autotune:  # read when fla is first used (lawcat.ops.fla_backend._fla)
        import os

        os.environ["LAWCAT_FLA_AUTOTUNE"] = "1"
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchError("--device cuda was asked for but no CUDA device is visible; use --device cpu")
    dtype = getattr(torch, _DTYPES[args.dtype]) if args.dtype else (
        torch.bfloat16 if device.type == "cuda" else torch.float32)
    try:
        heads, kv_heads, head_dim = (int(x) for x in args.op_shape.split(","))
    except ValueError:
        raise BenchError(f"--op-shape {args.op_shape!r}: give heads,kv_heads,head_dim, e.g. 32,8,64") from None
    settings = BenchSettings(
        what=tuple(w.strip() for w in args.what.split(",") if w.strip()),
        lengths=parse_lengths(args.lengths), decode_contexts=parse_lengths(args.decode_contexts),
        decode_steps=args.decode_steps, decode_warmup=args.decode_warmup, decode_graph=args.decode_graph,
        decode_compile=args.decode_compile,
        prefill_graph=args.prefill_graph, compile_blocks=args.compile_blocks,
        decode_batches=_batch_sizes(args.decode_batches) if args.decode_batches else None,
        teacher_decode=tuple(m.strip() for m in args.teacher_decode.split(",") if m.strip()),
        op_lengths=parse_lengths(args.op_lengths) if args.op_lengths else None,
        op_methods=[m.strip() for m in args.op_methods.split(",")] if args.op_methods else None,
        op_heads=heads, op_kv_heads=kv_heads, op_head_dim=head_dim,
        batch=args.batch, chunk_size=args.chunk_size,
        models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
        warmup=args.warmup, repeats=args.repeats, max_seconds=args.max_seconds, time_budget=args.time_budget,
        continue_after_oom=args.continue_after_oom, teacher_cache=not args.no_teacher_cache,
        matmul_n=args.matmul_n, global_warmup=not args.no_global_warmup, seed=args.seed)
    settings.validate()
    teacher = student = info = None
    if any(w in settings.what for w in ("prefill", "decode")):
        if args.model is None and args.arch is None:
            raise BenchError("prefill/decode need a model: give MODEL or --arch NAME (or --what op for the operator)")
        print(f"loading {args.arch or args.model} on {device} ({dtype}) ...", file=sys.stderr, flush=True)
        teacher, student, info = load_pair(args.model, args.arch, device, dtype, args.preset, args.seed,
                                           gla_backend=args.gla_backend)
    elif args.model or args.arch:
        info = {"name": args.arch or args.model}

    out_json = Path(args.out) / "bench.json"
    printed = 0

    def on_record(results):  # progress on stderr, and the file rewritten after every point
        nonlocal printed
        for r in results["records"][printed:]:
            _progress(r)
        printed = len(results["records"])
        write_json(results, out_json)

    results = run_bench(teacher, student, settings, device=device, dtype=dtype, info=info, on_record=on_record)
    paths = write_report(results, args.out, plots=not args.no_plots)
    print(paths["markdown"].read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
    return 0


def main(argv=None) -> int:
    """Run `lawcat bench` on its own (user errors: one line on stderr, exit 2)."""
    from ..errors import LawcatError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (LawcatError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
