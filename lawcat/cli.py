"""The `lawcat` command: one entry point, one subcommand per job.

    lawcat linearize --teacher default --preset lawcat --out runs/fresh   # a student before any training
    lawcat generate  runs/fresh --prompt "..."                            # recurrent decoding, O(1) state
    lawcat distill   --recipe recipes/passkey.yaml --teacher default --out runs/pk [stage1.lr=3e-3 ...]
    lawcat distill   --recipe passkey ...                                 # a shipped recipe, by name
    lawcat eval      runs/pk --task passkey --lengths 1k,2k,4k,8k,16k,32k --out evals/pk
    lawcat eval      passkey-smollm2 --task passkey ...                   # a shipped student, by name
    lawcat compare   runs/a runs/b --out reports/ab                       # tables + charts across result files
    lawcat demo      [--quick] [--lengths 256,1k --n 5] [--long-lengths 12k --long-n 5]  # the README's main job
    lawcat list-weights                                                   # shipped students, by name
    lawcat viz       attention runs/pk --prompt "..." --layer 15 --head 5 --out attn.png  # teacher vs student
    lawcat viz       needle-share runs/a runs/b --length 8k --out share.png  # the needle's share per layer
    lawcat viz       gate passkey-smollm2 --length 8k --out gate.png       # gate half-lives per layer and head

Errors a user can cause (bad paths, wrong teacher, corrupt files, unknown presets) print one line and exit 2.
Building the parser imports neither torch nor transformers (`lawcat --help` answers at once): each command
imports what it needs when it runs.
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def _load_any(spec: str, dtype=None, device=None, teacher=None):
    """(model, tokenizer) for a lawcat run directory, a shipped student's name, an HF directory, a .gguf file or
    'default'. `teacher` (--teacher) says where a student's teacher is, instead of where its checkpoint records."""
    from .models import LawcatForCausalLM, load_teacher
    from .models.checkpoint import resolve_model_spec

    run = resolve_model_spec(spec)
    if run is None and teacher is not None:
        raise SystemExit(f"error: --teacher is for a lawcat student; {spec} is a teacher itself")
    if run is not None:
        model = LawcatForCausalLM.from_pretrained(run, dtype=dtype, device=device, teacher=teacher)
        return model, model.tokenizer
    return load_teacher(spec, dtype=dtype, device=device)


def cmd_linearize(args) -> int:
    from .models import LawcatConfig, linearize, load_teacher

    teacher, tokenizer = load_teacher(args.teacher)
    student = linearize(teacher, LawcatConfig.from_preset(args.preset, gate_rank=args.gate_rank))
    student.save_pretrained(args.out, merged=args.merged)
    n_new = sum(p.numel() for p in student.lawcat_parameters())
    print(f"linearized {args.teacher} with preset {args.preset}: {n_new:,} new parameters -> {args.out}")
    return 0


def cmd_generate(args) -> int:
    import torch

    model, tokenizer = _load_any(args.model, teacher=args.teacher)
    if tokenizer is None:
        raise SystemExit(f"error: {args.model} has no tokenizer files; save the student with its tokenizer")
    prompt = open(args.prompt_file).read() if args.prompt_file else args.prompt
    ids = tokenizer(prompt, return_tensors="pt")
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=args.max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    dt = time.perf_counter() - t0
    text = tokenizer.decode(out[0, ids.input_ids.shape[1]:], skip_special_tokens=True)
    print(text)
    print(f"[{ids.input_ids.shape[1]} prompt tokens, {out.shape[1] - ids.input_ids.shape[1]} new, {dt:.1f} s]",
          file=sys.stderr)
    return 0


