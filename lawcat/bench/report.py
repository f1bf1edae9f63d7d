"""The results file of `lawcat bench` (bench.json, in lawcat.results_file's envelope), its checks, the markdown
tables (one function per section), merging runs.

File format (UTF-8 JSON, written atomically; every number raw, nothing rounded)::

    {"format": "lawcat-bench", "version": 1,
     "run": {"date", "argv", "device", "dtype", "settings": {...}, "machine": {...}, "wall_s"},
     "model": {"name", "source", "arch", "family", "shape": {...}, "params", "lawcat_params", "weights_bytes",
               "dtype", "attn_implementation", "lawcat": {...}} | null,
     "matmul": {"n", "dtype", "flops", "status", "ms", "times_ms", "flops_per_s"} | null,
     "records": [{"kind": "prefill"|"decode"|"op", "model": "teacher"|"student"|<op method>,
                  "length": T, "batch", "status": "ok"|"oom"|"skipped"|"error"|"unsupported",
                  "ms", "times_ms", "peak_bytes", "base_bytes", "tokens_per_s", "flops", "flops_per_s",
                  "utilization" (prefill), "state_bytes" (decode), "reason" (skipped), "error" (oom/error)}]}

`length` is the prompt length for prefill, the context before the timed steps for decode, T for the operator.
`ms` is the median of `times_ms` (per step for decode). `peak_bytes` is CUDA's allocator peak (weights
included), null on CPU.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_write_bytes
from ..results_file import read_envelope, write_envelope
from ..units import GiB, MiB, format_count, format_length
from .errors import BenchError
from .settings import FORMAT, FORMAT_VERSION

__all__ = ["BenchResultsError", "STATUSES", "format_ms", "markdown_report", "merge_results", "read_results",
           "validate_results", "write_json", "write_report"]

STATUSES = ("ok", "oom", "skipped", "error", "unsupported")
RECORD_KINDS = ("prefill", "decode", "op")


class BenchResultsError(BenchError):
    pass


def format_ms(x) -> str:
    if x is None:
        return "—"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


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
    path = Path(path)
    if path.is_dir():
        plain, packed = path / "bench.json", path / "bench.json.gz"
        path = packed if packed.is_file() and not plain.is_file() else plain
    return validate_results(read_envelope(path, FORMAT, FORMAT_VERSION, error=BenchResultsError,
                                          made_by="lawcat bench"))


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


# ---- markdown ---------------------------------------------------------------------------------------------
def _records(results, kind):
    return [r for r in results.get("records", []) if r["kind"] == kind]


def _series_names(recs, preferred=("teacher", "student")):
    names = list(dict.fromkeys(r["model"] for r in recs))
    return [n for n in preferred if n in names] + [n for n in names if n not in preferred]


def _cell(rec, value_fn):
    if rec is None:
        return ""
    st = rec["status"]
    if st == "ok":
        return value_fn(rec)
    return {"oom": "OOM", "skipped": "—", "error": "error", "unsupported": "n/a"}[st]


def _gib(b):
    return "—" if b is None else f"{b / GiB:.2f}"


def _pct(x):
    return "—" if x is None else f"{100 * x:.1f}%"


def _footnotes(recs) -> list[str]:
    notes = []
    for r in recs:
        if r["status"] in ("skipped", "error", "unsupported") or (r["status"] == "oom" and r.get("error")):
            why = r.get("reason") or r.get("error") or ""
            batch = f", batch {r['batch']}" if r["kind"] == "decode" and r.get("batch", 1) != 1 else ""
            where = f"- {r['model']} at {format_length(r['length'])}{batch}: {r['status']}"
            notes.append(where + (f" ({why})" if why else ""))
    return notes


def _notes(recs) -> list[str]:
    notes = _footnotes(recs)
    return ["", *notes] if notes else []


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def markdown_report(results: dict) -> str:
    """bench.md: the run's header, then one section per kind of record the run has."""
    lines = _header(results)
    for section in (_prefill_section, _decode_section, _op_section):
        lines += section(results)
    return "\n".join(lines) + "\n"


def _header(results: dict) -> list[str]:
    run, model, mm = results["run"], results.get("model") or {}, results.get("matmul")
    mach = run.get("machine", {})
    lines = [f"# lawcat bench: {model.get('name') or 'attention operator'}", ""]
    if model:
        lines.append(f"Model: {model.get('source', '')}; {format_count(model.get('params', 0))} parameters, "
                     f"{model.get('lawcat_params', 0):,} LAWCAT parameters, {model.get('dtype')}, "
                     f"teacher attention `{model.get('attn_implementation')}`.")
    lines.append(f"Machine: {mach.get('device')} ({run.get('device')}), torch {mach.get('torch')}, transformers "
                 f"{mach.get('transformers')}, fla-core {mach.get('fla_core')}, triton {mach.get('triton')}; "
                 f"{run.get('date')}.")
    if mm and mm.get("flops_per_s"):
        lines.append(f"Matmul reference (this run): {mm['n']}³ {mm['dtype']} at {mm['flops_per_s'] / 1e12:.3g} TFLOP/s "
                     f"({format_ms(mm['ms'])} ms).")
    if run.get("argv"):
        lines.append(f"Command: `{' '.join(str(a) for a in run['argv'])}`")
    lines.append("Times are medians of repeated runs after warm-up (CUDA events on GPU); OOM = out of memory; "
                 "— = not run (see notes).")
    return lines


