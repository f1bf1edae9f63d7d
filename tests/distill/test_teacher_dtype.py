"""recipe.teacher_dtype: the frozen teacher's dtype reaches the loader, and what is trained stays float32."""
import pytest
import torch
from safetensors.torch import load_file

from lawcat import LawcatForCausalLM
from lawcat.distill import run as run_mod
from lawcat.distill.recipe import RecipeError, apply_overrides, recipe_from_dict
from lawcat.distill.run import distill, teacher_dtype_for
from lawcat.errors import LawcatError
from tests.distill.conftest import tiny_overrides

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # only read, never allocated on


@pytest.mark.parametrize("fields,device,dtype", [
    ({}, CUDA, torch.float32),                                    # the default, as every headline run was trained
    ({"teacher_dtype": "auto"}, CUDA, torch.bfloat16),            # auto: bf16 where the run computes in bf16 ...
    ({"teacher_dtype": "auto"}, CPU, torch.float32),              # ... on CUDA only
    ({"teacher_dtype": "auto", "precision": "bf16"}, CPU, torch.float32),
    ({"teacher_dtype": "auto", "precision": "fp32"}, CUDA, torch.float32),
    ({"teacher_dtype": "float32"}, CUDA, torch.float32),
    ({"teacher_dtype": "bfloat16", "precision": "bf16"}, CPU, torch.bfloat16),
])
def test_teacher_dtype_resolution(fields, device, dtype):
    assert teacher_dtype_for(recipe_from_dict(fields), device) == dtype


def test_bf16_teacher_without_bf16_compute_is_refused():
    with pytest.raises(RecipeError, match="teacher_dtype=bfloat16 needs bf16 compute"):
        recipe_from_dict({"teacher_dtype": "bfloat16", "precision": "fp32"})
    with pytest.raises(LawcatError, match=r"needs bf16 compute.*precision=auto on cpu.*set precision=bf16"):
        teacher_dtype_for(recipe_from_dict({"teacher_dtype": "bfloat16"}), CPU)


@pytest.mark.parametrize("raw,msg", [
    ({"teacher_dtype": "fp16"}, "teacher_dtype must be auto, float32, bfloat16"),
    ({"model": {"teacher_dtype": "bfloat16"}}, "model.teacher_dtype.*top-level key"),
])
def test_bad_teacher_dtype(raw, msg):
    with pytest.raises(RecipeError, match=msg):
        recipe_from_dict(raw)


def test_bf16_teacher_trains_fp32_parameters(text_setup, tmp_path, monkeypatch):
    """teacher_dtype=bfloat16 on CPU (bf16 autocast): the loader gets bf16 and the teacher is bf16; stage 1's
    LAWCAT tensors and stage 2's LoRA adapters train and are checkpointed in float32, the merged projections are
    float32 (a LoRA update below bf16's spacing survives), and the student reloads and runs."""
    teacher_dir, text = text_setup
    seen = {}
    real = run_mod.load_teacher

    def spy(src, dtype=None, device=None, **kw):
        model, tok = real(src, dtype=dtype, device=device, **kw)
        seen.update(dtype=dtype, model=model)
        return model, tok

    monkeypatch.setattr(run_mod, "load_teacher", spy)
    recipe = recipe_from_dict(apply_overrides({"name": "bf16"}, tiny_overrides(text) + [
        "teacher_dtype=bfloat16", "precision=bf16", "stage1.max_steps=2", "stage2.max_steps=2"]))
    summary = distill(recipe, str(teacher_dir), tmp_path / "run", device="cpu")
    assert summary["stage1"]["steps"] == summary["stage2"]["steps"] == 2
    assert seen["dtype"] == torch.bfloat16
    assert seen["model"].model.embed_tokens.weight.dtype == torch.bfloat16
    for stage in ("stage1", "stage2"):
        trained = load_file(tmp_path / "run" / "state" / stage / "params.safetensors")
        assert trained and all(t.dtype == torch.float32 for t in trained.values()), stage
    saved = load_file(tmp_path / "run" / "model.safetensors")
    merged = [n for n in saved if n.endswith("q_proj.weight")]
    assert merged and all(saved[n].dtype == torch.float32 for n in merged)
    student = LawcatForCausalLM.from_pretrained(tmp_path / "run", teacher=str(teacher_dir))
    with torch.no_grad():
        assert torch.isfinite(student(torch.tensor([[4, 5, 6, 7]])).logits).all()
