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

This module holds model loading and the run itself; the rest is beside it:

    settings      BenchSettings, the measurement kinds, the results file's format name and version

    planner       Planner: which points to skip (after an OOM, or predicted past the time budget)
    measure       prefill and decode of whole models, the global warm-up, cache_nbytes
    attention_op  the attention operator alone (OP_METHODS, default_op_methods)
    errors        BenchError
"""
from __future__ import annotations

import datetime as _dt
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ..machine import machine_info
from ..models.compile_blocks import compile_blocks, compiled_blocks
from .attention_op import default_op_methods, measure_op
from .errors import BenchError
from .flops import ModelShape
from .measure import cache_nbytes, global_warmup, measure_decode, measure_prefill
from .planner import Planner
from .settings import FORMAT, FORMAT_VERSION, KINDS, OP_METHODS, BenchSettings
from .timing import copy_bandwidth, matmul_rate

__all__ = ["BenchError", "BenchSettings", "FORMAT", "FORMAT_VERSION", "KINDS", "OP_METHODS", "cache_nbytes",
           "default_op_methods", "load_pair", "run_bench"]

# ---- models -----------------------------------------------------------------------------------------------
def load_pair(model: str | None = None, arch: str | None = None, device="cpu", dtype: torch.dtype = torch.float32,
              preset: str = "lawcat", seed: int = 0, cast_lawcat_params: bool = True, gla_backend: str | None = None):
    """(teacher, student, info) for a named architecture (random weights), a lawcat run directory or a shipped
    student's name, an HF directory, a .gguf file or 'default'. The student shares the teacher's weights (memory
    counted once).

    A merged run directory holds no teacher: a random-weight teacher of the same architecture is built beside
    it (timings do not depend on weight values). With `cast_lawcat_params` LAWCAT's own parameters (kept in
    float32 by linearize) are cast to `dtype`, as `LawcatForCausalLM.from_pretrained(dtype=...)` does.
    `gla_backend` (auto | fla | triton | reference) overrides the student's GLA kernel choice.
    """
    from ..errors import UnknownModelError
    from ..models import LawcatConfig, LawcatForCausalLM, linearize, load_teacher
    from ..models.architectures import ARCHITECTURES, build_random_model
    from ..models.checkpoint import read_config, resolve_model_spec

    device = torch.device(device)
    if arch is None and model is not None and not Path(model).exists() and model.lower() in ARCHITECTURES:
        arch, model = model.lower(), None
    run = None  # the student folder a run directory or a shipped student's name points to; None for a teacher
    if arch is None and model is not None:
        try:
            run = resolve_model_spec(model)
        except UnknownModelError as e:
            raise BenchError(f"{e}; or a named architecture: {', '.join(sorted(ARCHITECTURES))}") from None
    if arch is not None:
        teacher = build_random_model(arch, device, dtype, seed)
        student = linearize(teacher, LawcatConfig.from_preset(preset), fingerprint=f"random:{arch}")
        name, source = arch, f"random weights, architecture {arch}"
    elif model is None:
        raise BenchError("give a model (a lawcat run dir, an HF dir, a .gguf file, 'default') or --arch NAME")
    elif run is not None:
        model = str(run)
        config = read_config(run)
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
    if gla_backend is not None:
        from ..ops.gla import BACKENDS

        if gla_backend not in BACKENDS:
            raise BenchError(f"unknown GLA backend {gla_backend!r}; choose one of {', '.join(BACKENDS)}")
        student.config.gla_backend = gla_backend  # every layer reads the shared config at each call
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


# ---- the run ----------------------------------------------------------------------------------------------
def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        "bandwidth": None,
        "records": [],
    }
    results["run"]["settings"]["what"] = list(s.what)
    results["run"]["settings"]["models"] = list(s.models)
    results["run"]["settings"]["op_methods"] = list(s.op_methods or default_op_methods(device))

    def emit(rec):
        results["records"].append(rec)
        if on_record is not None:
            on_record(results)

    if needs_models and s.compile_blocks:  # the student shares these modules with its teacher: both get them
        pair = {name: m for name, m in (("teacher", teacher), ("student", student)) if m is not None}
        for m in pair.values():
            compile_blocks(m)
        results["run"]["compiled_blocks"] = {name: compiled_blocks(m) for name, m in pair.items()}
    planner = Planner(s)
    t_start = time.monotonic()
    if needs_models and s.global_warmup:
        results["run"]["warmup"] = global_warmup({"teacher": teacher, "student": student}, info, s, device)
    rate = None
    if "matmul" in s.what or "prefill" in s.what:
        results["matmul"] = matmul_rate(device, dtype, s.matmul_n)
        rate = results["matmul"]["flops_per_s"]
        if on_record is not None:
            on_record(results)
    if "decode" in s.what:  # the decode floor's reference: bytes a step must read over this rate
        results["bandwidth"] = copy_bandwidth(device)
        if on_record is not None:
            on_record(results)
    if "prefill" in s.what:
        measure_prefill(teacher, student, info, s, device, planner, emit, rate)
    if "decode" in s.what:
        measure_decode(teacher, student, info, s, device, planner, emit)
    if "op" in s.what:
        measure_op(s, device, dtype, planner, emit)
    results["run"]["wall_s"] = time.monotonic() - t_start
    if on_record is not None:
        on_record(results)
    return results
