"""Run lm-evaluation-harness tasks on a lawcat student, a teacher, or any HF causal LM.

    from lawcat.eval.lm_eval_adapter import run_lm_eval, PAPER_TASKS
    run_lm_eval("runs/pk", tasks=PAPER_TASKS, out_dir="results/pk_lm_eval")      # a run directory
    run_lm_eval("default", tasks=["lawcat_qa_mc"], out_dir="/tmp/x", limit=10)   # the default teacher
    run_lm_eval(model, tokenizer, tasks=[...], out_dir=...)                      # objects you already hold

    python -m lawcat.eval.lm_eval_adapter runs/pk --tasks piqa,arc_easy --out results/pk_lm_eval

It writes `lm_eval.json` (lm-eval's full results plus a `lawcat` block: the metric used per task,
the average, and which tasks were unavailable and why) and `lm_eval.md` (a table).

What runs where:
- The model is wrapped in `LawcatLM`, lm-eval's `HFLM` taking an already-built model and tokenizer
  (registered in lm-eval as "lawcat", so `--model lawcat --model_args pretrained=runs/pk` works too once
  this module is imported).
- Nothing is fetched: the whole run is in HF offline mode. A task whose dataset is not in the local HF
  datasets cache is reported as unavailable, with the reason, before any model call. The paper's five
  tasks (PAPER_TASKS) therefore only run where their datasets were cached beforehand, or where
  `task_overrides` points them at local files (e.g. `{"piqa": {"dataset_path": "json",
  "dataset_kwargs": {"data_files": {"validation": "piqa_val.jsonl"}}}}`): the task's own prompt and
  scoring are kept, only the data source changes.
- `lawcat/eval/lm_eval_tasks/` ships small offline tasks (tag `lawcat_local`): `lawcat_qa_mc`
  (multiple choice), `lawcat_qa_gen` (generate_until), `lawcat_qa_ppl` (loglikelihood_rolling).

Where HFLM needed changing (see `LawcatLM`):
- `_model_call` passes `use_cache=False`: scoring never reuses a cache, and building one (a DynamicCache
  for HF models, the recurrent LawcatCache for students) on every scoring batch is wasted work.
- `_model_generate` generates left-padded batches row by row, without the padding. HFLM batches prompts
  with left padding and relies on the model masking it; a recurrent model must get that exactly right
  in its state update (and HF models give slightly different logits under padding too). Unpadded rows
  make `generate_until` results independent of the batch size. Set `unpadded_generate=False` to pass
  padded batches to `generate()` as HFLM does.
- `get_model_info` does not ask the Hub for a model SHA (HFLM calls `HfApi().model_info`, a network
  request, with the model object as the repo id).
- The tokenizer is copied before HFLM sets a pad token on it, so the caller's tokenizer is not changed.
lm-eval never touches `past_key_values` itself: the cache object is seen only by the model's own
`generate()`, so a non-`transformers.Cache` cache works as long as `model.generate` does.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import difflib
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

log = logging.getLogger(__name__)

# The paper's five LM-eval tasks (benchmarks.md §6) and the metric each is reported with.
PAPER_TASKS: tuple[str, ...] = ("piqa", "arc_easy", "arc_challenge", "hellaswag", "winogrande")
PAPER_METRICS: dict[str, str] = {
    "piqa": "acc",
    "arc_easy": "acc",
    "arc_challenge": "acc_norm",
    "hellaswag": "acc_norm",
    "winogrande": "acc",
}
LOCAL_TASKS_DIR = Path(__file__).with_name("lm_eval_tasks")
LOCAL_METRICS: dict[str, str] = {
    "lawcat_qa_mc": "acc",
    "lawcat_qa_gen": "exact_match",
    "lawcat_qa_ppl": "word_perplexity",
}
# Metrics that are fractions in [0, 1]: shown as percentages and averaged; others (perplexities) are not.
FRACTION_METRICS = {"acc", "acc_norm", "exact_match", "f1", "mcc", "em"}
_METRIC_PREFERENCE = ("acc", "exact_match", "acc_norm", "word_perplexity", "bits_per_byte")

# Indexing all of lm-eval's ~230 task folders takes ~17 s on 2 cores; the paper tasks live in four.
_BUILTIN_TASK_DIRS = {"piqa": "piqa", "arc_easy": "arc", "arc_challenge": "arc",
                      "hellaswag": "hellaswag", "winogrande": "winogrande"}


# --------------------------------------------------------------------------------------------------
# offline mode


@contextlib.contextmanager
def offline_mode():
    """HF_HUB_OFFLINE=1 / HF_DATASETS_OFFLINE=1 for the duration, also for modules already imported.

    huggingface_hub and datasets read these variables once, at import; the module flags are what
    their code consults per request, so both are set (and restored afterwards). With them set, a
    dataset that is not cached fails at once with OfflineModeIsEnabled / a cache miss, never a
    network wait.
    """
    env_keys = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved_env = {k: os.environ.get(k) for k in env_keys}
    patched: list[tuple[Any, str, Any]] = []

    def patch(module_name: str, attr: str) -> None:
        mod = sys.modules.get(module_name)
        if mod is None:
            with contextlib.suppress(ImportError):
                mod = __import__(module_name, fromlist=["_"])
        if mod is not None and hasattr(mod, attr):
            patched.append((mod, attr, getattr(mod, attr)))
            setattr(mod, attr, True)

    for k in env_keys:
        os.environ[k] = "1"
    patch("huggingface_hub.constants", "HF_HUB_OFFLINE")
    patch("datasets.config", "HF_HUB_OFFLINE")
    patch("datasets.config", "HF_DATASETS_OFFLINE")
    try:
        yield
    finally:
        for mod, attr, old in reversed(patched):
            setattr(mod, attr, old)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --------------------------------------------------------------------------------------------------
# model spec -> (model, tokenizer)


def _lawcat_attr(name: str):
    """`lawcat.<name>`, imported only when a spec string needs it (lawcat.models is heavy)."""
    import lawcat

    return getattr(lawcat, name)


def _is_student_dir(path: Path) -> bool:
    cfg = path / "config.json"
    if not cfg.is_file():
        return False
    try:
        model_type = json.loads(cfg.read_text()).get("model_type")
    except (OSError, ValueError):
        return False
    return model_type == "lawcat"


def resolve_model(spec, tokenizer=None):
    """Turn a model spec into (model, tokenizer).

    spec: a PreTrainedModel (with `tokenizer`, or one lawcat's loaders attached, or one in its
    name_or_path directory); a
    lawcat run directory (config.json with model_type "lawcat") -> `LawcatForCausalLM.from_pretrained`
    and the tokenizer saved beside it; anything else ("default", a .gguf file, an HF model directory)
    -> `lawcat.load_teacher(spec)`. A `tokenizer` given here wins over the one found with the model.
    """
    from transformers import AutoTokenizer, PreTrainedModel

    if isinstance(spec, PreTrainedModel):
        if tokenizer is None:  # lawcat's loaders attach one: load_student .tokenizer, load_teacher .lawcat_tokenizer
            tokenizer = getattr(spec, "tokenizer", None) or getattr(spec, "lawcat_tokenizer", None)
        if tokenizer is None:
            src = getattr(spec, "name_or_path", "") or ""
            if not src or not Path(src).is_dir():
                raise ValueError("a model object was given without a tokenizer: pass tokenizer=")
            tokenizer = AutoTokenizer.from_pretrained(src, local_files_only=True)
        return spec, tokenizer
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(f"model spec must be a PreTrainedModel or a string/path, not {type(spec).__name__}")

    spec = str(spec)
    path = Path(spec).expanduser()
    if path.is_dir() and _is_student_dir(path):
        cls = _lawcat_attr("LawcatForCausalLM")
        model = cls.from_pretrained(str(path))
        if tokenizer is None:
            tokenizer = getattr(model, "tokenizer", None)  # load_student attaches the run's tokenizer
        if tokenizer is None:
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            except (OSError, ValueError) as e:
                raise ValueError(f"no tokenizer files in run directory {spec}: pass tokenizer= ({e})") from e
        return model, tokenizer

    if spec != "default" and not path.exists():
        raise FileNotFoundError(f"model spec {spec!r} is neither 'default' nor an existing file or directory")
    from lawcat.models.errors import UnsupportedTeacherError

    try:
        model, tok = _lawcat_attr("load_teacher")(spec)
    except UnsupportedTeacherError:
        if not path.is_dir():
            raise
        # Not a family lawcat can linearize, but still an HF causal LM that can be evaluated (as a baseline).
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True).eval()
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    return model, (tokenizer if tokenizer is not None else tok)


def _spec_name(spec) -> str:
    if isinstance(spec, (str, os.PathLike)):
        return str(spec)
    return getattr(spec, "name_or_path", "") or type(spec).__name__


# --------------------------------------------------------------------------------------------------
# the lm-eval model class


def _drop_object_model_warnings(record: logging.LogRecord) -> bool:
    msg = record.getMessage()
    return not ("`pretrained` model kwarg is not of type `str`" in msg
                or "Passed an already-initialized model through `pretrained`" in msg)


@register_model("lawcat")
class LawcatLM(HFLM):
    """lm-eval's HFLM over an already-built causal LM (lawcat student, teacher, or any PreTrainedModel).

    `pretrained` is a model object or a spec string for `resolve_model`. loglikelihood and
    loglikelihood_rolling are HFLM's (one forward over right-padded context+continuation, log-softmax,
    sum over the continuation tokens); generate_until is HFLM's with the changes in the module docstring.
    """

    def __init__(self, pretrained, tokenizer=None, device: str | None = "cpu", batch_size: int | str = 1,
                 max_length: int | None = None, dtype: str | torch.dtype | None = None,
                 unpadded_generate: bool = True, **kwargs):
        if isinstance(tokenizer, str):  # from --model_args: a tokenizer directory
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(tokenizer, local_files_only=True)
        model, tokenizer = resolve_model(pretrained, tokenizer)
        if device is not None and not getattr(model, "hf_device_map", None) and torch.device(device) != model.device:
            model = model.to(device)
        if dtype not in (None, "auto"):
            from lm_eval.models.utils_hf import get_dtype

            model = model.to(get_dtype(dtype))
        self.unpadded_generate = bool(unpadded_generate) if not isinstance(unpadded_generate, str) \
            else unpadded_generate.lower() in ("1", "true", "yes")
        self._model_source = _spec_name(pretrained)
        if isinstance(batch_size, str) and batch_size.isdigit():
            batch_size = int(batch_size)
        if not max_length:  # a student's config keeps the teacher's context length in teacher_config
            teacher_cfg = getattr(model.config, "teacher_config", None)
            if isinstance(teacher_cfg, dict) and not getattr(model.config, "max_position_embeddings", None):
                max_length = teacher_cfg.get("max_position_embeddings")
        hf_log = logging.getLogger("lm_eval.models.huggingface")
        hf_log.addFilter(_drop_object_model_warnings)  # HFLM warns about passing a model object: that is the point
        try:
            super().__init__(pretrained=model, tokenizer=copy.deepcopy(tokenizer), backend="causal",
                             batch_size=batch_size, max_length=int(max_length) if max_length else None, **kwargs)
        finally:
            hf_log.removeFilter(_drop_object_model_warnings)

    def _model_call(self, inps: torch.Tensor, attn_mask=None, labels=None) -> torch.Tensor:
        if attn_mask is not None or labels is not None:  # seq2seq only; not ours
            return super()._model_call(inps, attn_mask=attn_mask, labels=labels)
        with torch.no_grad(), torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                                             enabled=self.mixed_precision_dtype is not None):
            return self.model(input_ids=inps, use_cache=False).logits

    def _model_generate(self, context: torch.Tensor, max_length: int, stop: list[str], **generation_kwargs):
        attention_mask = generation_kwargs.pop("attention_mask", None)
        if not self.unpadded_generate or attention_mask is None or bool(attention_mask.all()):
            if attention_mask is not None:
                generation_kwargs["attention_mask"] = attention_mask
            return super()._model_generate(context, max_length, stop, **generation_kwargs)

        # Row by row without the padding; then laid out as HFLM expects: [padded context | new tokens | pad].
        padded_len = context.shape[1]
        max_new = max_length - padded_len
        new_tokens = []
        for row, mask in zip(context, attention_mask.bool()):
            ids = row[mask].unsqueeze(0)
            out = super()._model_generate(ids, ids.shape[1] + max_new, stop,
                                          attention_mask=torch.ones_like(ids), **dict(generation_kwargs))
            new_tokens.append(out[0, ids.shape[1]:])
        fill = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eot_token_id
        width = max(len(t) for t in new_tokens)
        result = context.new_full((context.shape[0], padded_len + width), fill)
        result[:, :padded_len] = context
        for i, t in enumerate(new_tokens):
            result[i, padded_len:padded_len + len(t)] = t
        return result

    def get_model_info(self) -> dict:
        model = self._model
        return {
            "model_source": self._model_source,
            "model_class": type(model).__name__,
            "model_num_parameters": sum(p.numel() for p in model.parameters()),
            "model_dtype": str(getattr(model, "dtype", "")),
        }


# --------------------------------------------------------------------------------------------------
# tasks: index, availability


def _task_manager(tasks: Sequence[str], include: Sequence[str] = ()):
    """A TaskManager indexing only what is needed when every task is a paper task or in `include`."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    include = [str(p) for p in include]
    tasks_root = Path(lm_eval.__file__).parent / "tasks"
    dirs = sorted({str(tasks_root / _BUILTIN_TASK_DIRS[t]) for t in tasks if t in _BUILTIN_TASK_DIRS})
    tm = TaskManager(include_defaults=False, include_path=dirs + include) if dirs + include else None
    if tm is None or any(t not in tm.all_tasks and not Path(t).is_file() for t in tasks):
        tm = TaskManager(include_path=include or None)  # full index (slow), for any other task name
    return tm


