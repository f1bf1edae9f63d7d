"""`lawcat eval NAME` and `lawcat list-weights` with a fake shipped student (lawcat.weights.ROOT patched)."""
import json

import pytest

import lawcat.weights as weights
from lawcat import cli
from tests.weights.fake import CARD, passkey_teacher_dir, ship_student

NAME = "passkey-smollm2"


@pytest.fixture
def root(tmp_path, monkeypatch):
    root = tmp_path / "weights"
    root.mkdir()
    monkeypatch.setattr(weights, "ROOT", root)
    return root


def test_eval_a_shipped_student_by_name(root, tmp_path, capsys):
    ship_student(root, NAME, passkey_teacher_dir(tmp_path / "teacher"), CARD)
    out = tmp_path / "eval"
    assert cli.main(["eval", NAME, "--task", "passkey", "--lengths", "200", "--n", "1", "--out", str(out)]) == 0
    data = json.loads((out / "results.json").read_text())
    assert data["run"]["model"] == NAME and len(data["records"]) == 1
    assert NAME in capsys.readouterr().out


def test_unknown_name_is_one_line_listing_shipped(root, tmp_path, capsys):
    ship_student(root, NAME, passkey_teacher_dir(tmp_path / "teacher"))
    capsys.readouterr()  # drop the setup's save progress bars
    assert cli.main(["eval", "passkey-smolm2", "--task", "passkey", "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    assert "'passkey-smolm2'" in err and f"shipped students: {NAME}" in err
    assert not (tmp_path / "e").exists()


def test_list_weights_prints_cards(root, tmp_path, capsys):
    assert cli.main(["list-weights"]) == 0
    assert "ships no students yet" in capsys.readouterr().out
    ship_student(root, NAME, passkey_teacher_dir(tmp_path / "teacher"), CARD)
    ship_student(root, "bare", tmp_path / "teacher")  # no card: listed by name alone
    assert cli.main(["list-weights"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "bare"
    assert lines[1].startswith(NAME) and "task passkey" in lines[1] and "teacher default" in lines[1]
    assert lines[2] == "  accuracy % (n=50 per length): 1K: 100  2K: 98  32K: 96"  # sorted by length
    assert lines[3] == f"  made by: {CARD['command']}"


def test_list_weights_prints_every_task_and_held_out_variant(root, tmp_path, capsys):
    card = dict(CARD, scores_task="the published format", task_scores={"niah2": {"2048": 88.0, "1024": 100.0}},
                heldout_scores={"filler": {"4096": 98.0}, "broken": "not a table"})
    ship_student(root, NAME, passkey_teacher_dir(tmp_path / "teacher"), card)
    capsys.readouterr()
    assert cli.main(["list-weights"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:4] == ["  accuracy % on the published format (n=50 per length): 1K: 100  2K: 98  32K: 96",
                          "  niah2: 1K: 100  2K: 88",
                          "  held out, filler: 4K: 98"]
