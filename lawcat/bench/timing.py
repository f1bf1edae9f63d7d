"""Timing and memory measurement: median of repeated runs after warm-up, out-of-memory caught per point.

On CUDA each run is bracketed by CUDA events (the GPU's own clock, no host overhead between runs beyond the
launch); on CPU by `time.perf_counter`. Peak memory is CUDA's allocator peak since a reset just before the
point; on CPU it is not measured (None). A point that runs out of memory is reported, its tensors freed,
and the caller moves on: nothing here ever raises for OOM.

Long points: warm-up exists to compile kernels and fill caches; once a single run of a model takes longer than
`skip_warmup_after_s`, later points of that model skip it (the kernels are compiled by then, and a one-second
run does not need its launch overhead amortised). Repeats stop early once `max_seconds` of timed runs have
accumulated, so a slow point costs about max(one run, max_seconds), not repeats x one run.
"""
from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass, field

import torch

__all__ = ["Measurement", "free_memory", "is_oom", "matmul_rate", "measure", "median", "synchronize", "time_runs"]


def synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def is_oom(exc: BaseException) -> bool:
    """True for CUDA (and other accelerators') out-of-memory errors, including allocator messages."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_memory(device) -> None:
    """Collect cycles and return cached blocks, so the next point's peak starts from the same floor (CUDA).

    On CPU nothing is measured, and a full gc.collect() costs ~0.25 s with transformers loaded: skipped.
    """
    if torch.device(device).type == "cuda":
        gc.collect()
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


def median(xs):
    return statistics.median(xs) if xs else None


def time_runs(fn, device, warmup: int = 1, repeats: int = 5, max_seconds: float | None = None) -> list[float]:
    """Milliseconds of each timed run of fn() (results are dropped at once), after `warmup` untimed runs."""
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    synchronize(device)
    times: list[float] = []
    for _ in range(max(1, repeats)):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            synchronize(device)
            times.append((time.perf_counter() - t0) * 1e3)
        if max_seconds is not None and sum(times) / 1e3 >= max_seconds:
            break
    return times


@dataclass
class Measurement:
    status: str                      # ok | oom | error | unsupported
    times_ms: list = field(default_factory=list)
    peak_bytes: int | None = None    # allocator peak during the point (weights included)
    base_bytes: int | None = None    # allocated when the point started (weights, caches kept by the caller)
    error: str | None = None

    @property
    def ms(self):
        return median(self.times_ms)

    def as_record(self) -> dict:
        rec = {"status": self.status, "ms": self.ms, "times_ms": [round(t, 6) for t in self.times_ms],
               "peak_bytes": self.peak_bytes, "base_bytes": self.base_bytes}
        if self.error:
            rec["error"] = self.error
        return rec


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def measure(fn, device, warmup: int = 1, repeats: int = 5, max_seconds: float | None = None) -> Measurement:
    """Time fn() (see time_runs) and record the memory peak; OOM and other errors become a status."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    free_memory(device)
    base = None
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    status, error, times = "ok", None, []
    try:
        times = time_runs(fn, device, warmup, repeats, max_seconds)
    except Exception as e:  # noqa: BLE001 - every failure of one point is recorded, the run goes on
        status = "oom" if is_oom(e) else "error"
        if not is_oom(e) and "no available kernel" in str(e).lower():
            status = "unsupported"
        error = _short(e)
    # The exception (and the frames holding the point's tensors) is gone here, so the memory can be freed.
    peak = torch.cuda.max_memory_allocated(device) if cuda else None
    free_memory(device)
    return Measurement(status, times, peak, base, error)


def copy_bandwidth(device, nbytes: int | None = None, repeats: int = 10, warmup: int = 3) -> dict:
    """Achieved memory bandwidth of one tensor copy (bytes read + bytes written per second): the reference for a
    decode step's floor, which must at least read the weights and the cache once.

    Default size: 1 GiB on CUDA (far beyond any cache), 256 MiB on CPU.
    """
    device = torch.device(device)
    nbytes = nbytes or ((1 << 30) if device.type == "cuda" else (256 << 20))
    src = torch.ones(nbytes // 4, device=device, dtype=torch.float32)
    dst = torch.empty_like(src)
    m = measure(lambda: dst.copy_(src), device, warmup=warmup, repeats=repeats)
    src = dst = None  # not `del`: the lambda above refers to them
    moved = 2 * (nbytes // 4) * 4
    rate = moved / (m.ms / 1e3) if m.status == "ok" and m.ms else None
    return {"bytes": nbytes, "status": m.status, "ms": m.ms, "times_ms": m.times_ms, "bytes_per_s": rate}


def matmul_rate(device, dtype: torch.dtype, n: int | None = None, repeats: int = 10, warmup: int = 3) -> dict:
    """Achieved FLOP/s of an n x n x n matmul in `dtype`: the reference for utilisation figures.

    Default n: 8192 on CUDA (large enough to reach the tensor cores' sustained rate), 512 on CPU.
    """
    device = torch.device(device)
    n = n or (8192 if device.type == "cuda" else 512)
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    m = measure(lambda: torch.mm(a, b), device, warmup=warmup, repeats=repeats)
    a = b = None  # not `del`: the lambda above refers to them
    flops = 2 * n ** 3
    rate = flops / (m.ms / 1e3) if m.status == "ok" and m.ms else None
    return {"n": n, "dtype": str(dtype).replace("torch.", ""), "flops": flops, "status": m.status, "ms": m.ms,
            "times_ms": m.times_ms, "flops_per_s": rate}
