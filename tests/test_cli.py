"""The `lawcat` command: subcommands work end to end, user errors give one line and exit 2."""
import subprocess
import sys

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
