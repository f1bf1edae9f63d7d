"""Save / load: small files, bit-exact round trips, the right teacher only, damage refused, nothing lost."""
import json

import pytest
import torch
from safetensors.torch import load_file

from lawcat import LawcatConfig, LawcatForCausalLM, load_teacher
from lawcat.models import CheckpointError, TeacherMismatchError
from lawcat.models import checkpoint as ckpt
from tests.conftest import make_teacher, trained_student


def test_round_trip_from_recorded_teacher_is_bit_exact(teacher_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("LAWCAT_TEACHER_ROOT", raising=False)  # outside any teacher root: recorded as it is
    teacher, tok = load_teacher(str(teacher_dir))
    student = trained_student(teacher)
    out = tmp_path / "run"
    student.save_pretrained(out)
    saved = load_file(out / "model.safetensors")
    assert set(saved) == {n for n, _ in student.named_parameters()} - student.teacher_param_names
    assert json.loads((out / "config.json").read_text())["teacher_source"] == str(teacher_dir.resolve())
    assert (out / "tokenizer_config.json").is_file()
    loaded = LawcatForCausalLM.from_pretrained(out)        # the teacher comes from the recorded source
    for (n1, p1), (n2, p2) in zip(student.state_dict().items(), loaded.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2), n1
    ids = torch.randint(0, 97, (2, 15))
    with torch.no_grad():
        assert torch.equal(student(ids).logits, loaded(ids).logits)
    assert loaded.tokenizer is not None and loaded.tokenizer("w5 w6").input_ids == tok("w5 w6").input_ids


def test_teacher_object_passed_in_and_wrong_teacher_refused(tmp_path):
    teacher = make_teacher("qwen2", seed=0)
    student = trained_student(teacher)
    student.save_pretrained(tmp_path / "run")
    loaded = LawcatForCausalLM.from_pretrained(tmp_path / "run", teacher=make_teacher("qwen2", seed=0))
    ids = torch.randint(0, 97, (1, 9))
    with torch.no_grad():
        assert torch.equal(student(ids).logits, loaded(ids).logits)
    with pytest.raises(TeacherMismatchError, match="different teacher"):
        LawcatForCausalLM.from_pretrained(tmp_path / "run", teacher=make_teacher("qwen2", seed=1))


def test_fingerprint_ignores_dtype():
    teacher = make_teacher("llama")
    student = trained_student(teacher)
    from lawcat.models.fingerprint import teacher_fingerprint
    assert teacher_fingerprint(teacher.to(torch.bfloat16)) == student.config.teacher_fingerprint


def test_merged_export_needs_no_teacher(tmp_path):
    student = trained_student(make_teacher("mistral"), window_size=4)
    student.save_pretrained(tmp_path / "merged", merged=True)
    loaded = LawcatForCausalLM.from_pretrained(tmp_path / "merged")
    ids = torch.randint(0, 97, (1, 12))
    with torch.no_grad():
        assert torch.equal(student(ids).logits, loaded(ids).logits)


def test_auto_classes_know_lawcat(tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM
    student = trained_student(make_teacher("llama"))
    student.save_pretrained(tmp_path / "m", merged=True)
    assert isinstance(AutoConfig.from_pretrained(tmp_path / "m"), LawcatConfig)
    assert isinstance(AutoModelForCausalLM.from_pretrained(tmp_path / "m"), LawcatForCausalLM)


def _tensor_region_offset(path):
    import struct
    with open(path, "rb") as f:
        return 8 + struct.unpack("<Q", f.read(8))[0]


def test_corrupt_and_truncated_files_refused(tmp_path):
    teacher = make_teacher("llama")
    student = trained_student(teacher)
    run = tmp_path / "run"
    student.save_pretrained(run)
    weights = run / "model.safetensors"
    good = weights.read_bytes()
    flipped = bytearray(good)
    flipped[_tensor_region_offset(weights) + 10] ^= 0xFF
    weights.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="corrupt"):
        LawcatForCausalLM.from_pretrained(run, teacher=teacher)
    weights.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        LawcatForCausalLM.from_pretrained(run, teacher=teacher)
    weights.write_bytes(good)
    (run / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json is corrupt"):
        LawcatForCausalLM.from_pretrained(run, teacher=teacher)
    with pytest.raises(CheckpointError, match="not a directory"):
        LawcatForCausalLM.from_pretrained(tmp_path / "nowhere", teacher=teacher)


def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    teacher = make_teacher("llama")
    first = trained_student(teacher)
    run = tmp_path / "run"
    first.save_pretrained(run)
    before = {p.name: p.read_bytes() for p in run.iterdir()}

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(ckpt, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        trained_student(teacher).save_pretrained(run)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    monkeypatch.undo()
    loaded = LawcatForCausalLM.from_pretrained(run, teacher=teacher)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), loaded.state_dict().values()))


