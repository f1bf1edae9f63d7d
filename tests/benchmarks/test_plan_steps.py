"""benchmarks/gpu/plan_steps.py: step counts for a time box from a throughput file."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu" / "plan_steps.py"


def _plan(tmp_path, *args):
    data = {"s_per_step": {"stage1": 0.1, "stage2": 0.2},
            "by_backend": {"triton": {"s_per_step": {"stage2": 0.4, "stage2_graph": 0.1}},
                           "triton/group0": {"s_per_step": {"stage1": 0.2}},
                           "triton/group0/graph": {"s_per_step": {"stage1": 0.05}},
                           "auto": {"s_per_step": {"stage2": 0.25}},
                           "auto/group0": {"s_per_step": {"stage1": 0.3}},
                           "auto/group0/graph": {"error": "RuntimeError: capture failed"}}}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    out = subprocess.run([sys.executable, str(SCRIPT), str(path), "--stage1-seconds", "100", "--stage2-seconds",
                          "100", "--cap", "5000", *args], capture_output=True, text=True)
    return out


def test_headline_and_per_stage_slowdown(tmp_path):
    assert _plan(tmp_path).stdout.split() == ["800", "400"]
    assert _plan(tmp_path, "--slowdown", "4,2").stdout.split() == ["200", "200"]


@pytest.mark.parametrize("variant,expected", [
    ([], ["266", "320", "auto"]),                                   # eager: 0.55 s (auto) beats 0.6 (triton)
    (["--stage1-variant", "/graph"], ["1600", "200", "triton"]),    # auto's graph entry holds an error: skipped
])
def test_best_backend(tmp_path, variant, expected):
    assert _plan(tmp_path, "--backend", "best", *variant).stdout.split() == expected


def test_bad_slowdown_is_refused(tmp_path):
    out = _plan(tmp_path, "--slowdown", "1,2,3")
    assert out.returncode != 0 and "--slowdown takes one or two" in out.stderr


def test_backend_without_a_timed_entry_is_an_error(tmp_path):
    """auto's graph entry holds an error: asking for it names what was timed instead of guessing a plan."""
    out = _plan(tmp_path, "--backend", "auto", "--stage1-variant", "/graph")
    assert out.returncode != 0 and "no timed stage-1 entry '<backend>/group0/graph'" in out.stderr


def test_stage2_graph_timing(tmp_path):
    """--stage2-graph plans stage 2 with its graphed timing; a backend without one (auto) is not a candidate."""
    got = _plan(tmp_path, "--backend", "best", "--stage2-graph").stdout.split()
    assert got == ["400", "800", "triton"]