def cmd_distill(args) -> int:
    from .distill.recipe import load_recipe
    from .distill.run import distill
    recipe = load_recipe(args.recipe, args.overrides)
    summary = distill(recipe, args.teacher, args.out, resume=args.resume, device=args.device,
                      max_seconds=args.max_seconds)
    if os.environ.get("RANK", "0") != "0":  # under torchrun the summary is printed once, by rank 0
        return 0
    s1, s2 = summary.get("stage1", {}), summary.get("stage2", {})
    if summary.get("paused"):
        print(f"paused {recipe.name} after {summary['wall_s']:.0f} s (--max-seconds); continue with: "
              f"lawcat distill --recipe {args.recipe} --out {args.out} --resume (same overrides)")
    else:
        print(f"distilled {recipe.name} in {summary['wall_s']:.0f} s -> {args.out}")
    for name, st in (("stage 1", s1), ("stage 2", s2)):
        if st:
            print(f"  {name}: {st['steps']} steps, {st['tokens_per_s']:,.0f} tokens/s, best val {st['best_val']}")
    return 0


def cmd_eval(args) -> int:
    import torch

    from .data import parse_lengths
    from .eval.runner import run_eval

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else None
    sample_kw = _sample_kw(args)  # refuse a switch the task lacks before the model loads
    if args.task == "lm-eval":
        return _cmd_lm_eval(args, device, dtype)
    model, tokenizer = _load_any(args.model, dtype=dtype, device=device, teacher=args.teacher)
    if tokenizer is None:
        raise SystemExit(f"error: {args.model} has no tokenizer files")
    name = args.name or args.model.rstrip("/").split("/")[-1]
    lengths = parse_lengths(args.lengths, args.task)
    depth = None if args.depths is None else [float(x) for x in args.depths.split(",")]
    if args.n is not None:
        n = args.n
    else:
        n = 100 if args.task.startswith("babilong") else 25 if args.task.startswith("niah") else 10
    run_eval(model, tokenizer, name, args.task, lengths, n, args.out, seed=args.seed, depth=depth,
             batch_size=args.batch_size, chat=args.chat, chunk_size=args.prefill_chunk,
             max_batch_tokens=args.max_batch_tokens, sample_kw=sample_kw)
    print(open(f"{args.out}/results.md").read())
    return 0


def _cmd_lm_eval(args, device: str, dtype) -> int:
    """`lawcat eval --task lm-eval`: exit 0 when at least one task ran, 1 when none could (each unavailable task
    is listed with its reason in OUT/lm_eval.md), 2 for an unknown task name."""
    try:
        from .eval.lm_eval_adapter import UnknownTaskError, run_lm_eval, tasks_ran
    except ModuleNotFoundError as e:
        if not (e.name or "").startswith("lm_eval"):
            raise
        raise SystemExit("error: --task lm-eval needs lm-evaluation-harness: pip install 'lawcat[eval]'") from e

    def load():  # called only once some task can run: a typo or a missing dataset costs no model load
        model, tokenizer = _load_any(args.model, dtype=dtype, device=device, teacher=args.teacher)
        if tokenizer is None:
            raise SystemExit(f"error: {args.model} has no tokenizer files")
        return model, tokenizer

    import logging

    # Each unavailable task's reason is in the table printed below: not a second time as a log warning.
    quiet = logging.getLogger("lawcat.eval.lm_eval_adapter")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        out = run_lm_eval(load, tasks=[t for t in args.lm_eval_tasks.split(",") if t], out_dir=args.out,
                          limit=args.limit, device=device, offline=args.offline, model_name=args.name or args.model)
    except UnknownTaskError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        quiet.setLevel(level)
    print(open(f"{args.out}/lm_eval.md").read())
    if not tasks_ran(out):
        missing = ", ".join(out["lawcat"]["unavailable"]) or "no task"
        where = "offline" if out["lawcat"]["offline"] else "here"
        print(f"error: no lm-eval task ran: {missing} could not be loaded {where} (reasons in {args.out}/lm_eval.md)",
              file=sys.stderr)
        return 1
    return 0


def _task_variants(task: str) -> tuple:
    """The held-out prompt variants of `task` (plain Python: no torch)."""
    from .data.babilong_styles import BABILONG_VARIANTS
    from .data.niah_styles import NIAH_VARIANTS
    from .data.passkey_styles import PASSKEY_VARIANTS

    for prefix, variants in (("passkey", PASSKEY_VARIANTS), ("niah", NIAH_VARIANTS), ("babilong", BABILONG_VARIANTS)):
        if task.startswith(prefix):
            return variants
    return ()