def prefill_floor_ms(results: dict, rec: dict) -> float | None:
    """The student's prefill floor at rec's length: its matmul FLOPs (all but the linear attention) at the run's
    matmul rate, plus the attention operator it uses (gla or gla-triton, timed alone at this length, batch and the
    model's head shape) once per layer. None where the run lacks a piece."""
    rate = (results.get("matmul") or {}).get("flops_per_s")
    model = results.get("model") or {}
    shape, backend = model.get("shape") or {}, (model.get("lawcat") or {}).get("gla_backend")
    flops = rec.get("flops_breakdown") or {}
    if rec.get("model") != "student" or not rate or not flops or not shape:
        return None
    method = "gla-triton" if backend == "triton" else "gla"
    op = next((r for r in _records(results, "op") if r["model"] == method and r["length"] == rec["length"]
               and r["status"] == "ok" and r.get("batch", 1) == rec.get("batch", 1)
               and (r.get("shape") or {}).get("heads") == shape.get("heads")
               and (r.get("shape") or {}).get("head_dim") == shape.get("head_dim")), None)
    if op is None:
        return None
    matmul = flops["total"] - flops.get("linear_attention", 0)
    return matmul / rate * 1e3 + shape["layers"] * op["ms"]


def _prefill_section(results: dict) -> list[str]:
    pre = _records(results, "prefill")
    if not pre:
        return []
    s = results["run"].get("settings", {})
    names = _series_names(pre)
    by = {(r["model"], r["length"]): r for r in pre}
    both = {"teacher", "student"} <= set(names)
    header = ["tokens"] + [f"{n} ms" for n in names] + (["student speed-up"] if both else [])
    floors = {r["length"]: prefill_floor_ms(results, r) for r in pre if r["model"] == "student" and r["status"] == "ok"}
    has_floor = any(f is not None for f in floors.values())
    header += ["student floor ms", "student x floor"] if has_floor else []
    header += [f"{n} peak GiB" for n in names] + [f"{n} tok/s" for n in names] + [f"{n} util" for n in names]
    rows = []
    for T in sorted({r["length"] for r in pre}):
        row = [format_length(T)] + [_cell(by.get((n, T)), lambda r: format_ms(r["ms"])) for n in names]
        if both:
            t, st = by.get(("teacher", T)), by.get(("student", T))
            ok = t and st and t["status"] == st["status"] == "ok"
            row.append(f"{t['ms'] / st['ms']:.2f}x" if ok else "")
        if has_floor:
            floor, st = floors.get(T), by.get(("student", T))
            row += ["—", "—"] if floor is None else [format_ms(floor), f"{st['ms'] / floor:.2f}"]
        row += [_cell(by.get((n, T)), lambda r: _gib(r.get("peak_bytes"))) for n in names]
        row += [_cell(by.get((n, T)), lambda r: f"{r['tokens_per_s']:,.0f}") for n in names]
        row += [_cell(by.get((n, T)), lambda r: _pct(r.get("utilization"))) for n in names]
        rows.append(row)
    intro = (f"Teacher: one HF forward (KV cache {'built' if s.get('teacher_cache', True) else 'off'}, logits of "
             f"the last position). Student: `prefill` in {s.get('chunk_size')}-token chunks. util = matmul FLOP/s "
             "(lawcat.bench.flops; teacher incl. causal attention) over the matmul reference."
             + (" Student floor = its matmul FLOPs at the matmul reference's rate plus its attention operator "
                "(timed alone, below) once per layer." if has_floor else ""))
    return ["", f"## Prefill (batch {s.get('batch', 1)})", "", intro, ""] + _table(header, rows) + _notes(pre)


_TEACHER_DECODE_TEXT = {
    "teacher": "HF DynamicCache, eager",
    "teacher-static": "transformers' StaticCache, eager",
    "teacher-graph": "StaticCache, each step replayed from a CUDA graph (lawcat.bench.teacher_decode)",
    "teacher-compiled": "StaticCache, the forward under torch.compile (reduce-overhead on CUDA)",
}


def _fastest_teacher_speedup(by: dict, names: list[str], key: tuple) -> str:
    """The fastest teacher series' ms over the student's at `key` (context, batch), naming that series when there
    are several."""
    st = by.get(("student", *key))
    teachers = [by[(n, *key)] for n in names if n.startswith("teacher")
                and by.get((n, *key), {}).get("status") == "ok"]
    if not (st and st["status"] == "ok" and teachers):
        return ""
    best = min(teachers, key=lambda r: r["ms"])
    several = sum(n.startswith("teacher") for n in names) > 1
    return f"{best['ms'] / st['ms']:.2f}x" + (f" ({best['model']})" if several else "")