def _unavailable_reason(task: str, err: BaseException) -> str:
    msg = f"{type(err).__name__}: {err}"
    if len(msg) > 400:
        msg = msg[:400] + "..."
    offline_markers = ("OfflineModeIsEnabled", "Couldn't reach", "not cached", "offline", "DatasetNotFound",
                       "doesn't exist on the Hub", "FileNotFoundError")
    if any(m in msg for m in offline_markers):
        return (f"dataset for {task!r} is not available offline (not in the local HF datasets cache; "
                f"cache it, or point the task at local files with task_overrides) -- {msg}")
    return f"could not load task {task!r} -- {msg}"


def load_tasks(tasks: Sequence[str], task_manager, task_overrides: Mapping[str, Mapping] | None = None):
    """Build each task (which loads its dataset) offline, one at a time.

    Returns (specs, unavailable, report): specs maps each loadable task name to what simple_evaluate
    takes (a built Task, or the spec again for groups); unavailable maps the others to a one-line
    reason; report lists the names to report on, in order (a tag or group also lists its tasks).
    Unknown task names raise ValueError (a typo is not "unavailable").
    """
    from lm_eval.tasks._yaml_loader import load_yaml

    task_overrides = dict(task_overrides or {})
    unknown = [t for t in tasks if t not in task_manager.all_tasks and not Path(t).is_file()]
    if unknown:
        hints = {t: difflib.get_close_matches(t, task_manager.all_tasks, n=3) for t in unknown}
        raise ValueError("unknown lm-eval task(s): " + ", ".join(
            f"{t}" + (f" (did you mean {', '.join(h)}?)" if h else "") for t, h in hints.items()))
    specs: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    report: list[str] = []
    with offline_mode():
        for name in tasks:
            spec: Any = name
            if name in task_overrides:
                entry = task_manager.task_index.get(name)
                if entry is None or entry.yaml_path is None:
                    raise ValueError(f"task_overrides[{name!r}]: {name} is not a YAML task")
                spec = {**load_yaml(entry.yaml_path, resolve_func=True), **task_overrides[name], "task": name}
                for key in ("tag", "group"):
                    spec.pop(key, None)
            try:
                built = task_manager.load([spec])
            except Exception as e:  # noqa: BLE001 -- any failure to build a task means "cannot run it here"
                unavailable[name] = _unavailable_reason(name, e)
                log.warning("lm-eval task unavailable: %s", unavailable[name])
                report.append(name)
                continue
            if built["groups"]:
                specs[name] = spec
            else:
                specs.update(built["tasks"])
            # a group has a row of its own (its aggregate, where it defines one); a tag is only its tasks
            names = ([name] if name in built["groups"] else []) + list(built["tasks"])
            report += [n for n in names if n not in report]
    return specs, unavailable, report


