"""Recipe `init`: a run that starts from a trained student takes its LAWCAT weights and unmerged LoRA adapters,
trains on from there, and refuses a student that does not fit with one clear error."""
import pytest
import torch

from lawcat import LawcatForCausalLM
from lawcat.distill.recipe import RecipeError, apply_overrides, recipe_from_dict
from lawcat.distill.run import distill
from lawcat.errors import TeacherMismatchError
from tests.conftest import make_teacher, make_tokenizer
from tests.distill.conftest import tiny_overrides


def _recipe(text, *extra):
    return recipe_from_dict(apply_overrides({"name": "warm"}, tiny_overrides(text) + list(extra)))


def _trained(path):
    """The tensors a student directory holds, by name (LAWCAT weights and any LoRA adapters, kept apart)."""
    student = LawcatForCausalLM.from_pretrained(path, fold_lora=False)
    return {n: p.detach().clone() for n, p in student.named_parameters()
            if n not in student.teacher_param_names}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """A tiny two-stage run kept with its LoRA adapters unmerged."""
    root = tmp_path_factory.mktemp("warm")
    teacher = root / "teacher"
    make_teacher("llama").save_pretrained(teacher)
    make_tokenizer().save_pretrained(teacher)
    words = " ".join(f"w{(i * 7) % 90 + 4} w{i % 30 + 4}" for i in range(800))
    text = root / "train.txt"
    text.write_text(words)
    distill(_recipe(text, "stage2.merge_lora=false"), str(teacher), root / "first", device="cpu")
    return teacher, text, root


def test_stage1_skipped_and_stage2_continues_from_the_students_weights(first_run):
    teacher, text, root = first_run
    before = _trained(root / "first")
    assert any(".lora_" in n for n in before)
    # stage 2 at a learning rate too small to move anything: the new run's student is the init student
    summary = distill(_recipe(text, f"init={root / 'first'}", "stage1.epochs=0", "stage2.lr=1e-12",
                              "stage2.merge_lora=false"), str(teacher), root / "copy", device="cpu")
    assert summary["init"] == str(root / "first") and summary["stage1"]["steps"] == 0
    copied = _trained(root / "copy")
    assert copied.keys() == before.keys()
    lawcat_names = [n for n in before if ".lora_" not in n]
    assert all(torch.equal(copied[n], before[n]) for n in lawcat_names)  # stage 2 trains LoRA only
    for n in before:
        torch.testing.assert_close(copied[n], before[n], rtol=0, atol=1e-6)
    # stage 2 only: the LAWCAT weights stay the init's (stage 2 trains LoRA only), the adapters move on from it
    distill(_recipe(text, f"init={root / 'first'}", "stage1.epochs=0", "stage2.merge_lora=false"), str(teacher),
            root / "more", device="cpu")
    more = _trained(root / "more")
    assert all(torch.equal(more[n], before[n]) for n in lawcat_names)
    lora_b = [n for n in before if ".lora_B" in n]
    assert any(not torch.equal(more[n], before[n]) for n in lora_b)
    assert all(before[n].abs().sum() > 0 for n in lora_b)  # the adapters it started from were trained, not zero


def test_init_lora_false_starts_stage2_again_from_the_stage1_student(first_run):
    teacher, text, root = first_run
    before = _trained(root / "first")
    # at a learning rate too small to move anything, the new student is the init's LAWCAT weights with the fresh
    # adapters a run starts with (B at zero: exactly the student stage 1 left)
    distill(_recipe(text, f"init={root / 'first'}", "init_lora=false", "stage1.epochs=0", "stage2.lr=1e-12",
                    "stage2.merge_lora=false"), str(teacher), root / "fresh", device="cpu")
    fresh = _trained(root / "fresh")
    assert fresh.keys() == before.keys()
    assert all(torch.equal(fresh[n], before[n]) for n in before if ".lora_" not in n)
    lora_b = [n for n in before if ".lora_B" in n]
    assert all(before[n].abs().sum() > 0 for n in lora_b)
    assert all(fresh[n].abs().max() < 1e-6 for n in lora_b)
    with pytest.raises(RecipeError, match="init_lora must be true or false"):
        _recipe(text, f"init={root / 'first'}", "init_lora=maybe")


def test_a_student_that_does_not_fit_is_refused(first_run, tmp_path):
    teacher, text, root = first_run
    with pytest.raises(RecipeError, match="model settings differ.*gate_rank"):
        distill(_recipe(text, f"init={root / 'first'}", "model.gate_rank=8"), str(teacher), tmp_path / "a",
                device="cpu")
    with pytest.raises(RecipeError, match="LoRA adapters: this run has no stage 2"):
        distill(_recipe(text, f"init={root / 'first'}", "stage2.epochs=0"), str(teacher), tmp_path / "b",
                device="cpu")
    with pytest.raises(RecipeError, match="is a teacher, not a lawcat student"):
        distill(_recipe(text, f"init={teacher}"), str(teacher), tmp_path / "c", device="cpu")
    other = tmp_path / "other-teacher"
    make_teacher("llama", seed=1).save_pretrained(other)
    make_tokenizer().save_pretrained(other)
    with pytest.raises(TeacherMismatchError, match="another teacher"):
        distill(_recipe(text, f"init={root / 'first'}"), str(other), tmp_path / "d", device="cpu")


def test_init_must_name_something():
    with pytest.raises(RecipeError, match="init must name a student"):
        recipe_from_dict({"init": 3})
    assert recipe_from_dict({"init": "runs/pk"}).init == "runs/pk"


def test_a_student_with_merged_lora_starts_only_a_run_without_stage1(first_run):
    """Merged LoRA changes q/k/v/o, which the student shares with the teacher: stage 1's targets would move."""
    teacher, text, root = first_run
    distill(_recipe(text, f"init={root / 'first'}", "stage1.epochs=0"), str(teacher),
            root / "merged", device="cpu")  # merge_lora defaults to true: its projections now carry the adapters
    with pytest.raises(RecipeError, match="merged LoRA in the teacher's projections"):
        distill(_recipe(text, f"init={root / 'merged'}"), str(teacher), root / "refused", device="cpu")
    # stage 2 adds adapters (peft renames q_proj.weight to q_proj.base_layer.weight) and barely moves them (lr 1e-12):
    # the saved projections are the init's merged ones, not the teacher's
    distill(_recipe(text, f"init={root / 'merged'}", "stage1.epochs=0", "stage2.lr=1e-12"), str(teacher),
            root / "on", device="cpu")
    q = "model.layers.0.self_attn.q_proj.weight"
    merged, on = (dict(LawcatForCausalLM.from_pretrained(root / d).named_parameters())[q].detach()
                  for d in ("merged", "on"))
    original = dict(make_teacher("llama").named_parameters())[q].detach()
    assert not torch.allclose(merged, original, atol=1e-4)  # the first run's LoRA is in there
    torch.testing.assert_close(on, merged, rtol=0, atol=1e-6)
