"""The benchmark itself: teacher and LAWCAT student side by side, point by point, into one results dict.

    teacher, student, info = load_pair("llama-3.2-1b", device="cuda", dtype=torch.bfloat16)
    results = run_bench(teacher, student, BenchSettings(lengths=[1024, 4096]), device="cuda", info=info)

Four measurements (`BenchSettings.what`):

* ``prefill``: one prompt of T random tokens. Teacher: its HF forward (SDPA attention, KV cache built, logits
  of the last position only). Student: `student.prefill` through its chunked path (`chunk_size` tokens per
  call), so its memory stays flat in T. Latency, tokens/s, peak memory, FLOPs (lawcat.bench.flops) and
  utilisation = achieved FLOP/s / the measured matmul rate of this run.
* ``decode``: after a prompt of C tokens (prefilled, untimed), `decode_steps` single-token steps, each timed
  (teacher: HF DynamicCache; student: the recurrent LawcatCache). ms/token, tokens/s, cache bytes, peak memory.
* ``op``: the attention operator alone at a fixed shape (default Llama-3.2-1B's: 32 query heads, 8 KV heads,
  head dim 64): PyTorch SDPA under each requested backend against lawcat's normalized GLA.
* ``matmul``: the rate of a large matmul in the model's dtype, the denominator of utilisation (always run
  when prefill is).

Within a length the teacher and the student run one after the other on the same input; lengths ascend. A point
that runs out of memory is recorded as ``oom`` and the model's longer points are ``skipped`` (unless
`continue_after_oom`); with a `time_budget`, points predicted to overrun it are ``skipped`` too, so a run always
ends with a complete file. Times are never asserted anywhere: they are data.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..models.errors import LawcatError
from .flops import ModelShape, decode_flops, prefill_flops
from .timing import free_memory, is_oom, matmul_rate, measure, median, synchronize

__all__ = ["BenchError", "BenchSettings", "FORMAT", "FORMAT_VERSION", "KINDS", "OP_METHODS", "cache_nbytes",
           "default_op_methods", "load_pair", "machine_info", "run_bench"]

FORMAT, FORMAT_VERSION = "lawcat-bench", 1
KINDS = ("prefill", "decode", "op", "matmul")
OP_METHODS = ("sdpa-flash", "sdpa-cudnn", "sdpa-efficient", "sdpa-math", "gla", "gla-triton")


class BenchError(LawcatError):
    pass


def _default_lengths():
    return [1 << k for k in range(10, 18)]  # 1K .. 128K


@dataclass
class BenchSettings:
    what: tuple = ("prefill", "decode", "op")
    lengths: list = field(default_factory=_default_lengths)           # prefill prompt lengths
    decode_contexts: list = field(default_factory=lambda: [1024, 4096, 16384, 65536, 131072])
    decode_steps: int = 32
    decode_warmup: int = 4
    op_lengths: list | None = None                                     # default: `lengths`
    op_methods: list | None = None                                     # default: by device
    op_heads: int = 32
    op_kv_heads: int = 8
    op_head_dim: int = 64
    batch: int = 1
    chunk_size: int = 8192                                             # student prefill chunk
    models: tuple = ("teacher", "student")
    warmup: int = 1
    repeats: int = 5
    max_seconds: float = 20.0                                          # of timed runs per point
    skip_warmup_after_s: float = 2.0
    time_budget: float | None = None                                   # seconds for the whole run
    continue_after_oom: bool = False
    teacher_cache: bool = True                                         # teacher prefill builds its KV cache
    matmul_n: int | None = None
    global_warmup: bool = True                                         # compile/autotune before any point
    seed: int = 0

    def validate(self) -> None:
        bad = [w for w in self.what if w not in KINDS]
        if bad:
            raise BenchError(f"unknown measurement(s) {bad}; choose from {', '.join(KINDS)}")
        bad = [m for m in self.models if m not in ("teacher", "student")]
        if bad:
            raise BenchError(f"unknown model(s) {bad}; choose teacher and/or student")
        bad = [m for m in (self.op_methods or []) if m not in OP_METHODS]
        if bad:
            raise BenchError(f"unknown op method(s) {bad}; choose from {', '.join(OP_METHODS)}")
        for name in ("lengths", "decode_contexts"):
            if any(int(x) < 1 for x in getattr(self, name)):
                raise BenchError(f"{name} must be positive token counts")
        if self.batch < 1 or self.repeats < 1 or self.chunk_size < 1:
            raise BenchError("batch, repeats and chunk_size must be >= 1")


def default_op_methods(device) -> list[str]:
    if torch.device(device).type == "cuda":
        methods = ["sdpa-flash", "sdpa-cudnn", "gla"]
        with contextlib.suppress(Exception):
            from ..ops.triton_norm_gla import triton_available

            if triton_available():
                methods.append("gla-triton")
        return methods
    return ["sdpa-flash", "sdpa-math", "gla"]


# ---- environment ------------------------------------------------------------------------------------------
def _version(dist: str):
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001
        return None


def _git() -> dict:
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return {"commit": head or None, "dirty": bool(dirty)}
    except Exception:  # noqa: BLE001 - no git on the machine is fine
        return {"commit": None, "dirty": None}


def machine_info(device=None) -> dict:
    """Machine, accelerator and library versions, for the results file."""
    import transformers

    info = {
        "platform": platform.platform(), "python": sys.version.split()[0], "cpu_count": os.cpu_count(),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "fla_core": _version("fla-core"), "triton": _version("triton"), "lawcat": _version("lawcat"),
        "torch_num_threads": torch.get_num_threads(), "cuda_available": torch.cuda.is_available(),
        "git": _git(),
    }
    dev = torch.device(device) if device is not None else None
    if dev is not None and dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        info.update({"device": torch.cuda.get_device_name(dev), "device_total_bytes": props.total_memory,
                     "compute_capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda,
                     "cudnn": torch.backends.cudnn.version()})
    else:
        info.update({"device": platform.processor() or platform.machine() or "cpu", "device_total_bytes": None})
    return info


# ---- models -----------------------------------------------------------------------------------------------
def _is_run_dir(path: Path) -> bool:
    cfg = path / "config.json"
    return path.is_dir() and cfg.is_file() and '"model_type": "lawcat"' in cfg.read_text()


def load_pair(model: str | None = None, arch: str | None = None, device="cpu", dtype: torch.dtype = torch.float32,
              preset: str = "lawcat", seed: int = 0, cast_lawcat_params: bool = True):
    """(teacher, student, info) for a named architecture (random weights), a lawcat run directory, an HF
    directory, a .gguf file or 'default'. The student shares the teacher's weights (memory counted once).

    A merged run directory holds no teacher: a random-weight teacher of the same architecture is built beside
    it (timings do not depend on weight values). With `cast_lawcat_params` LAWCAT's own parameters (kept in
    float32 by linearize) are cast to `dtype`, as `LawcatForCausalLM.from_pretrained(dtype=...)` does.
    """
    from ..models import LawcatConfig, LawcatForCausalLM, linearize, load_teacher
    from ..models.checkpoint import read_config
    from .architectures import ARCHITECTURES, arch_config, build_random_model

    device = torch.device(device)
    if arch is None and model is not None and not Path(model).exists() and model.lower() in ARCHITECTURES:
        arch, model = model.lower(), None
    if arch is not None:
        teacher = build_random_model(arch, device, dtype, seed)
        student = linearize(teacher, LawcatConfig.from_preset(preset), fingerprint=f"random:{arch}")
        name, source = arch, f"random weights, architecture {arch}"
    elif model is None:
        raise BenchError("give a model (a lawcat run dir, an HF dir, a .gguf file, 'default') or --arch NAME")
    elif _is_run_dir(Path(model)):
        config = read_config(Path(model))
        if config.merged:
            student = LawcatForCausalLM.from_pretrained(model, device=device)
            teacher = build_random_model(config.teacher_hf_config(), device, dtype, seed)
            source = f"lawcat run dir {model} (merged; teacher = random weights of its architecture)"
        else:
            teacher, _ = load_teacher(config.teacher_source, dtype=dtype, device=device)
            student = LawcatForCausalLM.from_pretrained(model, teacher=teacher, device=device)
            source = f"lawcat run dir {model} (teacher {config.teacher_source})"
        name = Path(model).resolve().name
    else:
        teacher, _ = load_teacher(model, dtype=dtype, device=device)
        student = linearize(teacher, LawcatConfig.from_preset(preset))
        name = "default" if model == "default" else Path(model).resolve().name
        source = f"teacher {model}, untrained student (preset {preset})"
    if cast_lawcat_params:
        for p in student.lawcat_parameters():
            p.data = p.data.to(device=device, dtype=dtype)
    else:
        for p in student.lawcat_parameters():
            p.data = p.data.to(device=device)
    student.to(device)
    teacher.eval(), student.eval()
    cfg = student.config
    shape = ModelShape.from_config(cfg)
    info = {
        "name": name, "source": source, "arch": arch, "family": cfg.teacher_config.get("model_type"),
        "shape": asdict(shape),
        "params": sum(p.numel() for p in teacher.parameters()),
        "lawcat_params": sum(p.numel() for p in student.lawcat_parameters()),
        "weights_bytes": sum(p.numel() * p.element_size() for p in student.parameters()),
        "dtype": str(dtype).replace("torch.", ""),
        "attn_implementation": getattr(teacher.config, "_attn_implementation", None),
        "lawcat": {k: getattr(cfg, k) for k in ("preset", "use_conv", "conv_kernel", "shared_feature_map", "use_gate",
                                                 "gate_rank", "normalize", "use_rope", "window_size", "gla_backend")},
    }
    return teacher, student, info


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


# ---- the run ----------------------------------------------------------------------------------------------
class _Planner:
    """Skips points after an OOM of the same series, and points predicted to overrun the time budget.

    The prediction scales the last successful point of the series by (length ratio) ** exponent (2 for softmax
    attention, 1 for the linear student): for prefill and the operator from its median run times the number of
    runs it will make, for decode from its untimed prefill plus its steps. Compilation and autotuning happen in
    the global warm-up (`run_bench`) or the first point's warm-up run, which the prediction leaves out.
    """

    def __init__(self, settings: BenchSettings):
        self.s = settings
        self.deadline = None if settings.time_budget is None else time.monotonic() + settings.time_budget
        self.oom_at: dict[tuple, int] = {}
        self.last: dict[tuple, tuple[int, float, bool]] = {}  # series -> (length, seconds of one run, repeated)
        self.run_s: dict[tuple, float] = {}                    # series -> longest single run seen

    def _runs(self, series: tuple, run_s: float) -> int:
        timed = min(self.s.repeats, max(1, math.ceil(self.s.max_seconds / max(run_s, 1e-9))))
        warm = 0 if max(run_s, self.run_s.get(series, 0.0)) > self.s.skip_warmup_after_s else self.s.warmup
        return timed + warm

    def predict(self, series: tuple, length: int, exponent: float) -> float | None:
        if series not in self.last:
            return None
        n0, run0, repeated = self.last[series]
        run = run0 * (length / n0) ** exponent
        return run * self._runs(series, run) if repeated else run

    def skip_reason(self, series: tuple, length: int, exponent: float) -> str | None:
        if series in self.oom_at and not self.s.continue_after_oom:
            return f"out of memory at {self.oom_at[series]} tokens"
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                return "time budget spent"
            predicted = self.predict(series, length, exponent)
            if predicted is not None and predicted > left:
                return f"predicted {predicted:.0f} s, {left:.0f} s of the time budget left"
        return None

    def warmup(self, series: tuple, default: int) -> int:
        return 0 if self.run_s.get(series, 0.0) > self.s.skip_warmup_after_s else default

    def done(self, series: tuple, length: int, rec: dict, run_s: float | None = None, repeated: bool = True) -> None:
        """Record a finished point; run_s: seconds of one run (default: the median of its times)."""
        if rec["status"] == "oom":
            self.oom_at.setdefault(series, length)
        if rec["status"] != "ok":
            return
        if run_s is None:
            run_s = rec["ms"] / 1e3
        self.last[series] = (length, run_s, repeated)
        if rec.get("times_ms"):
            self.run_s[series] = max(self.run_s.get(series, 0.0), max(rec["times_ms"]) / 1e3)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _random_ids(vocab: int, batch: int, T: int, device, seed: int) -> torch.Tensor:
    gen = torch.Generator(device=device).manual_seed(seed)
    return torch.randint(0, vocab, (batch, T), device=device, generator=gen)


def _with_flops(rec: dict, flops: int, rate: float | None, tokens: int) -> dict:
    ms = rec.get("ms")
    rec["flops"] = flops
    if rec["status"] == "ok" and ms:
        rec["tokens_per_s"] = tokens / (ms / 1e3)
        rec["flops_per_s"] = flops / (ms / 1e3)
        rec["utilization"] = rec["flops_per_s"] / rate if rate else None
    return rec


def _prefill(teacher, student, info, s: BenchSettings, device, planner, emit, rate):
    models = {"teacher": teacher, "student": student}
    lawcat = student.config if student is not None else None
    vocab = info["shape"]["vocab"]
    for T in s.lengths:
        ids = _random_ids(vocab, s.batch, T, device, s.seed + T)
        for name in s.models:
            model = models[name]
            series = ("prefill", name)
            base = {"kind": "prefill", "model": name, "length": T, "batch": s.batch}
            reason = planner.skip_reason(series, T, 2.0 if name == "teacher" else 1.0)
            if reason:
                emit({**base, "status": "skipped", "reason": reason})
                continue
            if name == "teacher":
                def fn(model=model):
                    return model(input_ids=ids, use_cache=s.teacher_cache, logits_to_keep=1)
            else:
                def fn(model=model):
                    return model.prefill(ids, chunk_size=s.chunk_size)
            with torch.no_grad():
                m = measure(fn, device, planner.warmup(series, s.warmup), s.repeats, s.max_seconds)
            rec = {**base, **m.as_record()}
            if name == "student":
                rec["chunk_size"] = s.chunk_size
            fl = prefill_flops(info["shape_obj"], T, name, lawcat, logits_tokens=1, batch=s.batch)
            rec["flops_breakdown"] = fl
            emit(_with_flops(rec, fl["total"], rate, s.batch * T))
            planner.done(series, T, rec)
        del ids
        free_memory(device)


def _decode_point(model, name, ids, steps_ids, s: BenchSettings, device):
    """Prefill `ids` (untimed), then time each of the decoding steps. Returns a record fragment."""
    cuda = torch.device(device).type == "cuda"
    free_memory(device)
    cache = None
    out: dict = {}
    try:
        with torch.no_grad():
            t0 = time.perf_counter()
            if name == "teacher":
                cache = model(input_ids=ids, use_cache=True, logits_to_keep=1).past_key_values
            else:
                _, cache = model.prefill(ids, chunk_size=s.chunk_size)
            synchronize(device)
            out["prefill_s"] = time.perf_counter() - t0
            out["state_bytes_after_prefill"] = cache_nbytes(cache)
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
                out["base_bytes"] = torch.cuda.memory_allocated(device)
            for i in range(s.decode_warmup):
                model(input_ids=steps_ids[:, i:i + 1], past_key_values=cache, use_cache=True)
            synchronize(device)
            times, events = [], []
            t0 = time.perf_counter()
            for i in range(s.decode_warmup, s.decode_warmup + s.decode_steps):
                step = steps_ids[:, i:i + 1]
                if cuda:
                    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    a.record()
                    model(input_ids=step, past_key_values=cache, use_cache=True)
                    b.record()
                    events.append((a, b))
                else:
                    t1 = time.perf_counter()
                    model(input_ids=step, past_key_values=cache, use_cache=True)
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
    cache = None
    free_memory(device)
    out.setdefault("peak_bytes", None)
    out.setdefault("base_bytes", None)
    return out


def _decode(teacher, student, info, s: BenchSettings, device, planner, emit):
    models = {"teacher": teacher, "student": student}
    lawcat = student.config if student is not None else None
    vocab = info["shape"]["vocab"]
    for C in s.decode_contexts:
        ids = _random_ids(vocab, s.batch, C, device, s.seed + C)
        steps_ids = _random_ids(vocab, s.batch, s.decode_warmup + s.decode_steps, device, s.seed + 1)
        for name in s.models:
            series = ("decode", name)
            base = {"kind": "decode", "model": name, "length": C, "batch": s.batch, "steps": s.decode_steps}
            reason = planner.skip_reason(series, C, 2.0 if name == "teacher" else 1.0)
            if reason:
                emit({**base, "status": "skipped", "reason": reason})
                continue
            rec = {**base, **_decode_point(models[name], name, ids, steps_ids, s, device)}
            fl = decode_flops(info["shape_obj"], C, name, lawcat, batch=s.batch)["total"]
            rec = _with_flops(rec, fl, None, s.batch)
            rec.pop("utilization", None)
            emit(rec)
            if rec["status"] == "ok":
                point_s = rec["prefill_s"] + (s.decode_warmup + s.decode_steps) * rec["wall_ms_per_token"] / 1e3
                planner.done(series, C, rec, point_s, repeated=False)
            else:
                planner.done(series, C, rec)
        del ids, steps_ids
        free_memory(device)


# ---- the attention operator alone -------------------------------------------------------------------------
_SDPA_BACKENDS = {"sdpa-flash": "FLASH_ATTENTION", "sdpa-cudnn": "CUDNN_ATTENTION",
                  "sdpa-efficient": "EFFICIENT_ATTENTION", "sdpa-math": "MATH"}


def _op_callable(method: str, T: int, s: BenchSettings, device, dtype):
    """(fn, notes): inputs are made here, once, so the timed call is the operator only."""
    import torch.nn.functional as F

    B, H, Hkv, D = s.batch, s.op_heads, s.op_kv_heads, s.op_head_dim
    gen = torch.Generator(device=device).manual_seed(s.seed + T)

    def rnd(*shape, dt=dtype):
        return torch.randn(*shape, device=device, dtype=dt, generator=gen)

    if method in _SDPA_BACKENDS:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        backend = getattr(SDPBackend, _SDPA_BACKENDS[method])
        q, k, v = rnd(B, H, T, D), rnd(B, Hkv, T, D), rnd(B, Hkv, T, D)
        notes = {"gqa": "enable_gqa"}

        def fn():
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)

        try:  # some backends take no GQA: give them K/V repeated to the query heads (outside the timing)
            fn()
        except Exception as e:  # noqa: BLE001
            if is_oom(e) or Hkv == H:
                raise
            k, v = k.repeat_interleave(H // Hkv, 1), v.repeat_interleave(H // Hkv, 1)
            notes = {"gqa": "expanded"}

            def fn():
                with sdpa_kernel(backend):
                    return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return fn, notes
    # GLA: H heads (k, v already repeated to the query heads, as the layer does), feature dim = head_dim.
    fq = torch.softmax(rnd(B, T, H, D, dt=torch.float32), -1).to(dtype)
    fk = torch.softmax(rnd(B, T, H, D, dt=torch.float32), -1).to(dtype)
    v = rnd(B, T, H, D)
    g = torch.nn.functional.logsigmoid(rnd(B, T, H, D, dt=torch.float32)) / 16
    if method == "gla":
        from ..ops.gla import _pick, normalized_gla

        def fn():
            return normalized_gla(fq, fk, v, g, scale=1.0)
        return fn, {"backend": _pick("auto", fq)}
    if method == "gla-triton":
        from ..ops.triton_norm_gla import normalized_gla as triton_gla

        def fn():
            return triton_gla(fq, fk, v, g, scale=1.0, output_final_state=True)
        return fn, {"backend": "lawcat.ops.triton_norm_gla"}
    raise BenchError(f"unknown op method {method!r}")


def _op(s: BenchSettings, device, dtype, planner, emit):
    methods = s.op_methods or default_op_methods(device)
    for T in (s.op_lengths or s.lengths):
        for method in methods:
            series = ("op", method)
            base = {"kind": "op", "model": method, "length": T, "batch": s.batch,
                    "shape": {"heads": s.op_heads, "kv_heads": s.op_kv_heads, "head_dim": s.op_head_dim}}
            reason = planner.skip_reason(series, T, 2.0 if method.startswith("sdpa") else 1.0)
            if reason:
                emit({**base, "status": "skipped", "reason": reason})
                continue
            notes, fn, err = {}, None, None
            free_memory(device)
            try:
                fn, notes = _op_callable(method, T, s, device, dtype)
            except Exception as e:  # noqa: BLE001 - OOM or an unavailable kernel while preparing
                err = e
            if err is not None:
                status = "oom" if is_oom(err) else ("unsupported" if "kernel" in str(err).lower() else "error")
                rec = {**base, "status": status, "ms": None, "times_ms": [], "peak_bytes": None,
                       "base_bytes": None, "error": f"{type(err).__name__}: {str(err).strip()[:200]}"}
                err = None
            else:
                with torch.no_grad():
                    m = measure(fn, device, planner.warmup(series, s.warmup), s.repeats, s.max_seconds)
                rec = {**base, **notes, **m.as_record()}
            fn = None
            free_memory(device)
            H, D = s.op_heads, s.op_head_dim
            flops = (4 * H * D * (T * (T + 1) // 2) if method.startswith("sdpa") else T * 2 * (2 * H * D * (D + 1)))
            rec = _with_flops(rec, s.batch * flops, None, s.batch * T)
            rec.pop("utilization", None)
            emit(rec)
            planner.done(series, T, rec)


def _global_warmup(models: dict, info: dict, s: BenchSettings, device) -> dict:
    """One short prefill and two decode steps per model before anything is timed: kernel compilation and
    autotuning (fla's Triton kernels take seconds to minutes the first time) land here, not in a point."""
    T = min(list(s.lengths) + list(s.decode_contexts) + [4096])
    ids = _random_ids(info["shape"]["vocab"], s.batch, T + 2, device, s.seed)
    out = {"tokens": T}
    for name in s.models:
        model = models[name]
        t0 = time.perf_counter()
        try:
            with torch.no_grad():
                if name == "teacher":
                    cache = model(input_ids=ids[:, :T], use_cache=True, logits_to_keep=1).past_key_values
                else:
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


def run_bench(teacher, student, settings: BenchSettings | None = None, device="cpu", dtype: torch.dtype | None = None,
              info: dict | None = None, on_record=None) -> dict:
    """Run the measurements in `settings.what` and return the results dict (format 'lawcat-bench' v1).

    `on_record(results)` is called after every point (the CLI rewrites the JSON file there, so a run that
    is killed leaves everything it measured). teacher/student may be None for an 'op'/'matmul'-only run.
    """
    s = settings or BenchSettings()
    s.validate()
    device = torch.device(device)
    needs_models = any(w in s.what for w in ("prefill", "decode"))
    if needs_models:
        for name in s.models:
            if {"teacher": teacher, "student": student}[name] is None:
                raise BenchError(f"the {name} is needed for prefill/decode but none was given")
    if dtype is None:
        ref = teacher if teacher is not None else student
        dtype = next(ref.parameters()).dtype if ref is not None else (
            torch.bfloat16 if device.type == "cuda" else torch.float32)
    info = dict(info or {})
    if needs_models and "shape" not in info:
        info["shape"] = asdict(ModelShape.from_config((student or teacher).config))
    info["shape_obj"] = ModelShape(**info["shape"]) if "shape" in info else None
    results = {
        "format": FORMAT, "version": FORMAT_VERSION,
        "run": {"date": _now(), "argv": list(sys.argv), "device": str(device),
                "dtype": str(dtype).replace("torch.", ""),
                "settings": asdict(s), "machine": machine_info(device)},
        "model": {k: v for k, v in info.items() if k != "shape_obj"} if needs_models or info.get("name") else None,
        "matmul": None,
        "records": [],
    }
    results["run"]["settings"]["what"] = list(s.what)
    results["run"]["settings"]["models"] = list(s.models)
    results["run"]["settings"]["op_methods"] = list(s.op_methods or default_op_methods(device))

    def emit(rec):
        results["records"].append(rec)
        if on_record is not None:
            on_record(results)

    planner = _Planner(s)
    t_start = time.monotonic()
    if needs_models and s.global_warmup:
        results["run"]["warmup"] = _global_warmup({"teacher": teacher, "student": student}, info, s, device)
    rate = None
    if "matmul" in s.what or "prefill" in s.what:
        results["matmul"] = matmul_rate(device, dtype, s.matmul_n)
        rate = results["matmul"]["flops_per_s"]
        if on_record is not None:
            on_record(results)
    if "prefill" in s.what:
        _prefill(teacher, student, info, s, device, planner, emit, rate)
    if "decode" in s.what:
        _decode(teacher, student, info, s, device, planner, emit)
    if "op" in s.what:
        _op(s, device, dtype, planner, emit)
    results["run"]["wall_s"] = time.monotonic() - t_start
    if on_record is not None:
        on_record(results)
    return results
