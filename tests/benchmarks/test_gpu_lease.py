"""benchmarks/gpu/lease.sh: the one driver of GPU calls. Its subcommands need a GPU machine; here only its
shell syntax, its help and its refusals of incomplete commands (one usage line, exit 2)."""
import os
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
    assert listed == handled == {"part", "smoke", "recipe", "grid", "eval", "tests", "bench", "speed",
                                        "run"}


@pytest.mark.parametrize("args", [["recipe", "only-a-run"], ["eval", "default", "name"], ["smoke"], ["run"],
                                  ["grid"]])
def test_incomplete_commands_are_refused(args):
    r = _run(*args)
    assert r.returncode == 2 and r.stdout.startswith("usage: lease.sh " + args[0])


def test_unknown_subcommand_exits_non_zero():
    r = _run("fly")
    assert r.returncode == 2 and "lease.sh part" in r.stdout


def test_runs_brought_back_are_unpacked_whole_or_in_pieces(tmp_path):
    """unpack_students: a run archive, or a paused run split into 15 MB pieces (.00, .01, ...), lands in ~/runs once;
    a run already there is left as it is."""
    src = tmp_path / "src"
    (src / "paused" / "state").mkdir(parents=True)
    state = os.urandom(700_000)  # incompressible, so its archive needs several pieces
    (src / "paused" / "state" / "trainer.pt").write_bytes(state)
    (src / "done").mkdir()
    (src / "done" / "model.safetensors").write_text("weights")
    carried = tmp_path / "tree" / ".gpu_student"
    carried.mkdir(parents=True)
    subprocess.run(f"tar czf - -C {src} paused | split -b 300000 -d - {carried}/paused-resume.tar.gz.", shell=True,
                   check=True)
    subprocess.run(["tar", "czf", str(carried / "done.tar.gz"), "-C", str(src), "done"], check=True)
    assert len(list(carried.glob("paused-resume.tar.gz.*"))) >= 2
    home = tmp_path / "home"
    (home / "runs" / "done").mkdir(parents=True)
    (home / "runs" / "done" / "model.safetensors").write_text("kept")
    script = f'source <(sed -n "/^unpack_students()/,/^}}/p" {LEASE}); unpack_students'
    r = subprocess.run(["bash", "-c", script], cwd=tmp_path / "tree", env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert (home / "runs" / "paused" / "state" / "trainer.pt").read_bytes() == state
    assert (home / "runs" / "done" / "model.safetensors").read_text() == "kept"


def test_grid_stages_once_then_runs_every_recipe_side_by_side(tmp_path):
    """cmd_grid: the teacher is staged once, then each "RUN RECIPE overrides" goes to cmd_recipe, split into its
    words, told not to stage again, and all of them at once (each run below waits until it sees the other start)."""
    here = tmp_path / "gpu"
    here.mkdir()
    (here / "stage_teacher.sh").write_text('echo staged >> "$HOME/staged"\n')
    home = tmp_path / "home"
    home.mkdir()
    stubs = """
record_machine() { :; }
unpack_students() { :; }
cmd_recipe() {
  echo "$LEASE_STAGED|$*" > ~/runs/$1.args
  for i in $(seq 100); do [ $(ls ~/runs/*.args | wc -l) -ge 2 ] && break; sleep 0.1; done
  ls ~/runs/*.args | wc -l > ~/runs/$1.saw
}"""
    script = (f'HERE={here}; source <(sed -n "/^stage_runs()/,/^}}/p;/^cmd_grid()/,/^}}/p" {LEASE}); {stubs}\n'
              'cmd_grid "a r.yaml x=1 y=2" "b r.yaml"')
    r = subprocess.run(["bash", "-c", script], env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    runs = home / "runs"
    assert (home / "staged").read_text() == "staged\n"
    assert (runs / "a.args").read_text() == "1|a r.yaml x=1 y=2\n" and (runs / "b.args").read_text() == "1|b r.yaml\n"
    assert (runs / "a.saw").read_text().strip() == (runs / "b.saw").read_text().strip() == "2"
    assert "== a" in r.stdout and "== b" in r.stdout


def _with_stub_python(tmp_path, stub: str, function: str, calls: str):
    """Run lease.sh's `function` (with 100 s of budget left) as `calls` under a $HOME in tmp_path, with `stub` (a
    bash script body) standing in for python3."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text("#!/bin/bash\n" + stub)
    (bin_dir / "python3").chmod(0o755)
    script = (f'T0=$(date +%s); DEADLINE=$((T0 + 100)); left() {{ echo $(( DEADLINE - $(date +%s) )); }}; '
              f'source <(sed -n "/^{function}()/,/^}}/p" {LEASE}); {calls}')
    r = subprocess.run(["bash", "-c", script], env={"HOME": str(tmp_path / "home"), "PATH": f"{bin_dir}:/usr/bin:/bin"},
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_run_evals_echoes_each_cell_and_skips_finished_ones(tmp_path):
    """run_evals: every cell's score line of every task reaches the call's output (niah1, babilong-qa2 and passkey
    lines alike), and an evaluation whose results.md exists is not run again."""
    run = tmp_path / "home" / "runs" / "run"
    (run / "eval" / "passkey-heldout").mkdir(parents=True)
    (run / "eval" / "passkey-heldout" / "results.md").write_text("done")
    stub = """task=$(echo "$@" | sed -E 's/.*--task ([^ ]+).*/\\1/')
echo "Loading weights: 100%"
echo "run (standard) $task 2048: 22.0 (50 samples, 15 s)"
echo "run (standard) $task 4096: 8.0 (50 samples, 11 s)"
"""
    lines = _with_stub_python(tmp_path, stub, "run_evals",
                              f"run_evals {run} {run} niah1:standard:2k,4k babilong-qa2:standard:2k,4k "
                              "passkey:heldout:1k")
    for task in ("niah1", "babilong-qa2"):
        assert f"run (standard) {task} 2048: 22.0 (50 samples, 15 s)" in lines
        assert f"run (standard) {task} 4096: 8.0 (50 samples, 11 s)" in lines
    assert sum(line.startswith("eval ") and " exit 0 " in line for line in lines) == 2   # passkey was done
    assert not any("Loading" in line or "passkey" in line for line in lines)


def test_run_drift_measures_a_finished_student_once(tmp_path):
    """run_drift: lawcat viz lm-drift on the run, its one-line reading echoed; skipped once its JSON exists."""
    run = tmp_path / "home" / "runs" / "run"
    run.mkdir(parents=True)
    stub = ('echo "$@" >> "$HOME/calls"\n'
            'echo "run on 2,048 tokens of books:test: teacher 2.81 nats; student 3.17 nats"\n')
    lines = _with_stub_python(tmp_path, stub, "run_drift",
                              f"run_drift {run}; touch {run}/eval/lm-drift-books.json; run_drift {run}")
    [call] = (tmp_path / "home" / "calls").read_text().splitlines()
    assert call.startswith(f"-m lawcat.cli viz lm-drift {run} --text books:test --length 2k")
    assert lines == ["run on 2,048 tokens of books:test: teacher 2.81 nats; student 3.17 nats", "lm-drift exit 0"]


def test_speed_parts_keep_to_the_time_left_and_archive_after_each(tmp_path):
    """speed_part: a part runs for at most its cap and never past the deadline less 20 s, its TIME_BUDGET argument
    becomes 85 % of that, a part with under 30 s left is skipped, and the archive holds every finished part."""
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    work.mkdir()
    script = f'''
        OUT={out}; dir={work}; DEADLINE=$(( $(date +%s) + 100 ))
        left() {{ echo $(( DEADLINE - $(date +%s) )); }}
        source <(sed -n "/^speed_part() {{/,/^}}/p" {LEASE})
        speed_part capped 40 echo budget TIME_BUDGET
        speed_part by-deadline 100000 echo budget TIME_BUDGET
        DEADLINE=$(( $(date +%s) + 45 ))
        speed_part late 60 echo never
    '''
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert (work / "capped.log").read_text().split()[:2] == ["budget", "34"]  # 85 % of its 40 s cap
    deadline_budget = int((work / "by-deadline.log").read_text().split()[1])
    assert 60 <= deadline_budget <= 68  # 85 % of the ~80 s before the deadline's 20 s reserve
    assert not (work / "late.log").exists() and "late: skipped" in (work / "skipped.log").read_text()
    listed = subprocess.run(["tar", "tzf", str(out / "speed.tar.gz")], capture_output=True, text=True).stdout
    assert "./capped.log" in listed and "./by-deadline.log" in listed
