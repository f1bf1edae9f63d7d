"""The results file of `lawcat bench` (bench.json, in lawcat.results_file's envelope): its checks, reading, writing
(with bench.md from lawcat.bench.tables and the charts from lawcat.bench.plots) and merging runs.

File format (UTF-8 JSON, written atomically; every number raw, nothing rounded)::

    {"format": "lawcat-bench", "version": 1,
     "run": {"date", "argv", "device", "dtype", "settings": {...}, "machine": {...}, "wall_s"},
     "model": {"name", "source", "arch", "family", "shape": {...}, "params", "lawcat_params", "weights_bytes",
               "dtype", "attn_implementation", "lawcat": {...}} | null,
     "matmul": {"n", "dtype", "flops", "status", "ms", "times_ms", "flops_per_s"} | null,
     "bandwidth": {"bytes", "status", "ms", "times_ms", "bytes_per_s"} | null,
     "records": [{"kind": "prefill"|"decode"|"op", "model": "teacher"|"student"|<op method>,
                  "length": T, "batch", "status": "ok"|"oom"|"skipped"|"error"|"unsupported",
                  "ms", "times_ms", "peak_bytes", "base_bytes", "tokens_per_s", "flops", "flops_per_s",
                  "utilization" (prefill), "flops_breakdown" (prefill), "state_bytes", "floor_bytes" and
                  "decode_mode" (decode), "reason" (skipped), "error" (oom/error)}]}

`length` is the prompt length for prefill, the context before the timed steps for decode, T for the operator.
`ms` is the median of `times_ms` (per step for decode). `peak_bytes` is CUDA's allocator peak (weights
included), null on CPU.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_write_bytes
from ..results_file import locate, read_envelope, write_envelope
from .errors import BenchError
from .settings import FORMAT, FORMAT_VERSION
from .tables import markdown_report

__all__ = ["BenchResultsError", "STATUSES", "merge_results", "read_results",
           "validate_results", "write_json", "write_report"]

STATUSES = ("ok", "oom", "skipped", "error", "unsupported")
RECORD_KINDS = ("prefill", "decode", "op")


class BenchResultsError(BenchError):
    pass


# ---- checks and files -------------------------------------------------------------------------------------
def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x


def validate_results(results: dict) -> dict:
    """Raise BenchResultsError naming every problem; return the results unchanged when they are sound."""
    errs: list[str] = []
    if not isinstance(results, dict):
        raise BenchResultsError("bench results must be a JSON object")
    if results.get("format") != FORMAT:
        errs.append(f"format is {results.get('format')!r}, expected {FORMAT!r}")
    if results.get("version") != FORMAT_VERSION:
        errs.append(f"version is {results.get('version')!r}, expected {FORMAT_VERSION}")
    run = results.get("run")
    if not isinstance(run, dict):
        errs.append("'run' is missing")
    else:
        for key in ("date", "device", "dtype", "settings", "machine"):
            if key not in run:
                errs.append(f"run.{key} is missing")
    recs = results.get("records")
    if not isinstance(recs, list):
        errs.append("'records' is not a list")
        recs = []
    for i, r in enumerate(recs):
        where = f"records[{i}]"
        if not isinstance(r, dict):
            errs.append(f"{where} is not an object")
            continue
        if r.get("kind") not in RECORD_KINDS:
            errs.append(f"{where}.kind is {r.get('kind')!r}")
        if not isinstance(r.get("model"), str):
            errs.append(f"{where}.model is missing")
        if not isinstance(r.get("length"), int) or r["length"] < 1:
            errs.append(f"{where}.length is {r.get('length')!r}, expected a positive int")
        status = r.get("status")
        if status not in STATUSES:
            errs.append(f"{where}.status is {status!r}")
        if status == "ok":
            if not (_is_num(r.get("ms")) and r["ms"] > 0):
                errs.append(f"{where}: status ok but ms is {r.get('ms')!r}")
            if not (isinstance(r.get("times_ms"), list) and r["times_ms"] and all(_is_num(t) for t in r["times_ms"])):
                errs.append(f"{where}: status ok but times_ms is empty or not numbers")
            if r.get("kind") in ("prefill", "decode") and not _is_num(r.get("tokens_per_s")):
                errs.append(f"{where}: tokens_per_s is missing")
            if r.get("kind") == "decode" and not isinstance(r.get("state_bytes"), int):
                errs.append(f"{where}: state_bytes is missing")
        elif status == "skipped" and not r.get("reason"):
            errs.append(f"{where}: skipped without a reason")
        elif status in ("oom", "error", "unsupported") and r.get("ms") is not None:
            errs.append(f"{where}: status {status} but a time is recorded")
    if errs:
        raise BenchResultsError("bench results are not valid: " + "; ".join(errs[:10])
                                + (f" (and {len(errs) - 10} more)" if len(errs) > 10 else ""))
    return results


def write_json(results: dict, path) -> Path:
    """bench.json (or bench.json.gz) in the shared envelope of lawcat.results_file; every other top-level key
    (model, matmul) is kept as it is."""
    body = {k: v for k, v in results.items() if k not in ("format", "version", "run", "records")}
    return write_envelope(path, FORMAT, FORMAT_VERSION, results["run"], results["records"], **body)


def read_results(path) -> dict:
    """A bench.json (or .json.gz), or the folder holding one, checked by validate_results."""
    doc = read_envelope(locate(path, "bench.json"), FORMAT, FORMAT_VERSION, error=BenchResultsError,
                        made_by="lawcat bench")
    return validate_results(doc)


def merge_results(parts: list[dict]) -> dict:
    """One results dict from runs of the same model on the same device (e.g. a long-lengths run added to a
    short-lengths one). Each record keeps the index of its run in `run.merged_from`; a later run's point
    replaces an earlier one's of the same (kind, model, length) unless the later one was skipped."""
    if not parts:
        raise BenchResultsError("nothing to merge")
    for p in parts:
        validate_results(p)

    def key(p):
        return ((p.get("model") or {}).get("name"), p["run"]["machine"].get("device"), p["run"]["dtype"])

    if len({key(p) for p in parts}) > 1:
        raise BenchResultsError("only runs of the same model, device and dtype can be merged: "
                                + ", ".join(str(key(p)) for p in parts))
    out = json.loads(json.dumps(parts[0]))
    out["run"]["merged_from"] = [p["run"] for p in parts]
    out["matmul"] = next((p["matmul"] for p in parts if p.get("matmul")), None)
    points: dict[tuple, dict] = {}
    for i, p in enumerate(parts):
        for r in p["records"]:
            k = (r["kind"], r["model"], r["length"])
            if k in points and r["status"] == "skipped":
                continue
            points[k] = {**r, "run_index": i}
    out["records"] = sorted(points.values(), key=lambda r: (RECORD_KINDS.index(r["kind"]), r["length"]))
    return out


def write_report(results: dict, out_dir, plots: bool = True) -> dict[str, Path]:
    """bench.json, bench.md and (plots=True) the PNG charts into out_dir; returns the paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    validate_results(results)
    paths = {"json": write_json(results, out / "bench.json")}
    md = out / "bench.md"
    atomic_write_bytes(md, markdown_report(results).encode())
    paths["markdown"] = md
    if plots:
        from .plots import plot_all

        paths.update(plot_all(results, out))
    return paths
