"""The `lawcat` command: subcommands work end to end, user errors give one line and exit 2."""
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from lawcat import cli


def test_linearize_then_generate(teacher_dir, tmp_path, capsys):
    out = tmp_path / "student"
    assert cli.main(["linearize", "--teacher", str(teacher_dir), "--preset", "lolcats", "--out", str(out)]) == 0
    assert (out / "model.safetensors").is_file()
    assert cli.main(["generate", str(out), "--prompt", "w5 w6 w7", "--max-new-tokens", "4"]) == 0
    assert "new" in capsys.readouterr().err


def test_bad_teacher_is_one_line_and_exit_2(tmp_path, capsys):
    assert cli.main(["linearize", "--teacher", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "not found" in err and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_corrupt_run_dir_refused(teacher_dir, tmp_path, capsys):
    out = tmp_path / "student"
    cli.main(["linearize", "--teacher", str(teacher_dir), "--out", str(out)])
    data = (out / "model.safetensors").read_bytes()
    (out / "model.safetensors").write_bytes(data[:100])
    assert cli.main(["generate", str(out), "--prompt", "w5"]) == 2
    assert "truncated or corrupt" in capsys.readouterr().err


def test_unknown_preset_rejected_by_parser():
    with pytest.raises(SystemExit) as e:
        cli.main(["linearize", "--preset", "nope", "--out", "x"])
    assert e.value.code == 2


def test_console_entry_point_help():
    r = subprocess.run([sys.executable, "-m", "lawcat.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "linearize" in r.stdout and "demo" in r.stdout


# ---- start-up, version, recipes by name -----------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "numpy", "lm_eval")


def test_version():
    import lawcat

    r = subprocess.run([sys.executable, "-m", "lawcat.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == f"lawcat {lawcat.__version__}"


def test_help_imports_no_torch():
    """`--help` (top level and per command) builds the parser without the heavy libraries: it answers at once."""
    code = textwrap.dedent("""
        import sys
        from lawcat import cli
        for argv in ([], *([c] for c in sys.argv[1:])):
            try:
                cli.main([*argv, "--help"])
            except SystemExit as e:
                assert e.code == 0, (argv, e.code)
        print("imported:" + ",".join(m for m in %r if m in sys.modules))
    """ % (HEAVY,))
    commands = ["linearize", "generate", "distill", "eval", "compare", "demo", "list-weights"]
    r = subprocess.run([sys.executable, "-c", code, *commands], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "imported:", r.stdout.splitlines()[-1]
    for command in commands:
        assert f"usage: lawcat {command}" in r.stdout
    assert "bench" in subprocess.run([sys.executable, "-m", "lawcat.cli", "--help"], capture_output=True,
                                     text=True).stdout


def test_preset_choices_are_the_presets():
    from lawcat.models.config import PRESETS

    assert cli.PRESET_NAMES == tuple(sorted(PRESETS))


def test_bench_is_parsed_by_its_own_parser(capsys):
    assert cli.main(["bench", "--list-archs"]) == 0
    assert "llama-3.2-1b" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        cli.main(["bench", "--dtype", "fp8"])
    assert e.value.code == 2


def test_recipe_by_name_path_or_link(tmp_path, monkeypatch):
    from lawcat.recipes import RECIPES_DIR, resolve_recipe, shipped_recipes

    assert RECIPES_DIR == Path(cli.__file__).resolve().parent / "recipes"
    assert {"demo", "passkey", "niah", "babilong"} <= set(shipped_recipes())
    # the checkout's top-level recipes/ is the package's folder, so README paths name the shipped files
    assert (ROOT / "recipes").resolve() == RECIPES_DIR
    monkeypatch.chdir(tmp_path)  # not the repo root: no recipes/ here
    for spec in ("passkey", "passkey.yaml", "recipes/passkey.yaml"):
        assert resolve_recipe(spec) == RECIPES_DIR / "passkey.yaml"
    mine = tmp_path / "recipes" / "passkey.yaml"
    mine.parent.mkdir()
    mine.write_text("an edited copy")
    assert resolve_recipe("recipes/passkey.yaml") == Path("recipes/passkey.yaml")  # an existing file wins
    assert resolve_recipe("nope") == Path("nope") and resolve_recipe("a/passkey.yaml") == Path("a/passkey.yaml")


def test_distill_unknown_recipe_is_one_line(tmp_path, capsys):
    assert cli.main(["distill", "--recipe", "nope", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "nope" in err and "\n" not in err


# ---- packaging: a normal (non-editable) wheel carries what the CLI reads at run time -------------------------------

@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel `pip install .` would build, built from a copy of the sources (no build/ left in the checkout)."""
    src = tmp_path_factory.mktemp("src")
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copy(ROOT / "README.md", src)
    shutil.copytree(ROOT / "lawcat", src / "lawcat", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(out), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    [whl] = out.glob("lawcat-*.whl")
    return whl


def test_wheel_carries_recipes_tasks_and_commands(wheel):
    import lawcat
    from lawcat.recipes import shipped_recipes

    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = next(z.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert wheel.name.startswith(f"lawcat-{lawcat.__version__}-")
    assert {f"lawcat/recipes/{r}.yaml" for r in shipped_recipes()} <= names
    assert {"lawcat/eval/lm_eval_tasks/lawcat_qa.jsonl", "lawcat/eval/lm_eval_tasks/lawcat_qa_mc.yaml",
            "lawcat/eval/lm_eval_tasks/lawcat_qa_utils.py", "lawcat/recipes/__init__.py"} <= names
    assert not any(n.startswith(("recipes/", "tests/")) for n in names)
    assert "lawcat = lawcat.cli:main" in entry_points and "lawcat-lm-eval = lawcat.lm_eval:main" in entry_points


@pytest.mark.slow  # ~35 s on 2 cores: a venv, an install and a whole (tiny) demo
def test_installed_wheel_runs_the_demo_outside_the_checkout(wheel, tmp_path):
    """`pip install .` into a fresh venv (its dependencies taken from this interpreter's site-packages), then
    `lawcat demo --quick` from a folder that is not the checkout: the packaged demo recipe is found."""
    from tests.weights.fake import passkey_teacher_dir

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py, exe = venv / "bin" / "python", venv / "bin" / "lawcat"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": "", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([str(py), "-c", "import lawcat.demo as d; print(d.__file__); print(d.DEMO_RECIPE)"],
                       cwd=work, env=env, capture_output=True, text=True)
    module, recipe = r.stdout.split()
    assert str(venv) in module and str(venv) in recipe and Path(recipe).is_file(), r.stdout  # the wheel's copy
    assert subprocess.run([str(exe), "--version"], cwd=work, env=env, capture_output=True, text=True).returncode == 0
    teacher = passkey_teacher_dir(tmp_path / "teacher")
    r = subprocess.run([str(exe), "demo", "--quick", "--teacher", str(teacher), "--lengths", "200", "--n", "1",
                        "--long-lengths", "", "--out", "demo"], cwd=work, env=env, capture_output=True, text=True)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert (work / "demo" / "compare" / "comparison.md").is_file()


def test_teacher_flag_overrides_where_a_students_teacher_is(teacher_dir, tmp_path, capsys, monkeypatch):
    """--teacher on generate / eval: a student whose teacher moved still loads (fingerprint-checked)."""
    import shutil

    monkeypatch.delenv("LAWCAT_TEACHER_ROOT", raising=False)
    out = tmp_path / "student"
    assert cli.main(["linearize", "--teacher", str(teacher_dir), "--out", str(out)]) == 0
    moved = tmp_path / "moved-teacher"
    shutil.move(teacher_dir, moved)
    assert cli.main(["generate", str(out), "--prompt", "w5 w6", "--max-new-tokens", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after any progress bar
    assert err.startswith("error:") and "is not at" in err and "--teacher" in err
    assert cli.main(["generate", str(out), "--prompt", "w5 w6", "--max-new-tokens", "2", "--teacher", str(moved)]) == 0
    with pytest.raises(SystemExit, match="--teacher is for a lawcat student"):
        cli.main(["generate", str(moved), "--prompt", "w5", "--teacher", str(moved)])
    args = cli.build_parser().parse_args(["eval", str(out), "--task", "passkey", "--out", "o", "--teacher", "t"])
    assert args.teacher == "t"


@pytest.mark.parametrize("task, variant, says", [
    ("niah1", "natural", "its variants: standard, filler, needle, question, values, heldout"),
    ("passkey", "values", "its variants: standard, filler, natural"),
    ("babilong-qa2", "values", "its variants: standard, background, question, heldout"),
    ("lm-eval", "heldout", "(it has none)"),
])
def test_eval_refuses_a_variant_the_task_lacks_before_loading(tmp_path, capsys, task, variant, says):
    missing_model = str(tmp_path / "not-loaded")  # the refusal comes first, so this is never looked at
    with pytest.raises(SystemExit) as e:
        cli.main(["eval", missing_model, "--task", task, "--variant", variant, "--out", str(tmp_path / "o")])
    msg = str(e.value.code) + capsys.readouterr().err
    assert f"--variant {variant} is not a variant of --task {task}" in msg and says in msg
    assert not (tmp_path / "o").exists()


def test_compare_needle_positions(tmp_path, capsys):
    from lawcat.eval.records import ResultRecord, RunInfo
    from lawcat.eval.results import write_results

    recs = [ResultRecord("niah1", "s", 2048, 2048, d, "7", "7", 1.0) for d in (10, 90)]
    write_results(tmp_path / "s", recs, RunInfo(model="s", task="niah1", machine={}, date=None))
    assert cli.main(["compare", str(tmp_path / "s"), "--out", str(tmp_path / "o"), "--needle-positions", "1k"]) == 0
    assert "| 1K+ | 100 (n=1) |" in (tmp_path / "o" / "comparison.md").read_text()
    capsys.readouterr()
    assert cli.main(["compare", str(tmp_path / "s"), "--out", str(tmp_path / "o2"), "--needle-positions", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "cannot read the length" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o2").exists()
