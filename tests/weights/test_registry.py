"""Shipped students: found by name wherever a run directory is accepted, fingerprint-checked, and an unknown
name is one clear error that lists the shipped ones."""
import pytest
import torch

import lawcat.weights as weights
from lawcat import LawcatForCausalLM, load_teacher
from lawcat.models import CheckpointError, TeacherLoadError, TeacherMismatchError, UnknownModelError
from lawcat.models.checkpoint import resolve_model_spec
from tests.weights.fake import CARD, passkey_teacher_dir, ship_student

NAME = "passkey-smollm2"


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A registry root holding one fake shipped student (with a card) and one folder that is not a student."""
    root = tmp_path / "weights"
    root.mkdir()
    teacher = passkey_teacher_dir(tmp_path / "teacher")
    folder = ship_student(root, NAME, teacher, CARD)
    (root / "__pycache__").mkdir()
    monkeypatch.setattr(weights, "ROOT", root)
    return folder, teacher


def test_names_paths_and_cards(shipped):
    folder, _ = shipped
    assert weights.list_shipped() == [NAME]
    assert weights.shipped_path(NAME) == folder
    assert weights.read_card(NAME)["scores"]["32768"] == 96.0
    (folder / "card.json").write_text("{not json")
    assert weights.read_card(NAME) == {}  # a card is documentation: a broken one never blocks loading
    with pytest.raises(UnknownModelError, match=f"shipped students: {NAME}"):
        weights.shipped_path("passkey-smollm3")


def test_from_pretrained_by_name_equals_the_folder(shipped):
    folder, _ = shipped
    by_name = LawcatForCausalLM.from_pretrained(NAME)
    by_path = LawcatForCausalLM.from_pretrained(folder)
    ids = torch.randint(3, 300, (1, 20))
    with torch.no_grad():
        assert torch.equal(by_name(ids).logits, by_path(ids).logits)
    assert by_name.tokenizer is not None


def test_shipped_student_with_its_teacher_elsewhere(shipped, tmp_path):
    """teacher= says where a shipped student's teacher is (a folder here; "default" for the real ones)."""
    folder, teacher = shipped
    moved = tmp_path / "moved"
    teacher.rename(moved)
    with pytest.raises(TeacherLoadError, match="teacher=..., --teacher"):
        LawcatForCausalLM.from_pretrained(NAME)
    ids = torch.randint(3, 300, (1, 12))
    with torch.no_grad():
        assert torch.isfinite(LawcatForCausalLM.from_pretrained(NAME, teacher=str(moved))(ids).logits).all()


def test_fingerprint_is_checked_for_shipped_students(shipped, tmp_path):
    other, _ = load_teacher(str(passkey_teacher_dir(tmp_path / "other", seed=1)))
    with pytest.raises(TeacherMismatchError, match="different teacher"):
        LawcatForCausalLM.from_pretrained(NAME, teacher=other)


def test_resolve_model_spec(shipped, tmp_path, monkeypatch):
    folder, teacher = shipped
    assert resolve_model_spec(NAME) == folder
    assert resolve_model_spec(str(folder)) == folder          # a run directory by path
    assert resolve_model_spec(str(teacher)) is None           # an existing teacher directory
    assert resolve_model_spec("default") is None and resolve_model_spec("random:tiny-llama") is None
    monkeypatch.chdir(tmp_path)
    (tmp_path / NAME).mkdir()                                 # a local folder of that name wins over the package
    assert resolve_model_spec(NAME) is None
    for bad in ("passkey-smollm3", "runs/nope"):
        with pytest.raises(UnknownModelError, match=f"nor a shipped student \\(shipped students: {NAME}\\)"):
            resolve_model_spec(bad)
    with pytest.raises(CheckpointError, match=f"not a directory.*shipped students: {NAME}"):
        LawcatForCausalLM.from_pretrained("passkey-smollm3")


def test_empty_registry_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "ROOT", tmp_path / "absent")
    assert weights.list_shipped() == []
    with pytest.raises(UnknownModelError, match="ships no students yet"):
        resolve_model_spec("passkey-smollm2")


def test_package_data_includes_weight_folders():
    import tomllib
    from pathlib import Path

    data = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    globs = data["tool"]["setuptools"]["package-data"]["lawcat"]
    for ext in ("safetensors", "json", "txt"):
        assert f"weights/*/*.{ext}" in globs
