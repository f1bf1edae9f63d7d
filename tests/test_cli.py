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


# ---- lawcat viz ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def viz_student(tmp_path_factory):
    """A tiny passkey-capable student (2 layers, 2 heads) saved as a run directory, and its teacher's directory."""
    from tests.weights.fake import passkey_teacher_dir, ship_student

    root = tmp_path_factory.mktemp("viz")
    return ship_student(root, "student", passkey_teacher_dir(root / "teacher")), root / "teacher"


def _last_err(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]  # after any progress bar


def test_viz_attention_writes_a_png_and_one_line(viz_student, tmp_path, capsys):
    run, _ = viz_student
    out = tmp_path / "attn.png"
    assert cli.main(["viz", "attention", str(run), "--prompt", "The pass key is 42. Remember it.", "--layer", "1",
                     "--head", "0", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG") and out.stat().st_size > 1000
    [line] = capsys.readouterr().out.strip().splitlines()
    assert "layer 1 head 0" in line and str(out) in line
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("The grass is green. The pass key is 7.")
    assert cli.main(["viz", "attention", str(run), "--prompt-file", str(prompt), "--layer", "0", "--head", "1",
                     "--out", str(tmp_path / "from-file.png")]) == 0
    assert (tmp_path / "from-file.png").stat().st_size > 1000


def test_viz_needle_share_and_gate(viz_student, tmp_path, capsys):
    run, _ = viz_student
    assert cli.main(["viz", "needle-share", str(run), str(run), "--names", "a,b", "--length", "300",
                     "--out", str(tmp_path / "share.png")]) == 0
    assert cli.main(["viz", "gate", str(run), "--length", "300", "--chunk", "100",
                     "--out", str(tmp_path / "gate.png")]) == 0
    share, gate = capsys.readouterr().out.strip().splitlines()
    assert share.startswith("needle share") and "a " in share and "b " in share
    assert "median half-life" in gate
    for name in ("share", "gate"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000 and (tmp_path / f"{name}.json").is_file()


def test_viz_transfer_error(viz_student, tmp_path, capsys):
    import json

    run, _ = viz_student
    out = tmp_path / "err.png"
    assert cli.main(["viz", "transfer-error", str(run), "--task", "passkey", "--length", "300", "--bin", "64",
                     "--trained-length", "128", "--out", str(out)]) == 0
    [line] = capsys.readouterr().out.strip().splitlines()
    assert "mean transfer error" in line and "beyond token 128" in line and str(out) in line
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["bins"][:3] == [0, 64, 128] and len(summary["growth_beyond_trained"]) == len(summary["layers"])
    assert out.stat().st_size > 1000


def test_viz_lm_drift_with_and_without_lora(viz_student, tmp_path, capsys):
    import json

    import torch

    from lawcat import LawcatConfig, linearize, load_teacher
    from lawcat.models.lora import add_lora

    _, teacher_dir = viz_student
    teacher, _ = load_teacher(str(teacher_dir))
    student = linearize(teacher, LawcatConfig(chunk_size=16))
    add_lora(student)
    with torch.no_grad():
        for name, p in student.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.5)
    student.save_pretrained(tmp_path / "lora-student")        # adapters kept apart
    text = tmp_path / "text.txt"
    text.write_text(" ".join(f"w{i % 50}" for i in range(400)))
    out = tmp_path / "drift.png"
    assert cli.main(["viz", "lm-drift", str(tmp_path / "lora-student"), "--text", str(text), "--length", "96",
                     "--bin", "32", "--out", str(out)]) == 0
    [line] = capsys.readouterr().out.strip().splitlines()
    assert "teacher" in line and "LoRA off (stage 1)" in line and str(out) in line
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["tokens"] == 96 and summary["curves"]["student"]["bins"] == [0, 32, 64]
    with_lora, without = summary["curves"]["student"], summary["curves"]["student, LoRA off (stage 1)"]
    assert sum(with_lora["kl"]) > sum(without["kl"])          # the random adapters move it away from the teacher
    assert out.stat().st_size > 1000
    assert cli.main(["viz", "lm-drift", str(tmp_path / "lora-student"), "--text", str(text), "--length", "90k",
                     "--out", str(tmp_path / "x.png")]) == 2
    assert "fewer than the 92,160 asked for" in _last_err(capsys)


def test_viz_bad_input_is_one_line_and_exit_2(viz_student, tmp_path, capsys):
    run, teacher = viz_student
    attention = ["viz", "attention", "--prompt", "w", "--out", str(tmp_path / "x.png")]
    cases = [
        ([*attention, str(tmp_path / "nope"), "--layer", "0", "--head", "0"], "is not a file or directory"),
        ([*attention, str(run), "--layer", "2", "--head", "0"], "--layer 2 is out of range: the student has 2 layers"),
        ([*attention, str(run), "--layer", "0", "--head", "9"], "--head 9 is out of range: the student has 2 heads"),
        ([*attention, str(teacher), "--layer", "0", "--head", "0"], "is a teacher, not a lawcat student"),
        (["viz", "gate", str(tmp_path / "nope"), "--out", str(tmp_path / "x.png")], "is not a file or directory"),
        (["viz", "needle-share", str(run), "--names", "a,b", "--out", str(tmp_path / "x.png")], "--names gives 2"),
        (["viz", "transfer-error", str(teacher), "--out", str(tmp_path / "x.png")], "is a teacher, not a lawcat"),
        (["viz", "transfer-error", str(run), "--task", "passkey", "--length", "300", "--bin", "0", "--out",
          str(tmp_path / "x.png")], "not a whole number of tokens >= 1"),
        (["viz", "attention", str(run), "--prompt-file", str(tmp_path / "none.txt"), "--layer", "0", "--head", "0",
          "--out", str(tmp_path / "x.png")], "No such file"),
    ]
    for argv, message in cases:
        assert cli.main(argv) == 2, argv
        err = _last_err(capsys)
        assert err.startswith("error:") and message in err, (argv, err)
    assert not (tmp_path / "x.png").exists()
    with pytest.raises(SystemExit) as e:                     # a mode is required
        cli.main(["viz"])
    assert e.value.code == 2


def test_viz_attention_teacher_flag_finds_a_moved_teacher(tmp_path, capsys, monkeypatch):
    from tests.weights.fake import passkey_teacher_dir, ship_student

    monkeypatch.delenv("LAWCAT_TEACHER_ROOT", raising=False)
    run = ship_student(tmp_path, "student", passkey_teacher_dir(tmp_path / "teacher"))
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "teacher", moved)
    argv = ["viz", "attention", str(run), "--prompt", "The pass key is 1.", "--layer", "0", "--head", "0",
            "--out", str(tmp_path / "a.png")]
    assert cli.main(argv) == 2
    err = _last_err(capsys)
    assert err.startswith("error:") and "could not be loaded" in err and "--teacher" in err
    assert cli.main([*argv, "--teacher", str(moved)]) == 0


def test_viz_help_imports_no_torch():
    code = textwrap.dedent("""
        import sys
        from lawcat import cli
        for mode in ([], ["attention"], ["needle-share"], ["gate"], ["transfer-error"], ["lm-drift"]):
            try:
                cli.main(["viz", *mode, "--help"])
            except SystemExit as e:
                assert e.code == 0, (mode, e.code)
        print("imported:" + ",".join(m for m in %r if m in sys.modules))
    """ % (HEAVY + ("matplotlib",),))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "imported:"
    for mode in ("attention", "needle-share", "gate"):
        assert f"usage: lawcat viz {mode}" in r.stdout


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
    with pytest.raises(SystemExit) as e:
        cli.main(["compare", str(tmp_path / "s"), "--out", str(tmp_path / "o"), "--needle-positions", "x"])
    assert e.value.code == 2 and "cannot read the length" in capsys.readouterr().err
