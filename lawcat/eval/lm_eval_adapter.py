"""Run lm-evaluation-harness tasks on a lawcat student, a teacher, or any HF causal LM.

    from lawcat.eval.lm_eval_adapter import run_lm_eval, PAPER_TASKS
    run_lm_eval("runs/pk", tasks=PAPER_TASKS, out_dir="results/pk_lm_eval")      # a run directory
    run_lm_eval("default", tasks=["lawcat_qa_mc"], out_dir="/tmp/x", limit=10)   # the default teacher
    run_lm_eval(model, tokenizer, tasks=[...], out_dir=...)                      # objects you already hold

    python -m lawcat.eval.lm_eval_adapter runs/pk --tasks piqa,arc_easy --out results/pk_lm_eval [--offline]

It writes `lm_eval.json` (lm-eval's full results plus a `lawcat` block: the metric used per task,
the average, and which tasks were unavailable and why) and `lm_eval.md` (a table).

What runs where:
- lm_eval_model: the model is wrapped in `LawcatLM`, lm-eval's `HFLM` taking an already-built model and
  tokenizer (registered in lm-eval as "lawcat": `python -m lawcat.lm_eval --model lawcat --model_args
  pretrained=runs/pk ...` is lm-eval's own CLI with it); its docstring lists where HFLM needed changing.
- lm_eval_task_loading: with `offline=True` nothing is fetched (the whole run is in HF offline mode) and a
  task whose dataset is not in the local HF datasets cache is reported as unavailable, with the reason,
  before any model call; `task_overrides` can point a task at local files. `offline=None` (the default)
  follows HF_DATASETS_OFFLINE / HF_HUB_OFFLINE; `offline=False` lets lm-eval download datasets.
- lm_eval_summary: the metric reported per task, the average, and the markdown table.
- `lawcat/eval/lm_eval_tasks/` ships small offline tasks (tag `lawcat_local`): `lawcat_qa_mc`
  (multiple choice), `lawcat_qa_gen` (generate_until), `lawcat_qa_ppl` (loglikelihood_rolling).

Everything importable from here before the split into those modules still is.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from lm_eval.models.huggingface import HFLM

from ..atomic import atomic_write_text
from .lm_eval_model import LawcatLM, resolve_model, spec_name
from .lm_eval_summary import FRACTION_METRICS, LOCAL_METRICS, PAPER_METRICS, PAPER_TASKS, format_table, summarize
from .lm_eval_task_loading import (
    LOCAL_TASKS_DIR,
    UnknownTaskError,
    build_task_manager,
    load_tasks,
    offline_from_env,
    offline_mode,
)

__all__ = ["FRACTION_METRICS", "LOCAL_METRICS", "LOCAL_TASKS_DIR", "LawcatLM", "PAPER_METRICS", "PAPER_TASKS",
           "UnknownTaskError", "format_table", "load_tasks", "main", "offline_mode", "resolve_model", "run_lm_eval",
           "summarize", "tasks_ran"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# the entry point


def run_lm_eval(model_spec_or_obj, tokenizer=None, tasks: Iterable[str] = PAPER_TASKS, out_dir=None,
                limit: int | float | None = None, batch_size: int | str = 1, num_fewshot: int | None = 0,
                device: str = "cpu", include_path=None, task_overrides: Mapping[str, Mapping] | None = None,
                metrics: Mapping[str, str] | None = None, max_length: int | None = None,
                log_samples: bool = False, bootstrap_iters: int = 1000, seed: int = 1234, offline: bool | None = None,
                model_name: str | None = None, **lm_kwargs) -> dict:
    """Run lm-eval tasks on a model; write `out_dir/lm_eval.json` and `out_dir/lm_eval.md`.

    model_spec_or_obj: a PreTrainedModel (with `tokenizer`), a `LawcatLM`, a spec string for
        `resolve_model` ("default", a .gguf, an HF directory, a lawcat run directory), or a function of no
        arguments returning (model, tokenizer), called only once a task is known to run.
    tasks: lm-eval task names (default: the paper's five). The local tasks in
        `lawcat/eval/lm_eval_tasks` are always indexed; `include_path` adds more YAML directories.
    task_overrides: {task: {config key: value}} merged over a task's YAML, e.g. local data files.
    metrics: {task: metric} to report instead of the default (paper metric / acc / exact_match ...).
    offline: True: nothing is fetched (HF offline mode for the whole run); False: lm-eval downloads datasets;
        None: offline when HF_DATASETS_OFFLINE or HF_HUB_OFFLINE is set.
    model_name: the name in the report (default: the spec string or the model's name_or_path).
    Tasks whose data cannot be loaded are listed as unavailable, not run, and do not raise; unknown task
    names raise UnknownTaskError. `tasks_ran(result)` says which tasks ran.
    Returns the dict written to lm_eval.json.
    """
    import lm_eval
    from lm_eval.utils import handle_non_serializable

    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    if not tasks:
        raise ValueError("no tasks given")
    includes = [str(LOCAL_TASKS_DIR)] + [str(p) for p in (
        include_path if isinstance(include_path, (list, tuple)) else [include_path]) if p is not None]
    out_path = Path(out_dir) if out_dir is not None else None

    offline = offline_from_env() if offline is None else bool(offline)
    t0 = time.time()
    tm = build_task_manager(tasks, includes)
    specs, unavailable, report = load_tasks(tasks, tm, task_overrides, offline=offline)
    if out_path is not None:  # after the task names are checked: a typo leaves no empty folder behind
        out_path.mkdir(parents=True, exist_ok=True)

    results: dict | None = None
    if specs:
        with offline_mode() if offline else contextlib.nullcontext():
            if _is_loader(model_spec_or_obj):
                model_spec_or_obj, loaded_tokenizer = model_spec_or_obj()
                tokenizer = tokenizer if tokenizer is not None else loaded_tokenizer
            if isinstance(model_spec_or_obj, HFLM):
                lm = model_spec_or_obj
            else:
                lm = LawcatLM(model_spec_or_obj, tokenizer=tokenizer, device=device, batch_size=batch_size,
                              max_length=max_length, **lm_kwargs)
            results = lm_eval.simple_evaluate(
                model=lm, tasks=list(specs.values()), num_fewshot=num_fewshot, limit=limit,
                batch_size=batch_size, device=device, task_manager=tm, log_samples=log_samples,
                bootstrap_iters=bootstrap_iters, random_seed=seed, numpy_random_seed=seed,
                torch_random_seed=seed, fewshot_random_seed=seed)

    if model_name is None:
        model_name = (model_spec_or_obj._model_source if isinstance(model_spec_or_obj, LawcatLM)
                      else spec_name(model_spec_or_obj))
    summary = summarize(results, report, unavailable, metrics)
    out = dict(results or {})
    if isinstance(out.get("config"), dict) and not out["config"].get("model"):
        out["config"]["model"] = model_name  # lm-eval records config._name_or_path, often empty for objects
    out["lawcat"] = {
        "model": model_name,
        "tasks": tasks,
        "num_fewshot": num_fewshot,
        "limit": limit,
        "batch_size": batch_size,
        "device": device,
        "offline": offline,
        "lm_eval_version": getattr(lm_eval, "__version__", "unknown"),
        "seconds": round(time.time() - t0, 2),
        **summary,
    }
    if out_path is not None:
        atomic_write_text(out_path / "lm_eval.json",
                      json.dumps(out, indent=2, default=handle_non_serializable, ensure_ascii=False) + "\n")
        title = f"LM-eval: `{out['lawcat']['model']}` ({num_fewshot or 0}-shot" + \
                (f", limit {limit})" if limit is not None else ")")
        atomic_write_text(out_path / "lm_eval.md", format_table(summary, title=title))
    return out


def _is_loader(obj) -> bool:
    """A function that builds the model (as opposed to a model, which is callable too)."""
    import torch

    return callable(obj) and not isinstance(obj, (torch.nn.Module, HFLM, str, os.PathLike, type))


def tasks_ran(result: Mapping) -> list[str]:
    """The tasks of a `run_lm_eval` result that ran (status "ok"), in report order."""
    return [t for t, r in result["lawcat"]["tasks"].items() if r["status"] == "ok"]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lawcat.eval.lm_eval_adapter",
                                description=run_lm_eval.__doc__.split("\n")[0])
    p.add_argument("model", help='"default", a .gguf file, an HF model directory, or a lawcat run directory')
    p.add_argument("--tasks", default=",".join(PAPER_TASKS), help="comma-separated lm-eval task names")
    p.add_argument("--out", required=True, help="output directory (lm_eval.json, lm_eval.md)")
    p.add_argument("--limit", type=float, default=None, help="examples per task (an int), or a fraction < 1")
    p.add_argument("--batch-size", default="1")
    p.add_argument("--num-fewshot", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--include-path", action="append", default=None, help="extra task YAML directory")
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("--offline", action=argparse.BooleanOptionalAction, default=None,
                   help="--offline: fetch nothing, report uncached datasets as unavailable; --no-offline: let "
                        "lm-eval download them (default: offline when HF_DATASETS_OFFLINE or HF_HUB_OFFLINE is set)")
    a = p.parse_args(argv)
    limit = None if a.limit is None else (int(a.limit) if a.limit >= 1 else a.limit)
    out = run_lm_eval(a.model, tasks=[t for t in a.tasks.split(",") if t], out_dir=a.out, limit=limit,
                      batch_size=int(a.batch_size) if a.batch_size.isdigit() else a.batch_size,
                      num_fewshot=a.num_fewshot, device=a.device, include_path=a.include_path,
                      max_length=a.max_length, offline=a.offline)
    print(Path(a.out, "lm_eval.md").read_text())
    return 0 if tasks_ran(out) else 1  # nothing could run (e.g. no dataset cached): say so with the exit code


if __name__ == "__main__":
    raise SystemExit(main())
