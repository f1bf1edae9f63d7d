"""`lawcat viz` (lawcat/analysis/cli.py): each view writes its PNG, its numbers and one line; bad input gives one
line and exit 2; --help imports neither torch nor matplotlib."""
import shutil
import subprocess
import sys
import textwrap

import pytest

from lawcat import cli


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
    """ % (("torch", "transformers", "numpy", "lm_eval", "matplotlib"),))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "imported:"
    for mode in ("attention", "needle-share", "gate"):
        assert f"usage: lawcat viz {mode}" in r.stdout
