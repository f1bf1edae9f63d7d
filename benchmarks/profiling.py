"""The torch.profiler loop the profile_*.py benchmarks share: warm up, profile a few runs, sum self time per
operator."""
import time

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile


def profile_ops(run, runs: int, cuda: bool, warmup: int = 2):
    """Call run() `warmup` times (compilation and autotuning stay out of the profile), then `runs` times under the
    profiler. Returns (attr, events, total): the time field used (self device time on CUDA, self CPU time
    elsewhere), the operators with some of it, and their sum in microseconds over all runs."""
    for _ in range(warmup):
        run()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    if cuda:
        torch.cuda.synchronize()
    with profile(activities=activities) as prof:
        for _ in range(runs):
            run()
        if cuda:
            torch.cuda.synchronize()
    attr = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = [e for e in prof.key_averages() if getattr(e, attr, 0) > 0]
    if cuda:
        # the kernels themselves: an aten op that launched one also carries its device time, and would count it twice
        events = [e for e in events if getattr(e, "device_type", None) == DeviceType.CUDA]
    return attr, events, sum(getattr(e, attr) for e in events)


def wall_ms_per_run(run, runs: int, cuda: bool) -> float:
    """Median wall milliseconds of `runs` unprofiled calls of run(), each synchronized on CUDA."""
    times = []
    for _ in range(runs):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        run()
        if cuda:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return sorted(times)[len(times) // 2]
