"""load_teacher: HF directories, GGUF files, the default teacher, and clear errors."""
import pytest
import torch

from lawcat import LawcatConfig, linearize, load_teacher
from lawcat.models import TeacherLoadError, UnsupportedTeacherError


def test_hf_directory(teacher_dir):
    model, tok = load_teacher(str(teacher_dir))
    assert model.config.model_type == "llama" and not model.training
    assert model.lawcat_source == str(teacher_dir.resolve()) and model.lawcat_file_sha256 is None
    assert tok("w4 w5").input_ids[-2:] == [4, 5]


def test_errors_are_clear(tmp_path):
    with pytest.raises(TeacherLoadError, match="not found"):
        load_teacher(str(tmp_path / "missing"))
    (tmp_path / "x.bin").write_bytes(b"123")
    with pytest.raises(TeacherLoadError, match="not a .gguf"):
        load_teacher(str(tmp_path / "x.bin"))
    (tmp_path / "d").mkdir()
    with pytest.raises(TeacherLoadError, match="no config.json"):
        load_teacher(str(tmp_path / "d"))
    (tmp_path / "bad.gguf").write_bytes(b"not a gguf at all")
    with pytest.raises((UnsupportedTeacherError, TeacherLoadError)):
        load_teacher(str(tmp_path / "bad.gguf"))


@pytest.mark.slow
def test_default_teacher_linearize_and_generate():
    teacher, tok = load_teacher("default")
    assert teacher.config.num_hidden_layers == 30 and teacher.config.num_key_value_heads == 3
    student = linearize(teacher, LawcatConfig())
    assert student.config.teacher_source == "default"
    assert student.config.teacher_file_sha256.startswith("b179c952")
    ids = tok("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = student.generate(**ids, max_new_tokens=20, do_sample=False, min_new_tokens=20)
    assert out.shape[1] == ids.input_ids.shape[1] + 20
    assert isinstance(tok.decode(out[0, ids.input_ids.shape[1]:]), str)
    # The untrained student is still the teacher everywhere but attention: logits stay finite.
    with torch.no_grad():
        assert torch.isfinite(student(**ids).logits).all()


def _default_tokenizer_is(monkeypatch, folder):
    from lawcat.models import teacher as teacher_mod

    monkeypatch.setattr(teacher_mod, "_model_folder", lambda src: ("default", folder, None))


def test_random_architecture_teacher(monkeypatch, teacher_dir):
    """random:<arch> builds the named shape with random weights and pairs it with the default tokenizer."""
    _default_tokenizer_is(monkeypatch, teacher_dir)  # a 97-word tokenizer stands in for SmolLM2's
    model, tok = load_teacher("random:tiny-llama", dtype=torch.float64)
    assert model.lawcat_source == "random:tiny-llama" and model.lawcat_file_sha256 is None
    assert model.config.vocab_size == 256 and next(model.parameters()).dtype == torch.float64
    assert len(tok) == 97 and model.lawcat_tokenizer is tok
    again, _ = load_teacher("random:tiny-llama", dtype=torch.float64)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))  # seeded: rebuildable
    student = linearize(model, LawcatConfig())
    assert student.config.teacher_source == "random:tiny-llama"


def test_random_architecture_teacher_with_its_own_tokenizer(monkeypatch, teacher_dir):
    """tokenizer_dir= pairs a random: teacher with a tokenizer folder and never touches the default teacher."""
    from lawcat.models import teacher as teacher_mod

    def no_default(src):
        raise AssertionError("the default teacher was loaded")

    monkeypatch.setattr(teacher_mod, "_model_folder", no_default)
    model, tok = load_teacher("random:tiny-llama", tokenizer_dir=teacher_dir)
    assert len(tok) == 97 and model.lawcat_tokenizer is tok


def test_random_architecture_errors(monkeypatch, tmp_path):
    from lawcat.models.architectures import UnknownArchitectureError
    from tests.conftest import make_tokenizer

    with pytest.raises(UnknownArchitectureError, match="unknown architecture 'nope'"):
        load_teacher("random:nope")
    big = tmp_path / "tok"
    make_tokenizer(300).save_pretrained(big)  # more ids than tiny-llama's 256-row embedding holds
    _default_tokenizer_is(monkeypatch, big)
    with pytest.raises(TeacherLoadError, match="vocabulary"):
        load_teacher("random:tiny-llama")
