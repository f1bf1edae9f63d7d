"""`lawcat viz`: its parser and what each view runs (lawcat.analysis.figures).

Building the parser imports neither torch nor matplotlib (`lawcat viz --help` answers at once): each view imports
what it needs when it runs.
"""
from __future__ import annotations


def add_viz_parser(sub) -> None:
    """`lawcat viz` and its views, under the main parser's subcommands `sub`."""
    s = sub.add_parser("viz", help="a student's insides as PNGs: attention maps vs the teacher's, the needle's share "
                                   "of the readout, the gates' half-lives, attention error and text loss by position")
    modes = s.add_subparsers(dest="mode", required=True)
    student = "a lawcat run dir or a shipped student's name"
    m = modes.add_parser("attention", help="teacher vs student attention weights at one layer and head for a prompt "
                                           "(the student's implied by its LAWCAT output; exact, CPU)")
    m.add_argument("model", help=student)
    g = m.add_mutually_exclusive_group(required=True)
    g.add_argument("--prompt")
    g.add_argument("--prompt-file")
    m.add_argument("--layer", type=int, required=True, help="0-based")
    m.add_argument("--head", type=int, required=True, help="0-based query head")
    m.add_argument("--teacher", default=None, help="where the student's teacher is (HF directory, .gguf file, "
                                                   "'default'), instead of where the checkpoint records it")
    m.add_argument("--out", required=True, help="the PNG to write")
    m = modes.add_parser("needle-share", help="each layer's best head's share of its readout from a passkey needle, "
                                              "at the answer position (one or more students)")
    m.add_argument("models", nargs="+", help=f"one or more students: {student}")
    m.add_argument("--names", default=None, help="comma list of labels (default: the folder names)")
    _passkey_prompt_args(m)
    m = modes.add_parser("gate", help="gate half-lives per key dimension, layer and head, and what survives of the "
                                      "needle, on a passkey prompt")
    m.add_argument("model", help=student)
    m.add_argument("--chunk", type=int, default=2048, help="prefill chunk (tokens)")
    _passkey_prompt_args(m)
    m = _position_view(modes, "transfer-error", student, "each layer's error against softmax attention on the same "
                       "inputs (stage 1's loss), by token position, on one task prompt",
                       ("--task", "niah2", "any evaluation task with a generator (passkey, niah1-3, babilong-qa2/qa3)"),
                       length="4k", bin_tokens="512", seed_help="which sample of the task")
    m.add_argument("--trained-length", default=None,
                   help="the longest training sample (e.g. 1162): marked, and each layer's error beyond it "
                        "compared with its error before")
    m = _position_view(modes, "lm-drift", student, "whether the student still models text: its next-token loss and KL "
                       "to the teacher on plain text by position, with LoRA and (kept apart) without",
                       ("--text", "books:test", "a packaged corpus (books:test, essays, wiki, kjv) or your text files "
                        "/ folders"), length="2k", bin_tokens="256", seed_help="which document the text starts at")
    m.add_argument("--teacher", default=None, help="where the student's teacher is, instead of where the checkpoint "
                                                   "records it")
    for m in modes.choices.values():
        m.set_defaults(func=cmd_viz)


def _position_view(modes, name: str, student: str, help: str, source: tuple[str, str, str], length: str,
                   bin_tokens: str, seed_help: str):
    """A by-position view's parser: the student, what it reads (`source`: flag, default, help), how many tokens,
    how many per bin, which prompt, and where the PNG goes."""
    m = modes.add_parser(name, help=help)
    m.add_argument("model", help=student)
    flag, default, source_help = source
    m.add_argument(flag, default=default, help=f"{source_help} (default {default})")
    m.add_argument("--length", default=length, help=f"tokens (default {length})")
    m.add_argument("--bin", default=bin_tokens, help=f"tokens per position bin (default {bin_tokens})")
    m.add_argument("--seed", type=int, default=0, help=seed_help)
    m.add_argument("--out", required=True, help="the PNG to write (the numbers go beside it as JSON)")
    return m


def _passkey_prompt_args(m) -> None:
    m.add_argument("--length", default="8k", help="passkey prompt length in tokens (8k = 8192)")
    m.add_argument("--depth", type=float, default=10.0, help="needle depth in percent (10: far from the question)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--out", required=True, help="the PNG to write (its numbers go beside it as .json)")


def cmd_viz(args) -> int:
    from ..units import parse_length
    from .figures import (
        attention_figure,
        gate_figure,
        lm_drift_figure,
        needle_share_figure,
        transfer_error_figure,
    )

    if args.mode == "attention":
        prompt = open(args.prompt_file).read() if args.prompt_file else args.prompt
        print(attention_figure(args.model, prompt, args.layer, args.head, args.out, teacher=args.teacher))
    elif args.mode == "needle-share":
        names = args.names.split(",") if args.names else None
        print(needle_share_figure(args.models, args.out, names=names, length=parse_length(args.length),
                                  depth=args.depth, seed=args.seed))
    elif args.mode == "lm-drift":
        print(lm_drift_figure(args.model, args.out, text=args.text, length=parse_length(args.length),
                              bin_tokens=parse_length(args.bin), seed=args.seed, teacher=args.teacher))
    elif args.mode == "transfer-error":
        trained = parse_length(args.trained_length) if args.trained_length else None
        print(transfer_error_figure(args.model, args.out, task=args.task, length=parse_length(args.length),
                                    bin_tokens=parse_length(args.bin), seed=args.seed, trained_tokens=trained))
    else:
        print(gate_figure(args.model, args.out, length=parse_length(args.length), depth=args.depth, seed=args.seed,
                          chunk=args.chunk))
    return 0