def test_checkpoint_with_unexpected_tensor_refused(tmp_path):
    teacher = make_teacher("llama")
    student = trained_student(teacher)
    student.save_pretrained(tmp_path / "run")
    other = trained_student(make_teacher("llama"), use_conv=False)
    # Same teacher, different layer layout: the stored conv tensors have nowhere to go.
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    cfg["use_conv"] = False
    (tmp_path / "run" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="does not fit"):
        LawcatForCausalLM.from_pretrained(tmp_path / "run", teacher=teacher)
    assert other is not None


def _with_separate_lora(teacher, tmp_path):
    """A saved student whose LoRA adapters are kept apart and moved off zero (so folding them changes weights)."""
    from lawcat.models.lora import add_lora

    student = trained_student(teacher)
    for p in add_lora(student, r=4, alpha=8):
        with torch.no_grad():
            p.add_(torch.randn_like(p) * 0.1)
    student.save_pretrained(tmp_path / "run")
    ids = torch.randint(0, 97, (2, 13))
    with torch.no_grad():
        return ids, student(ids).logits


def _has_lora(model) -> bool:
    return any(".lora_" in n for n, _ in model.named_parameters())


def test_separate_lora_folds_on_a_float32_load_of_its_own_teacher(teacher_dir, tmp_path):
    teacher, _ = load_teacher(str(teacher_dir))
    ids, want = _with_separate_lora(teacher, tmp_path)
    folded = LawcatForCausalLM.from_pretrained(tmp_path / "run")
    apart = LawcatForCausalLM.from_pretrained(tmp_path / "run", fold_lora=False)
    assert not _has_lora(folded) and folded.config.lora is None
    assert "model.layers.0.self_attn.q_proj.weight" in folded.config.modified_teacher_params
    assert _has_lora(apart) and apart.config.lora["r"] == 4
    pristine, _ = load_teacher(str(teacher_dir))
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(dict(folded.named_parameters())[q], dict(pristine.named_parameters())[q])
    with torch.no_grad():
        torch.testing.assert_close(folded(ids).logits, want, rtol=1e-4, atol=1e-4)
        assert torch.equal(apart(ids).logits, want)


def test_separate_lora_stays_apart_in_bf16_and_with_a_teacher_passed_in(teacher_dir, tmp_path):
    teacher, _ = load_teacher(str(teacher_dir))
    _with_separate_lora(teacher, tmp_path)
    assert _has_lora(LawcatForCausalLM.from_pretrained(tmp_path / "run", dtype=torch.bfloat16))
    mine, _ = load_teacher(str(teacher_dir))
    before = {n: p.clone() for n, p in mine.named_parameters()}
    assert _has_lora(LawcatForCausalLM.from_pretrained(tmp_path / "run", teacher=mine))
    assert all(torch.equal(p, before[n]) for n, p in mine.named_parameters())  # the caller's teacher is untouched
    forced = LawcatForCausalLM.from_pretrained(tmp_path / "run", dtype=torch.bfloat16, fold_lora=True)
    assert not _has_lora(forced) and forced.lm_head.weight.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="fold_lora must be"):
        LawcatForCausalLM.from_pretrained(tmp_path / "run", fold_lora="yes")


def test_a_folded_load_saves_the_adapters_it_loaded(teacher_dir, tmp_path):
    """Load (folded) -> save writes the small adapter form again, which loads apart exactly as the original."""
    teacher, _ = load_teacher(str(teacher_dir))
    ids, want = _with_separate_lora(teacher, tmp_path)
    folded = LawcatForCausalLM.from_pretrained(tmp_path / "run")
    folded.save_pretrained(tmp_path / "again")
    first, again = (load_file(tmp_path / d / "model.safetensors") for d in ("run", "again"))
    assert set(again) == set(first) and all(torch.equal(again[n], first[n]) for n in first)
    saved = json.loads((tmp_path / "again" / "config.json").read_text())
    assert saved["lora"]["r"] == 4 and saved["modified_teacher_params"] == []
    apart = LawcatForCausalLM.from_pretrained(tmp_path / "again", fold_lora=False)
    with torch.no_grad():
        assert torch.equal(apart(ids).logits, want)


def test_forced_fold_below_float32_leaves_one_dtype(teacher_dir, tmp_path):
    teacher, _ = load_teacher(str(teacher_dir))
    _with_separate_lora(teacher, tmp_path)
    mine, _ = load_teacher(str(teacher_dir), dtype=torch.bfloat16)
    model = LawcatForCausalLM.from_pretrained(tmp_path / "run", teacher=mine, fold_lora=True)
    assert {p.dtype for n, p in model.named_parameters() if n in model.teacher_param_names} == {torch.bfloat16}
    with torch.no_grad():
        model(torch.randint(0, 97, (1, 5)))