def decode_floor_ms(rec: dict, bandwidth: dict | None) -> float | None:
    """A decode step's floor: the bytes it must read (`floor_bytes`) over the run's measured copy bandwidth."""
    rate = (bandwidth or {}).get("bytes_per_s")
    if not rate or not rec.get("floor_bytes"):
        return None
    return rec["floor_bytes"] / rate * 1e3


def _decode_section(results: dict) -> list[str]:
    dec = _records(results, "decode")
    if not dec:
        return []
    s = results["run"].get("settings", {})
    bw = results.get("bandwidth")
    names = _series_names(dec, preferred=(*_TEACHER_DECODE_TEXT, "student"))
    by = {(r["model"], r["length"], r.get("batch", 1)): r for r in dec}
    ratio = "student" in names and any(n.startswith("teacher") for n in names)
    floors = bool(bw and bw.get("bytes_per_s")) and any(r.get("floor_bytes") for r in dec)
    batches = sorted({r.get("batch", 1) for r in dec})
    header = (["context"] + [f"{n} ms/token" for n in names] + (["student speed-up"] if ratio else [])
              + [f"{n} tok/s" for n in names] + ([f"{n} x floor" for n in names] if floors else [])
              + [f"{n} cache MiB" for n in names] + [f"{n} peak GiB" for n in names])

    def x_floor(r):
        floor = decode_floor_ms(r, bw)
        return f"{r['ms'] / floor:.2f}" if floor else "—"

    def table(batch):
        rows = [[format_length(C)]
                + [_cell(by.get((n, C, batch)), lambda r: format_ms(r["ms"])) for n in names]
                + ([_fastest_teacher_speedup(by, names, (C, batch))] if ratio else [])
                + [_cell(by.get((n, C, batch)), lambda r: f"{r['tokens_per_s']:,.1f}") for n in names]
                + ([_cell(by.get((n, C, batch)), x_floor) for n in names] if floors else [])
                + [_cell(by.get((n, C, batch)), lambda r: f"{r['state_bytes'] / MiB:,.2f}") for n in names]
                + [_cell(by.get((n, C, batch)), lambda r: _gib(r.get("peak_bytes"))) for n in names]
                for C in sorted({r["length"] for r in dec if r.get("batch", 1) == batch})]
        return _table(header, rows)

    paths = [f"{n}: {_TEACHER_DECODE_TEXT[n]}" for n in names if n in _TEACHER_DECODE_TEXT]
    student = ("student: the recurrent LawcatCache (constant size), "
               + ("each step replayed from a CUDA graph on CUDA (lawcat.models.graph_decode)"
                  if s.get("decode_graph") else "eager, no CUDA graphs"))
    intro = "; ".join(paths + ([student] if "student" in names else [])) + "."
    if ratio:
        intro += " The speed-up is against the fastest teacher path at each context."
    if floors:
        intro += (f" x floor = ms/token over the step's floor: the bytes it must read (weights, plus the teacher's "
                  f"keys and values of the context or the student's state) at this run's copy bandwidth, "
                  f"{bw['bytes_per_s'] / 1e9:,.1f} GB/s.")
    batch_text = f"batch {batches[0]}" if len(batches) == 1 else "batches " + ", ".join(map(str, batches))
    title = (f"## Decode ({batch_text}, median of {s.get('decode_steps')} steps after {s.get('decode_warmup')} "
             "warm-up steps)")
    lines = ["", title, "", intro[0].upper() + intro[1:], ""]
    if len(batches) == 1:
        return lines + table(batches[0]) + _notes(dec)
    for batch in batches:
        lines += ["", f"### Batch {batch}", ""] + table(batch)
    return lines + _notes(dec)


def _op_section(results: dict) -> list[str]:
    ops = _records(results, "op")
    if not ops:
        return []
    run = results["run"]
    s = run.get("settings", {})
    names = _series_names(ops, preferred=("sdpa-flash", "sdpa-cudnn", "sdpa-efficient", "sdpa-math", "gla",
                                          "gla-triton"))
    by = {(r["model"], r["length"]): r for r in ops}
    shp = ops[0].get("shape") or {}
    rows = [[format_length(T)] + [_cell(by.get((n, T)), lambda r: format_ms(r["ms"])) for n in names]
            for T in sorted({r["length"] for r in ops})]
    notes = [f"{n}: {', '.join(f'{k}={v}' for k, v in r.items() if k in ('gqa', 'backend'))}"
             for n in names for r in [next(x for x in ops if x["model"] == n)] if r.get("gqa") or r.get("backend")]
    shape_text = (f"{shp['heads']} query heads, {shp['kv_heads']} KV heads, head dim {shp['head_dim']}, "
                  if {"heads", "kv_heads", "head_dim"} <= set(shp) else "")
    title = (f"## Attention operator alone ({shape_text}batch {s.get('batch', 1)}, {run.get('dtype')}; "
             "median ms)")
    intro = ("SDPA: causal, under `torch.nn.attention.sdpa_kernel(<backend>)`. gla: "
             "`lawcat.ops.gla.normalized_gla` (feature dim = head dim, Eq. 8 normalizer)"
             + (f"; {'; '.join(notes)}" if notes else "") + ".")
    return ["", title, "", intro, ""] + _table(["T"] + names, rows) + _notes(ops)


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