# --------------------------------------------------------------------------------------------------
# results -> summary -> files


def _pick_metric(task: str, task_results: Mapping[str, Any], metrics: Mapping[str, str]):
    """(metric, value, stderr) for one task's lm-eval results dict (keys like 'acc,none')."""
    wanted = metrics.get(task) or PAPER_METRICS.get(task) or LOCAL_METRICS.get(task)
    names = [k.split(",")[0] for k in task_results if "," in k and "_stderr" not in k]
    if wanted is None:
        wanted = next((m for m in _METRIC_PREFERENCE if m in names), names[0] if names else None)
    if wanted is None:
        return None, None, None
    keys = [k for k in task_results if k.split(",")[0] == wanted]
    if not keys:
        return wanted, None, None
    key = f"{wanted},none" if f"{wanted},none" in keys else keys[0]
    filt = key.split(",", 1)[1]
    stderr = task_results.get(f"{wanted}_stderr,{filt}")
    value = task_results[key]
    to_float = lambda v: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
    return wanted, to_float(value), to_float(stderr)


def summarize(results: Mapping[str, Any] | None, tasks: Sequence[str], unavailable: Mapping[str, str],
              metrics: Mapping[str, str] | None = None) -> dict:
    """Per task: metric, value, stderr, n (or the reason it is unavailable); and the average of the
    fraction-valued metrics over the tasks that ran (the paper's "Avg." when all five ran)."""
    metrics = dict(metrics or {})
    res = (results or {}).get("results", {})
    n_samples = (results or {}).get("n-samples", {})
    rows = {}
    for t in tasks:
        if t in unavailable:
            rows[t] = {"metric": metrics.get(t) or PAPER_METRICS.get(t) or LOCAL_METRICS.get(t),
                       "status": "unavailable", "reason": unavailable[t]}
            continue
        if t not in res:
            rows[t] = {"metric": None, "status": "missing", "reason": "no results returned by lm-eval"}
            continue
        metric, value, stderr = _pick_metric(t, res[t], metrics)
        n = n_samples.get(t, {}).get("effective") if isinstance(n_samples.get(t), dict) else None
        rows[t] = {"metric": metric, "value": value, "stderr": stderr, "n": n, "status": "ok"}
    averaged = [r["value"] for r in rows.values()
                if r["status"] == "ok" and r["metric"] in FRACTION_METRICS and r["value"] is not None]
    return {
        "tasks": rows,
        "average": (sum(averaged) / len(averaged)) if averaged else None,
        "average_over": [t for t, r in rows.items()
                         if r["status"] == "ok" and r["metric"] in FRACTION_METRICS and r["value"] is not None],
        "unavailable": dict(unavailable),
    }