def _sample_kw(args) -> dict:
    """The task-specific prompt switches, refused where the task has no such switch."""
    kw = {}
    if args.variant != "standard":
        variants = _task_variants(args.task)
        if args.variant not in variants:
            raise SystemExit(f"error: --variant {args.variant} is not a variant of --task {args.task} "
                             + (f"(its variants: {', '.join(variants)})" if variants else "(it has none)"))
        kw["variant"] = args.variant
    if args.bare_prompt:
        if not args.task.startswith("babilong"):
            raise SystemExit(f"error: --bare-prompt is for the BABILong tasks, not {args.task}")
        kw["prompt"] = "bare"
    return kw


def cmd_compare(args) -> int:
    from .eval.compare import run_compare
    from .units import parse_lengths

    edges = parse_lengths(args.needle_positions) if args.needle_positions else None
    run_compare(args.paths, args.out, needle_positions=edges)
    print(f"wrote the comparison to {args.out}")
    return 0


def cmd_demo(args) -> int:
    from .demo import (
        DEFAULT_LENGTHS,
        DEFAULT_LONG_LENGTHS,
        DEFAULT_LONG_N,
        DEFAULT_N,
        QUICK_LENGTHS,
        QUICK_LONG_LENGTHS,
        QUICK_N,
        DemoSettings,
        run_demo,
    )
    from .units import parse_lengths

    lengths = args.lengths or (QUICK_LENGTHS if args.quick else DEFAULT_LENGTHS)
    n = args.n if args.n is not None else (QUICK_N if args.quick else DEFAULT_N)
    long = args.long_lengths if args.long_lengths is not None else (
        QUICK_LONG_LENGTHS if args.quick else DEFAULT_LONG_LENGTHS)
    long_n = args.long_n if args.long_n is not None else DEFAULT_LONG_N
    settings = DemoSettings(out=args.out, teacher=args.teacher, overrides=args.overrides, n=n, quick=args.quick,
                            lengths=parse_lengths(lengths), batch_size=args.batch_size,
                            long_lengths=parse_lengths(long) if long.strip(",") else [], long_n=long_n,
                            device=args.device, **({"recipe": args.recipe} if args.recipe else {}))
    run_demo(settings)
    return 0


def cmd_list_weights(args) -> int:
    from .weights import list_shipped, read_card, shipped_names_text

    names = list_shipped()
    if not names:
        print(f"{shipped_names_text()} (a shipped student is a full recipe run: results/README.md)")
        return 0
    for name in names:
        card = read_card(name)
        about = ", ".join(f"{k} {card[k]}" for k in ("task", "teacher", "recipe") if card.get(k))
        print(f"{name}" + (f"  ({about})" if about else ""))
        n = f" (n={card['n']} per length)" if card.get("n") else ""
        if card.get("scores"):
            on = f" on {card['scores_task']}" if card.get("scores_task") else ""
            print(f"  accuracy %{on}{n}: {_score_cells(card['scores'])}")
        for label, key in (("", "task_scores"), ("held out, ", "heldout_scores")):
            for what, scores in (card.get(key) or {}).items():
                if isinstance(scores, dict) and scores:  # "heldout" is eval's name for every variant at once
                    print(f"  {label}{'all at once' if what == 'heldout' else what}: {_score_cells(scores)}")
        if card.get("command"):
            print(f"  made by: {card['command']}")
    return 0


def _score_cells(scores: dict) -> str:
    return "  ".join(f"{_short_length(k)}: {v:g}" for k, v in sorted(scores.items(), key=_length_key))


def _length_key(item) -> float:
    try:
        return float(item[0])
    except ValueError:
        return float("inf")


def _short_length(tokens: str) -> str:
    """A card's length key as the result tables write it ('16384' -> '16K'); a key that is no count stays."""
    from .units import format_length

    return format_length(int(tokens)) if tokens.isdigit() else tokens


