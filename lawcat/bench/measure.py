"""Timing a teacher and its student on a whole model: prefill, decode, and the warm-up before both.

* prefill: one prompt of T random tokens. Teacher: its HF forward (SDPA attention, KV cache built, logits of
  the last position only). Student: `student.prefill` through its chunked path (`chunk_size` tokens per call),
  so its memory stays flat in T. Latency, tokens/s, peak memory, FLOPs and utilisation.
* decode: after a prompt of C tokens (prefilled, untimed), `decode_steps` single-token steps, each timed
  (teacher: HF DynamicCache, and each other path of `teacher_decode` as its own series; student: the recurrent
  LawcatCache). ms/token, tokens/s, cache bytes, peak memory.

Each function appends one record per (length, model) through `emit` and tells the planner how it went; a point
that fails is recorded with its status (oom / error), never raised.
"""
from __future__ import annotations

import time

import torch

from ..cuda_graphs import capture
from ..models.graph_decode import StaticDecoder
from ..models.graph_prefill import MAX_TOKENS as PREFILL_GRAPH_MAX
from .flops import decode_flops, prefill_flops
from .settings import BenchSettings, teacher_series
from .teacher_decode import StaticTeacherDecoder
from .timing import free_memory, is_oom, measure, median, synchronize

__all__ = ["cache_nbytes", "global_warmup", "measure_decode", "measure_prefill", "random_ids", "with_flops"]


def cache_nbytes(cache) -> int:
    """Bytes held by a decoding cache: LawcatCache.nbytes(), or the keys and values of a transformers Cache."""
    if cache is None:
        return 0
    if callable(getattr(cache, "nbytes", None)):
        return int(cache.nbytes())
    total = 0
    for layer in getattr(cache, "layers", []) or []:
        for attr in ("keys", "values"):
            t = getattr(layer, attr, None)
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()
    return total


def random_ids(vocab: int, batch: int, T: int, device, seed: int) -> torch.Tensor:
    """Seeded random tokens: the teacher and the student of a point get the same input, and so do reruns."""
    gen = torch.Generator(device=device).manual_seed(seed)
    return torch.randint(0, vocab, (batch, T), device=device, generator=gen)


def with_flops(rec: dict, flops: int, rate: float | None, tokens: int) -> dict:
    """Add `flops` to a record and, for a finished point, tokens/s, FLOP/s and utilisation (FLOP/s / `rate`)."""
    ms = rec.get("ms")
    rec["flops"] = flops
    if rec["status"] == "ok" and ms:
        rec["tokens_per_s"] = tokens / (ms / 1e3)
        rec["flops_per_s"] = flops / (ms / 1e3)
        rec["utilization"] = rec["flops_per_s"] / rate if rate else None
    return rec


def measure_prefill(teacher, student, info, s: BenchSettings, device, planner, emit, rate):
    """One prefill record per (length, model); `rate` is the measured matmul FLOP/s, for utilisation."""
    models = {"teacher": teacher, "student": student}
    lawcat = student.config if student is not None else None
    vocab = info["shape"]["vocab"]
    for T in s.lengths:
        ids = random_ids(vocab, s.batch, T, device, s.seed + T)
        for name in s.models:
            model = models[name]
            series = ("prefill", name)
            base = {"kind": "prefill", "model": name, "length": T, "batch": s.batch}
            reason = planner.skip_reason(series, T, lambda n, name=name: prefill_flops(
                info["shape_obj"], n, name, lawcat, batch=s.batch)["total"])
            if reason:
                emit({**base, "status": "skipped", "reason": reason})
                continue
            graphed = s.prefill_graph and T <= PREFILL_GRAPH_MAX
            if name == "teacher" and graphed:
                fn = _graphed_teacher_prefill(model, ids, s.teacher_cache)
            elif name == "teacher":
                def fn(model=model):
                    return model(input_ids=ids, use_cache=s.teacher_cache, logits_to_keep=1)
            else:
                def fn(model=model):
                    return model.prefill(ids, chunk_size=s.chunk_size, graph=graphed)
            warmup = planner.warmup(series, s.warmup)
            with torch.no_grad():  # a graphed point captures in its first warm-up run, never in a timed one
                m = measure(fn, device, max(warmup, 1) if graphed else warmup, s.repeats, s.max_seconds)
            rec = {**base, **m.as_record()}
            if graphed:
                rec["prefill_graph"] = True
            elif name == "student":
                rec["chunk_size"] = s.chunk_size
            fl = prefill_flops(info["shape_obj"], T, name, lawcat, logits_tokens=1, batch=s.batch)
            rec["flops_breakdown"] = fl
            emit(with_flops(rec, fl["total"], rate, s.batch * T))
            planner.done(series, T, rec)
        ids = None  # not `del`: the timed closures above refer to it
        free_memory(device)
    if student is not None:  # the graphed buckets' memory pool would stay reserved through the later points
        student.__dict__.pop("_graphed_prefill", None)
        free_memory(device)