def format_table(summary: Mapping[str, Any], title: str = "LM-eval") -> str:
    def fmt(metric, v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "n/a"
        return f"{100 * v:.2f}" if metric in FRACTION_METRICS else f"{v:.4g}"

    lines = [f"## {title}", "",
             "Accuracy-type metrics in %. Paper metrics: acc for piqa/arc_easy/winogrande, "
             "acc_norm for arc_challenge/hellaswag.", "",
             "| task | metric | value | ± stderr | n |", "|---|---|---:|---:|---:|"]
    for t, r in summary["tasks"].items():
        if r["status"] != "ok":
            lines.append(f"| {t} | {r['metric'] or ''} | {r['status']} | | |")
        else:
            lines.append(f"| {t} | {r['metric']} | {fmt(r['metric'], r['value'])} | "
                         f"{fmt(r['metric'], r['stderr']) if r['stderr'] is not None else ''} | {r['n'] or ''} |")
    n_all = len([r for r in summary["tasks"].values() if r["metric"] in FRACTION_METRICS or r["status"] != "ok"])
    avg = summary["average"]
    lines.append(f"| **average** | | {'n/a' if avg is None else f'{100 * avg:.2f}'} | | "
                 f"{len(summary['average_over'])}/{n_all} tasks |")
    if summary["unavailable"]:
        lines += ["", "Unavailable (not run; the average leaves them out):", ""]
        lines += [f"- `{t}`: {reason}" for t, reason in summary["unavailable"].items()]
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------
# the entry point


def run_lm_eval(model_spec_or_obj, tokenizer=None, tasks: Iterable[str] = PAPER_TASKS, out_dir=None,
                limit: int | float | None = None, batch_size: int | str = 1, num_fewshot: int | None = 0,
                device: str = "cpu", include_path=None, task_overrides: Mapping[str, Mapping] | None = None,
                metrics: Mapping[str, str] | None = None, max_length: int | None = None,
                log_samples: bool = False, bootstrap_iters: int = 1000, seed: int = 1234, **lm_kwargs) -> dict:
    """Run lm-eval tasks on a model; write `out_dir/lm_eval.json` and `out_dir/lm_eval.md`.

    model_spec_or_obj: a PreTrainedModel (with `tokenizer`), a `LawcatLM`, or a spec string for
        `resolve_model` ("default", a .gguf, an HF directory, a lawcat run directory).
    tasks: lm-eval task names (default: the paper's five). The local tasks in
        `lawcat/eval/lm_eval_tasks` are always indexed; `include_path` adds more YAML directories.
    task_overrides: {task: {config key: value}} merged over a task's YAML, e.g. local data files.
    metrics: {task: metric} to report instead of the default (paper metric / acc / exact_match ...).
    Tasks whose data cannot be loaded offline are listed as unavailable, not run, and do not raise.
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
    if out_path is not None:
        out_path.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    tm = _task_manager(tasks, includes)
    specs, unavailable, report = load_tasks(tasks, tm, task_overrides)

    results: dict | None = None
    if specs:
        with offline_mode():
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

    model_name = (model_spec_or_obj._model_source if isinstance(model_spec_or_obj, LawcatLM)
                  else _spec_name(model_spec_or_obj))
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
        "lm_eval_version": getattr(lm_eval, "__version__", "unknown"),
        "seconds": round(time.time() - t0, 2),
        **summary,
    }
    if out_path is not None:
        _atomic_write(out_path / "lm_eval.json",
                      json.dumps(out, indent=2, default=handle_non_serializable, ensure_ascii=False) + "\n")
        title = f"LM-eval: `{out['lawcat']['model']}` ({num_fewshot or 0}-shot" + \
                (f", limit {limit})" if limit is not None else ")")
        _atomic_write(out_path / "lm_eval.md", format_table(summary, title=title))
    return out


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
    a = p.parse_args(argv)
    limit = None if a.limit is None else (int(a.limit) if a.limit >= 1 else a.limit)
    out = run_lm_eval(a.model, tasks=[t for t in a.tasks.split(",") if t], out_dir=a.out, limit=limit,
                      batch_size=int(a.batch_size) if a.batch_size.isdigit() else a.batch_size,
                      num_fewshot=a.num_fewshot, device=a.device, include_path=a.include_path,
                      max_length=a.max_length)
    print(Path(a.out, "lm_eval.md").read_text())
    ran = [t for t, r in out["lawcat"]["tasks"].items() if r["status"] == "ok"]
    return 0 if ran else 1  # nothing could run (e.g. no dataset cached): say so with the exit code


if __name__ == "__main__":
    raise SystemExit(main())
