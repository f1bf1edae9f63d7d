"""Which benchmark points to skip: those after an out-of-memory of the same series, and those predicted to
overrun the run's time budget. Skipping instead of stopping is what lets a run always end with a complete file.

A series is one curve of the results, e.g. ("prefill", "teacher") or ("op", "gla"); its points run in
ascending length, so the last finished point predicts the next.
"""
from __future__ import annotations

import math
import time
from typing import Callable

from .settings import BenchSettings

__all__ = ["Planner", "power_law"]

Work = Callable[[int], float]  # length -> the work of one run at that length, in any unit (FLOPs, or a power law)


def power_law(exponent: float) -> Work:
    """Work growing as length ** exponent: for an operator alone, whose cost is one term (2 for softmax attention,
    1 for the linear one)."""
    return lambda length: float(length) ** exponent


class Planner:
    """Skips points after an OOM of the same series, and points predicted to overrun the time budget.

    The prediction scales the last successful point of the series by the ratio of the work at the two lengths
    (`work`: a whole model's FLOPs, or `power_law` for an operator): for prefill and the operator from its median
    run times the number of runs it will make, for decode from its untimed prefill plus its steps. A whole model's
    FLOPs rather than (ratio) ** 2 for the teacher: its matmuls grow linearly and outweigh its attention up to ~32K
    on a 1B shape (from 4K to 128K the FLOP ratio of successive lengths was within 6 % of its measured prefill's on
    an H100, and above it, the safe side, below 4K), and a short point's fixed cost (the static-cache teacher's
    untimed prefill took 1.5 s at 1K) scaled quadratically to 32K predicted 1,564 s for a point that takes seconds.
    Compilation and autotuning happen in the global warm-up (`run_bench`) or the first point's warm-up run, which
    the prediction leaves out.
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

    def predict(self, series: tuple, length: int, work: Work) -> float | None:
        if series not in self.last:
            return None
        n0, run0, repeated = self.last[series]
        run = run0 * work(length) / work(n0)
        return run * self._runs(series, run) if repeated else run

    def skip_reason(self, series: tuple, length: int, work: Work) -> str | None:
        if series in self.oom_at and not self.s.continue_after_oom:
            return f"out of memory at {self.oom_at[series]} tokens"
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                return "time budget spent"
            predicted = self.predict(series, length, work)
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