def _graphed_teacher_prefill(model, ids, use_cache: bool):
    """The teacher's prefill of exactly `ids`, captured in a CUDA graph at its first call and replayed after (on a
    CPU, the forward as it is): one graph per length and no padding, the teacher's best case."""
    held = {}

    def run():
        return model(input_ids=ids, use_cache=use_cache, logits_to_keep=1).logits

    def fn():
        if not ids.is_cuda:
            return run()
        if "graph" not in held:
            held["graph"], held["logits"] = capture(run, 2)
        held["graph"].replay()
        return held["logits"]

    return fn


def _student_step(model, ids, cache):
    """The student's own one-token forward over its cache: what `--decode-compile` hands to torch.compile."""
    return model(input_ids=ids, past_key_values=cache, use_cache=True).logits


def _decode_point(model, name, ids, steps_ids, s: BenchSettings, device, mode: str = "dynamic"):
    """Prefill `ids` (untimed), then time each of the decoding steps. Returns a record fragment. `mode`: the
    teacher's decode path (lawcat.bench.settings.TEACHER_DECODE_MODES)."""
    cuda = torch.device(device).type == "cuda"
    free_memory(device)
    cache = None
    out: dict = {}
    try:
        with torch.no_grad():
            t0 = time.perf_counter()
            teacher_static = name == "teacher" and mode != "dynamic"
            if teacher_static:  # a fixed-length cache (lawcat.bench.teacher_decode)
                teacher_decoder = StaticTeacherDecoder(model, ids.shape[1] + s.decode_warmup + s.decode_steps + 1,
                                                       mode=mode)
                teacher_decoder.prefill(ids)
                cache = teacher_decoder.cache
            elif name == "teacher":
                cache = model(input_ids=ids, use_cache=True, logits_to_keep=1).past_key_values
            else:
                _, cache = model.prefill(ids, chunk_size=s.chunk_size)
            synchronize(device)
            out["prefill_s"] = time.perf_counter() - t0
            out["state_bytes_after_prefill"] = cache_nbytes(cache)
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
                out["base_bytes"] = torch.cuda.memory_allocated(device)
            if name == "student" and s.decode_graph:  # one captured step, replayed (capture is not timed)
                decoder = StaticDecoder(model, cache, capture=cuda)
                decode = decoder.step
                out["decode_graph"] = decoder.graph is not None
            elif name == "student" and s.decode_compile:  # compiled in the first warm-up step (not timed)
                compiled = torch.compile(_student_step, fullgraph=True, dynamic=False,
                                         **({"mode": "reduce-overhead"} if cuda else {}))

                def decode(step):
                    compiled(model, step, cache)
                out["decode_mode"] = "compiled"
            elif teacher_static:  # graph / compiled: captured or compiled in the warm-up steps (not timed)
                decode = teacher_decoder.step
                out["decode_graph"] = mode == "graph"
                out["teacher_cache"] = "static"
            else:
                def decode(step):
                    model(input_ids=step, past_key_values=cache, use_cache=True)
            for i in range(s.decode_warmup):
                decode(steps_ids[:, i:i + 1])
            synchronize(device)
            times, events = [], []
            t0 = time.perf_counter()
            for i in range(s.decode_warmup, s.decode_warmup + s.decode_steps):
                step = steps_ids[:, i:i + 1]
                if cuda:
                    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    a.record()
                    decode(step)
                    b.record()
                    events.append((a, b))
                else:
                    t1 = time.perf_counter()
                    decode(step)
                    times.append((time.perf_counter() - t1) * 1e3)
            synchronize(device)
            wall = time.perf_counter() - t0
            if cuda:
                times = [a.elapsed_time(b) for a, b in events]
            out.update(status="ok", times_ms=[round(t, 6) for t in times], ms=median(times),
                       wall_ms_per_token=wall * 1e3 / max(1, s.decode_steps), state_bytes=cache_nbytes(cache),
                       seq_length_after=int(cache.get_seq_length()))
            out["peak_bytes"] = torch.cuda.max_memory_allocated(device) if cuda else None
    except Exception as e:  # noqa: BLE001 - recorded per point
        out.update(status="oom" if is_oom(e) else "error", error=f"{type(e).__name__}: {str(e).strip()[:200]}",
                   times_ms=[], ms=None)
    cache = decoder = decode = teacher_decoder = None
    free_memory(device)
    out.setdefault("peak_bytes", None)
    out.setdefault("base_bytes", None)
    return out


