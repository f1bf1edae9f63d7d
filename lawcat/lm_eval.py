"""lm-evaluation-harness's own command line with lawcat's model registered as `lawcat`.

    python -m lawcat.lm_eval --model lawcat --model_args pretrained=runs/pk --tasks piqa,arc_easy
    lawcat-lm-eval --model lawcat --model_args pretrained=passkey-smollm2,dtype=bfloat16 --tasks hellaswag
    lawcat-lm-eval ls tasks                                  # any lm-eval subcommand, unchanged

Everything after the program name goes to lm-eval's CLI as it is; only the model name `lawcat` is added to its
registry first. lm-eval 0.4.x finds models through that registry alone: a model is known once the module
defining it has been imported, and lm-eval looks for none in other installed packages (no plugin entry points).
So a plain `lm_eval --model lawcat` cannot know lawcat's model; this wrapper, or `import lawcat.lm_eval;
lawcat.lm_eval.register()` before calling `lm_eval.simple_evaluate(model="lawcat", ...)`, makes it known.

`pretrained=` takes what `lawcat eval` takes: a lawcat run directory, a shipped student's name, an HF model
directory, a .gguf file or "default" (see lawcat.eval.lm_eval_model.resolve_model). Nothing is forced offline
here: set HF_DATASETS_OFFLINE=1 (and HF_HUB_OFFLINE=1) to keep lm-eval from fetching datasets. lawcat's small
offline tasks live in `lawcat/eval/lm_eval_tasks` (pass that folder to `--include_path`).
"""
from __future__ import annotations

import sys
from typing import Sequence

__all__ = ["MODEL_NAME", "MODEL_TARGET", "main", "register"]

MODEL_NAME = "lawcat"
# A lazy entry: the model class (and torch with it) is imported only when lm-eval builds the model.
MODEL_TARGET = "lawcat.eval.lm_eval_model:LawcatLM"


def register() -> None:
    """Make `lawcat` a model name in lm-eval's registry (idempotent)."""
    # lm-eval fills its registry with its own models on this import only while the registry is empty, so it
    # must come before lawcat's entry or `--model hf` and the rest would be unknown.
    import lm_eval.models  # noqa: F401
    from lm_eval.api.registry import model_registry

    if MODEL_NAME not in model_registry:
        model_registry.register(MODEL_NAME, target=MODEL_TARGET)


def main(argv: Sequence[str] | None = None) -> int:
    """lm-eval's CLI (`lm_eval ...`) with `lawcat` registered; argv defaults to the process's arguments."""
    register()
    from lm_eval.__main__ import cli_evaluate

    args = sys.argv[1:] if argv is None else list(argv)
    saved = sys.argv
    sys.argv = ["lm-eval", *args]  # lm-eval's CLI parses sys.argv itself
    try:
        cli_evaluate()
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":
    sys.exit(main())
