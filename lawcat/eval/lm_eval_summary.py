"""lm-eval's results, reduced: one metric per task (the paper's where it names one), the average of the
fraction-valued ones (the paper's "Avg."), and the markdown table written beside lm_eval.json.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

__all__ = ["FRACTION_METRICS", "LOCAL_METRICS", "PAPER_METRICS", "PAPER_TASKS", "format_table", "summarize"]

# The paper's five LM-eval tasks (benchmarks.md §6) and the metric each is reported with.
PAPER_TASKS: tuple[str, ...] = ("piqa", "arc_easy", "arc_challenge", "hellaswag", "winogrande")
PAPER_METRICS: dict[str, str] = {
    "piqa": "acc",
    "arc_easy": "acc",
    "arc_challenge": "acc_norm",
    "hellaswag": "acc_norm",
    "winogrande": "acc",
}
LOCAL_METRICS: dict[str, str] = {
    "lawcat_qa_mc": "acc",
    "lawcat_qa_gen": "exact_match",
    "lawcat_qa_ppl": "word_perplexity",
}
# Metrics that are fractions in [0, 1]: shown as percentages and averaged; others (perplexities) are not.
FRACTION_METRICS = {"acc", "acc_norm", "exact_match", "f1", "mcc", "em"}
_METRIC_PREFERENCE = ("acc", "exact_match", "acc_norm", "word_perplexity", "bits_per_byte")


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

    def to_float(v):
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

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