def measure_decode(teacher, student, info, s: BenchSettings, device, planner, emit):
    """One decode record per (batch, context length, model series), each with `floor_bytes`: what one step must
    read at least (the model's weights, and the teacher's keys and values of the context or the student's state),
    which over the run's copy bandwidth is the step's floor."""
    models = {"teacher": teacher, "student": student}
    lawcat = student.config if student is not None else None
    vocab = info["shape"]["vocab"]
    weights = {name: sum(p.numel() * p.element_size() for p in m.parameters())
               for name, m in models.items() if m is not None}
    for B in s.decode_batches or [s.batch]:
        for C in s.decode_contexts:
            ids = random_ids(vocab, B, C, device, s.seed + C)
            steps_ids = random_ids(vocab, B, s.decode_warmup + s.decode_steps, device, s.seed + 1)
            for name, mode in _decode_series(s):
                _decode_series_point(models[name], name, mode, ids, steps_ids, weights[name], info, lawcat, s,
                                     device, planner, emit)
            del ids, steps_ids
            free_memory(device)


def _decode_series_point(model, name, mode, ids, steps_ids, weights_bytes, info, lawcat, s, device, planner, emit):
    B, C = ids.shape
    label = teacher_series(mode) if name == "teacher" else name
    series = ("decode", label, B)
    base = {"kind": "decode", "model": label, "length": C, "batch": B, "steps": s.decode_steps}
    if name == "teacher":
        base["decode_mode"] = mode
    if mode == "graph" and torch.device(device).type != "cuda":
        emit({**base, "status": "unsupported", "reason": "a CUDA graph needs a CUDA device"})
        return
    steps = s.decode_warmup + s.decode_steps

    def work(n):  # the point's prefill and its steps
        return (prefill_flops(info["shape_obj"], n, name, lawcat, batch=B)["total"]
                + steps * decode_flops(info["shape_obj"], n, name, lawcat, batch=B)["total"])
    reason = planner.skip_reason(series, C, work)
    if reason:
        emit({**base, "status": "skipped", "reason": reason})
        return
    rec = {**base, **_decode_point(model, name, ids, steps_ids, s, device, mode)}
    rec = with_flops(rec, decode_flops(info["shape_obj"], C, name, lawcat, batch=B)["total"], None, B)
    rec.pop("utilization", None)
    if rec["status"] == "ok":
        elem = next(model.parameters()).element_size()
        shape = info["shape_obj"]
        kv = 2 * shape.layers * shape.kv_heads * shape.head_dim * C * B * elem
        rec["floor_bytes"] = weights_bytes + (kv if name == "teacher" else rec["state_bytes"])
    emit(rec)
    if rec["status"] == "ok":
        point_s = rec["prefill_s"] + steps * rec["wall_ms_per_token"] / 1e3
        planner.done(series, C, rec, point_s, repeated=False)
    else:
        planner.done(series, C, rec)


def _decode_series(s: BenchSettings) -> list[tuple[str, str]]:
    """(model, teacher decode mode) of each decode series, in the order they run."""
    return [(name, mode) for name in s.models for mode in (s.teacher_decode if name == "teacher" else ("",))]


def global_warmup(models: dict, info: dict, s: BenchSettings, device) -> dict:
    """A short prefill (the student's also in two chunks) and two decode steps per model before anything is timed:
    kernel compilation and autotuning (fla's Triton kernels take seconds to minutes the first time) land here, not
    in a point."""
    T = min(list(s.lengths) + list(s.decode_contexts) + [4096])
    ids = random_ids(info["shape"]["vocab"], s.batch, T + 2, device, s.seed)
    out = {"tokens": T}
    for name in s.models:
        model = models[name]
        t0 = time.perf_counter()
        try:
            with torch.no_grad():
                if name == "teacher":
                    cache = model(input_ids=ids[:, :T], use_cache=True, logits_to_keep=1).past_key_values
                else:
                    # in two chunks as well: the second starts from a state, its kernels' other compiled variant,
                    # which a decode point's untimed prefill beyond one chunk would otherwise compile
                    model.prefill(ids[:, :T], chunk_size=max(1, T // 2))
                    _, cache = model.prefill(ids[:, :T], chunk_size=s.chunk_size)
                for i in (T, T + 1):
                    model(input_ids=ids[:, i:i + 1], past_key_values=cache, use_cache=True)
            synchronize(device)
            out[name + "_s"] = time.perf_counter() - t0
        except Exception as e:  # noqa: BLE001 - the points will report the problem themselves
            out[name + "_error"] = f"{type(e).__name__}: {str(e).strip()[:200]}"
        cache = None
        free_memory(device)
    return out
