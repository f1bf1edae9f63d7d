"""benchmarks/gpu/lease.sh: the one driver of GPU calls. Its subcommands need a GPU machine; here only its
shell syntax, its help and its refusals of incomplete commands (one usage line, exit 2)."""
import re
import subprocess
from pathlib import Path

import pytest

LEASE = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu" / "lease.sh"


def _run(*args):
    return subprocess.run(["bash", str(LEASE), *args], capture_output=True, text=True, timeout=30)


def test_syntax():
    assert subprocess.run(["bash", "-n", str(LEASE)]).returncode == 0


def test_help_lists_every_subcommand():
    r = _run()
    assert r.returncode == 0
    listed = set(re.findall(r"lease\.sh (\w+)", r.stdout))
    handled = set(re.findall(r"^  (\w+)\)", LEASE.read_text(), flags=re.M))
    assert listed == handled == {"part", "smoke", "recipe", "eval", "tests", "bench", "speed", "run"}


@pytest.mark.parametrize("args", [["recipe", "only-a-run"], ["eval", "default", "name"], ["smoke"], ["run"]])
def test_incomplete_commands_are_refused(args):
    r = _run(*args)
    assert r.returncode == 2 and r.stdout.startswith("usage: lease.sh " + args[0])


def test_unknown_subcommand_exits_non_zero():
    r = _run("fly")
    assert r.returncode == 2 and "lease.sh part" in r.stdout
