"""Loading lm-eval tasks: HF offline mode on request, a task index that is quick to build for the paper's tasks,
and a one-line reason for every task that cannot run here.

Offline (`offline=True`, or HF_DATASETS_OFFLINE / HF_HUB_OFFLINE set where the caller does not say), nothing is
fetched: a task whose dataset is not in the local HF datasets cache is reported as unavailable before any model
call, at once rather than after a network timeout. Online, lm-eval downloads datasets as it normally does.
Offline, the paper's five tasks therefore only run where their datasets were cached beforehand, or where
`task_overrides` points them at local files (e.g. `{"piqa": {"dataset_path": "json",
"dataset_kwargs": {"data_files": {"validation": "piqa_val.jsonl"}}}}`): the task's own prompt and
scoring are kept, only the data source changes.
"""
from __future__ import annotations

import contextlib
import difflib
import logging
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

__all__ = ["LOCAL_TASKS_DIR", "UnknownTaskError", "build_task_manager", "load_tasks", "offline_from_env",
           "offline_mode"]

# The adapter's logger, as before this module was split out of lm_eval_adapter.py: log filters and
# handlers set up for that name keep catching the "task unavailable" warnings.
log = logging.getLogger("lawcat.eval.lm_eval_adapter")

# Small offline tasks shipped with lawcat (tag `lawcat_local`), always indexed by run_lm_eval.
LOCAL_TASKS_DIR = Path(__file__).with_name("lm_eval_tasks")

# Indexing all of lm-eval's ~230 task folders takes ~17 s on 2 cores; the paper tasks live in four.
_BUILTIN_TASK_DIRS = {"piqa": "piqa", "arc_easy": "arc", "arc_challenge": "arc",
                      "hellaswag": "hellaswag", "winogrande": "winogrande"}


class UnknownTaskError(ValueError):
    """A task name lm-eval does not know (a typo, or a YAML folder not on the include path)."""


# --------------------------------------------------------------------------------------------------
# offline mode


_OFFLINE_ENV = ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")


def offline_from_env() -> bool:
    """Whether the environment asks for offline mode (HF_DATASETS_OFFLINE or HF_HUB_OFFLINE set to 1/true/yes/on):
    the default where a caller says neither way."""
    return any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on") for k in _OFFLINE_ENV)


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
# tasks: index, availability


def build_task_manager(tasks: Sequence[str], include: Sequence[str] = ()):
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


def _unavailable_reason(task: str, err: BaseException, offline: bool = True) -> str:
    msg = f"{type(err).__name__}: {err}"
    if len(msg) > 400:
        msg = msg[:400] + "..."
    offline_markers = ("OfflineModeIsEnabled", "Couldn't reach", "not cached", "offline", "DatasetNotFound",
                       "doesn't exist on the Hub", "FileNotFoundError")
    if any(m in msg for m in offline_markers) and not offline:
        return (f"dataset for {task!r} could not be fetched (no network?) nor found in the local HF datasets "
                f"cache -- {msg}")
    if any(m in msg for m in offline_markers):
        return (f"dataset for {task!r} is not available offline (not in the local HF datasets cache; "
                f"cache it, or point the task at local files with task_overrides) -- {msg}")
    return f"could not load task {task!r} -- {msg}"


def load_tasks(tasks: Sequence[str], task_manager, task_overrides: Mapping[str, Mapping] | None = None,
               offline: bool = True):
    """Build each task (which loads its dataset) one at a time; offline (nothing fetched) unless `offline=False`.

    Returns (specs, unavailable, report): specs maps each loadable task name to what simple_evaluate
    takes (a built Task, or the spec again for groups); unavailable maps the others to a one-line
    reason; report lists the names to report on, in order (a tag or group also lists its tasks).
    Unknown task names raise UnknownTaskError, a ValueError (a typo is not "unavailable").
    """
    from lm_eval.tasks._yaml_loader import load_yaml

    task_overrides = dict(task_overrides or {})
    unknown = [t for t in tasks if t not in task_manager.all_tasks and not Path(t).is_file()]
    if unknown:
        hints = {t: difflib.get_close_matches(t, task_manager.all_tasks, n=3) for t in unknown}
        raise UnknownTaskError("unknown lm-eval task(s): " + ", ".join(
            f"{t}" + (f" (did you mean {', '.join(h)}?)" if h else "") for t, h in hints.items()))
    specs: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    report: list[str] = []
    with offline_mode() if offline else contextlib.nullcontext():
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
                unavailable[name] = _unavailable_reason(name, e, offline)
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

