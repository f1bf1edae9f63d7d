"""`lawcat demo` end to end on a tiny random Llama (distill, three evaluations, comparison), so the README's
main job cannot silently break; and its output directory is never someone else's."""
import json

import pytest

import lawcat.weights as weights
from lawcat import cli
from lawcat.demo import SHIPPED_PASSKEY
from tests.weights.fake import passkey_teacher_dir, ship_student


@pytest.fixture
def setup(tmp_path, monkeypatch):
    root = tmp_path / "weights"
    root.mkdir()
    monkeypatch.setattr(weights, "ROOT", root)
    return root, passkey_teacher_dir(tmp_path / "teacher")


def _demo(teacher, out, *extra):
    return cli.main(["demo", "--quick", "--teacher", str(teacher), "--out", str(out), "--lengths", "200,300",
                     "--n", "2", "--batch-size", "2", *extra])


def test_demo_end_to_end_with_shipped_student(setup, tmp_path, capsys):
    root, teacher = setup
    ship_student(root, SHIPPED_PASSKEY, teacher)
    out = tmp_path / "demo"
    assert _demo(teacher, out) == 0
    printed = capsys.readouterr().out
    assert (out / "student" / "model.safetensors").is_file() and (out / "student" / "summary.json").is_file()
    for folder in ("teacher", "student", SHIPPED_PASSKEY):
        data = json.loads((out / "eval" / folder / "results.json").read_text())
        assert sorted({r["length"] for r in data["records"]}) == [200, 300] and len(data["records"]) == 4
    table = (out / "compare" / "comparison.md").read_text()
    for row in ("| teacher |", "| demo student |", f"| {SHIPPED_PASSKEY} (shipped) |"):
        assert row in table and row in printed
    assert (out / "compare" / "compare_passkey.png").read_bytes()[:4] == b"\x89PNG"
    assert "![" not in printed  # image links stay in the file


def test_demo_without_shipped_student_keeps_its_student(setup, tmp_path, capsys):
    _, teacher = setup
    out = tmp_path / "demo"
    assert _demo(teacher, out, "--lengths", "200", "--n", "1") == 0
    printed = capsys.readouterr().out
    assert f"no shipped {SHIPPED_PASSKEY}" in printed and "| demo student |" in printed
    assert not (out / "eval" / SHIPPED_PASSKEY).exists()

    # Run again: the student is kept (distillation is the slow part), the evaluations are redone.
    mtime = (out / "student" / "model.safetensors").stat().st_mtime_ns
    assert _demo(teacher, out, "--lengths", "200", "--n", "1") == 0
    assert "keeping the student" in capsys.readouterr().out
    assert (out / "student" / "model.safetensors").stat().st_mtime_ns == mtime
    # Other training settings into the same directory would mix two trainings: refused, nothing changed.
    assert _demo(teacher, out, "--lengths", "200", "--n", "1", "stage1.lr=3e-3") == 2
    assert "distilled with other settings" in capsys.readouterr().err
    assert (out / "student" / "model.safetensors").stat().st_mtime_ns == mtime


def test_demo_refuses_a_directory_it_did_not_make(setup, tmp_path, capsys):
    _, teacher = setup
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    capsys.readouterr()
    assert _demo(teacher, out) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "not made by `lawcat demo`" in err and "\n" not in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_demo_long_lengths_only_for_teacher_and_shipped_student(setup, tmp_path, capsys):
    root, teacher = setup
    ship_student(root, SHIPPED_PASSKEY, teacher)
    out = tmp_path / "demo"
    assert _demo(teacher, out, "--lengths", "200", "--n", "2", "--long-lengths", "300", "--long-n", "1") == 0
    lengths = {}
    for folder in ("teacher", "student", SHIPPED_PASSKEY):
        records = json.loads((out / "eval" / folder / "results.json").read_text())["records"]
        lengths[folder] = sorted(r["length"] for r in records)
    assert lengths == {"teacher": [200, 200, 300], "student": [200, 200], SHIPPED_PASSKEY: [200, 200, 300]}
    assert "Reading: " in (out / "compare" / "comparison.md").read_text() and "Reading: " in capsys.readouterr().out


def test_reading_names_what_the_table_shows():
    from lawcat.demo import reading
    from lawcat.eval.accuracy import Cell

    rows = {"teacher": {1024: Cell(100.0, 5), 12288: Cell(0.0, 2)},
            "demo student": {256: Cell(100.0, 5), 1024: Cell(20.0, 5)},
            "passkey-smollm2 (shipped)": {1024: Cell(100.0, 5), 12288: Cell(50.0, 2)}}
    line = reading(rows, 8192, 128)
    assert "at 12,288 tokens" in line and "found 1/2 keys and the teacher 0/2" in line
    assert "distilled on 128-token samples, reads keys to 256 tokens" in line
    rows["demo student"] = {256: Cell(40.0, 5)}
    assert "does not yet read keys" in reading(rows, 8192, 128)


def test_demo_recipe_is_package_data_found_from_any_folder(tmp_path, monkeypatch):
    """The demo's recipe ships inside the package (a wheel install has it) and loads whatever the working folder."""
    from pathlib import Path

    import lawcat
    from lawcat.demo import DEMO_RECIPE, DemoSettings
    from lawcat.distill.recipe import load_recipe

    assert DEMO_RECIPE == Path(lawcat.__file__).resolve().parent / "recipes" / "demo.yaml"
    monkeypatch.chdir(tmp_path)
    assert load_recipe(DemoSettings().recipe).name
    assert load_recipe("demo") == load_recipe(DEMO_RECIPE)  # `lawcat demo --recipe demo`, by name
