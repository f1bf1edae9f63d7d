"""benchmarks/profiling.py: the unprofiled wall time beside a profile (the figures need a GPU, the plumbing not)."""
import sys
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
import profiling  # noqa: E402


def test_wall_time_is_the_median_of_the_runs():
    delays = iter([0.0, 0.3, 0.0])  # one slow run among three: the median ignores it (the mean would be 100 ms)
    calls = []

    def run():
        calls.append(1)
        time.sleep(next(delays))

    ms = profiling.wall_ms_per_run(run, 3, cuda=False)
    assert len(calls) == 3
    assert ms < 50