# The names in lawcat.models.config.PRESETS: that module imports transformers (and torch), which the parser must
# not. tests/test_cli.py checks that the two lists agree.
PRESET_NAMES = ("lawcat", "lawcat-gate128", "lawcat-gate16", "lawcat-gate64", "lawcat-no-conv", "lawcat-no-norm",
                "lawcat-rope", "lawcat-separate-maps", "lawcat-shared-conv", "lawcat-shared-conv-separate-maps",
                "lawcat-swa64", "lolcats")
BENCH_HELP = "prefill/decode latency and memory, teacher vs LAWCAT student"


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .data.babilong_styles import BABILONG_VARIANTS  # plain Python: no torch
    from .data.niah_styles import NIAH_VARIANTS
    from .data.passkey_styles import PASSKEY_VARIANTS
    from .recipes import shipped_recipes

    p = argparse.ArgumentParser(prog="lawcat", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"lawcat {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("linearize", help="swap a teacher's attention for LAWCAT and save the (untrained) student")
    s.add_argument("--teacher", default="default", help="HF directory, .gguf file, or 'default'")
    s.add_argument("--preset", default="lawcat", choices=PRESET_NAMES)
    s.add_argument("--gate-rank", type=int, default=32)
    s.add_argument("--merged", action="store_true", help="store every tensor (no teacher needed to load)")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_linearize)

    s = sub.add_parser("generate", help="greedy generation from a student run dir or a teacher")
    s.add_argument("model")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--prompt")
    g.add_argument("--prompt-file")
    s.add_argument("--max-new-tokens", type=int, default=64)
    s.add_argument("--teacher", default=None, help="students: where the teacher is (HF directory, .gguf file, "
                                                   "'default'), instead of where the checkpoint records it")
    s.set_defaults(func=cmd_generate)

    s = sub.add_parser("distill", help="two-stage LAWCAT distillation from a recipe")
    s.add_argument("--recipe", required=True,
                   help=f"a YAML recipe file, or a shipped recipe's name: {', '.join(shipped_recipes())}")
    s.add_argument("--teacher", default="default", help="HF directory, .gguf file, or 'default'")
    s.add_argument("--out", required=True, help="run directory (must be new unless --resume)")
    s.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    s.add_argument("--max-seconds", type=float, default=None,
                   help="pause the run (checkpointed) at the first step past this many seconds; --resume goes on")
    s.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    s.add_argument("overrides", nargs="*",
                   help="recipe overrides as dotted.key=value, e.g. stage1.lr=3e-3 (every key: recipes/README.md)")
    s.set_defaults(func=cmd_distill)

    s = sub.add_parser("eval", help="passkey / S-NIAH / BABILong / LM-eval on a teacher or a student")
    s.add_argument("model", help="a lawcat run dir, an HF dir, a .gguf file, or 'default'")
    s.add_argument("--task", required=True, choices=["passkey", "niah1", "niah2", "niah3", "babilong-qa2",
                                                    "babilong-qa3", "lm-eval"])
    s.add_argument("--lengths", default="1k,2k,4k,8k", help="comma list; 4k = 4096 (BABILong: 4000)")
    s.add_argument("--n", type=int, default=None, help="samples per length (default: the paper's 10/25/100)")
    s.add_argument("--depths", default=None, help="needle depths in percent for a heatmap grid (default: uniform)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--batch-size", type=int, default=1)
    s.add_argument("--max-batch-tokens", type=int, default=None,
                   help="fewer rows per batch for long prompts: at most this many prompt tokens per batch")
    s.add_argument("--chat", action="store_true", help="wrap prompts in the chat template")
    s.add_argument("--variant", default="standard",
                   choices=tuple(dict.fromkeys(PASSKEY_VARIANTS + NIAH_VARIANTS + BABILONG_VARIANTS)),
                   help="the published prompt format, or a held-out variant no training sample uses (passkey: filler, "
                        "natural, needle, question, keys; niah1/2/3: filler, needle, question, values; babilong: "
                        "background, question; each: heldout, all of them at once)")
    s.add_argument("--bare-prompt", action="store_true",
                   help="BABILong: the benchmark's bare prompt for base models (no instruction, examples, template)")
    s.add_argument("--prefill-chunk", type=int, default=8192, help="students: tokens per prefill chunk")
    s.add_argument("--name", default=None, help="model name in tables (default: the directory name)")
    s.add_argument("--teacher", default=None, help="students: where the teacher is (HF directory, .gguf file, "
                                                   "'default'), instead of where the checkpoint records it")
    s.add_argument("--device", default=None)
    s.add_argument("--lm-eval-tasks", default="piqa,arc_easy,arc_challenge,hellaswag,winogrande")
    s.add_argument("--limit", type=int, default=None, help="lm-eval: items per task")
    s.add_argument("--offline", action=argparse.BooleanOptionalAction, default=None,
                   help="lm-eval: --offline fetches nothing and reports a task whose dataset is not in the local "
                        "HF cache as unavailable; --no-offline lets lm-eval download datasets (default: offline "
                        "when HF_DATASETS_OFFLINE or HF_HUB_OFFLINE is set, else downloads allowed)")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_eval)

    # `lawcat bench`: listed here, parsed by lawcat.bench.cli's own parser (see main), whose package imports torch
    sub.add_parser("bench", help=BENCH_HELP, add_help=False)

    s = sub.add_parser("compare", help="one table and one chart per task across result files or run dirs")
    s.add_argument("paths", nargs="+")
    s.add_argument("--out", required=True)
    s.add_argument("--needle-positions", default=None, metavar="EDGES",
                   help="also tabulate accuracy by the needle's token position in the prompt, binned at these "
                        "edges (e.g. 1k,2k,4k): a late needle missed is not a far one forgotten")
    s.set_defaults(func=cmd_compare)

    s = sub.add_parser("demo", help="the README's main job: distill a small passkey student, compare it with the "
                                     "teacher and the shipped student inside and beyond 8K")
    s.add_argument("--out", default="runs/demo", help="demo directory (never one the demo did not make)")
    s.add_argument("--teacher", default="default", help="HF directory, .gguf file, or 'default'")
    s.add_argument("--recipe", default=None, help="a YAML file or a shipped recipe's name (default: demo)")
    s.add_argument("--lengths", default=None, help="passkey lengths, comma list (default: lawcat.demo.DEFAULT_LENGTHS)")
    s.add_argument("--n", type=int, default=None, help="samples per length (default: lawcat.demo.DEFAULT_N)")
    s.add_argument("--long-lengths", default=None,
                   help="lengths for the teacher and the shipped student only ('' for none; default: 12k)")
    s.add_argument("--long-n", type=int, default=None, help="samples per long length (default: 5)")
    s.add_argument("--batch-size", type=int, default=1)
    s.add_argument("--device", default=None, help="cpu, cuda (default: cuda if available)")
    s.add_argument("--quick", action="store_true", help="a few training steps and two short lengths: a smoke test")
    s.add_argument("overrides", nargs="*", help="demo recipe overrides as dotted.key=value")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("list-weights", help="the students shipped in this install, with their recorded scores")
    s.set_defaults(func=cmd_list_weights)

    from .analysis.cli import add_viz_parser  # torch-free: the views import what they need when they run

    add_viz_parser(sub)
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        from .bench.cli import build_parser as bench_parser

        return _run(bench_parser().parse_args(argv[1:]))
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command in ("distill", "demo"):  # recipe overrides may follow options too: `... --resume stage1.lr=3e-3`
        args.overrides += [x for x in extra if "=" in x and not x.startswith("-")]
        extra = [x for x in extra if not ("=" in x and not x.startswith("-"))]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return _run(args)


def _run(args) -> int:
    from .errors import LawcatError
    from .eval.errors import ResultsError

    known: tuple = (LawcatError, ResultsError, FileNotFoundError)
    try:
        from .data.errors import DataError
        known = known + (DataError,)
    except ImportError:  # the data package is optional for the core commands
        pass
    try:
        return args.func(args)
    except known as e:  # user errors: one line, non-zero exit; tracebacks are for bugs
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
