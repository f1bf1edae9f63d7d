"""lawcat.analysis.figures on tiny saved students: each view writes a PNG (and its JSON), bad requests are refused
before any model loads."""
import json
import re

import pytest

from lawcat.analysis.errors import AnalysisError
from lawcat.analysis.figures import attention_figure, gate_figure, needle_share_figure
from tests.weights.fake import passkey_teacher_dir, ship_student

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def students(tmp_path_factory):
    root = tmp_path_factory.mktemp("students")
    teacher = passkey_teacher_dir(root / "teacher")
    return [ship_student(root, name, teacher) for name in ("a", "b")]


def _png(path):
    data = path.read_bytes()
    return data.startswith(PNG) and len(data) > 1000


def test_attention_figure(students, tmp_path):
    out = tmp_path / "maps" / "attn.png"
    line = attention_figure(str(students[0]), "The pass key is 12345. Remember it.", 1, 1, out)
    assert _png(out)
    assert "layer 1 head 1" in line and "differ by" in line and str(out) in line and "\n" not in line


def test_needle_share_figure(students, tmp_path):
    out = tmp_path / "share.png"
    line = needle_share_figure([str(s) for s in students], out, names=["first", "second"], length=300, depth=30)
    assert _png(out)
    data = json.loads(out.with_suffix(".json").read_text())
    assert list(data["models"]) == ["first", "second"] and data["length"] <= 300
    assert len(data["models"]["first"]["layers"]) == 2
    assert 0 < data["uniform_share"] < 1 and 0 < data["models"]["first"]["best_share_any_layer"] <= 1
    assert "first" in line and "second" in line and "\n" not in line


def test_gate_figure(students, tmp_path):
    out = tmp_path / "gate.png"
    line = gate_figure(str(students[0]), out, length=300, chunk=64)
    assert _png(out)
    data = json.loads(out.with_suffix(".json").read_text())
    assert "half_lives" not in data and data["needle_distance"] == data["length"] - 1 - data["needle_token"]
    assert [len(layer["half_life_median_per_head"]) for layer in data["layers"]] == [2, 2]
    assert "median half-life" in line and "\n" not in line


@pytest.mark.parametrize("call, message", [
    (lambda s, o: attention_figure(s, "x", 2, 0, o), "--layer 2 is out of range: the student has 2 layers (0..1)"),
    (lambda s, o: attention_figure(s, "x", 0, -1, o), "--head -1 is out of range: the student has 2 heads (0..1)"),
    (lambda s, o: needle_share_figure([s, s], o, names=["one"]), "--names gives 1 labels for 2 models"),
])
def test_bad_requests_are_refused(students, tmp_path, call, message):
    with pytest.raises(AnalysisError, match=re.escape(message)):
        call(str(students[0]), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_a_teacher_or_a_long_prompt_is_refused(students, tmp_path):
    with pytest.raises(AnalysisError, match="is a teacher, not a lawcat student"):
        attention_figure(str(students[0].parent / "teacher"), "x", 0, 0, tmp_path / "x.png")
    with pytest.raises(AnalysisError, match="attention maps are T x T"):
        attention_figure(str(students[0]), "7 " * 5000, 0, 0, tmp_path / "x.png")
