"""bench.md: the markdown tables of a `lawcat bench` results dict, one function per section, and the floors the
tables compare against (the student's prefill floor, each decode step's floor)."""
from __future__ import annotations

from ..units import GiB, MiB, format_count, format_length

__all__ = ["decode_floor_ms", "format_ms", "markdown_report", "prefill_floor_ms"]


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
                "(timed alone, below) once per layer." if has_floor else "")
             + (" Graphed (`--prefill-graph`): prompts up to 4K replayed from CUDA graphs, the student's in its "
                "power-of-two bucket of lengths (left-padded), the teacher's captured at each exact length."
                if any(r.get("prefill_graph") for r in pre) else "")
             + (" Both models' norms and MLPs (shared modules) ran under torch.compile (`--compile-blocks`)."
                if s.get("compile_blocks") else ""))
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
                  if s.get("decode_graph") else "its step under torch.compile (reduce-overhead on CUDA)"
                  if s.get("decode_compile") else "eager, no CUDA graphs"))
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
