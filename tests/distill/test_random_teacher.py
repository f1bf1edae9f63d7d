"""distill() on a random-weight named shape (the scale-out runs use random:llama-3-8b on the GPU)."""
import json

from lawcat import LawcatForCausalLM
from lawcat.distill.recipe import apply_overrides, recipe_from_dict
from lawcat.distill.run import distill
from lawcat.models import teacher as teacher_mod
from tests.distill.conftest import tiny_overrides


def test_distill_random_architecture_teacher(monkeypatch, text_setup, tmp_path):
    teacher_dir, text = text_setup
    monkeypatch.setattr(teacher_mod, "_model_folder", lambda src: ("default", teacher_dir, None))
    recipe = recipe_from_dict(apply_overrides({"name": "scale"}, tiny_overrides(text) + ["stage2.epochs=0"]))
    summary = distill(recipe, "random:tiny-llama", tmp_path / "run", device="cpu")
    assert summary["stage1"]["steps"] > 0 and "stage2" not in summary
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["teacher_source"] == "random:tiny-llama"
    # The recorded source rebuilds the same random teacher, so the fingerprint check passes on reload.
    student = LawcatForCausalLM.from_pretrained(tmp_path / "run")
    assert student.config.teacher_fingerprint == config["teacher_fingerprint"]
