"""The recipe's data switches reach the training data: extras, general text in stage 1, the diverse passkey style;
and stage 2 trains LoRA only unless told otherwise."""
import pytest
from safetensors.torch import load_file

from lawcat.distill import data as distill_data
from lawcat.distill.recipe import apply_overrides, recipe_from_dict
from lawcat.distill.run import distill
from tests.data.conftest import tok_bpe  # noqa: F401  (a session fixture)
from tests.distill.conftest import tiny_overrides


def _recipe(**data):
    return recipe_from_dict({"data": {"task": "passkey", "length": 160, "n_train": 8, "n_val": 2, **data}})


def test_extras_join_training_only(tok_bpe):  # noqa: F811
    recipe = _recipe(extras=[{"task": "niah1", "n": 3, "length": 600}])
    train = distill_data.build_examples(recipe, tok_bpe, "train")
    val = distill_data.build_examples(recipe, tok_bpe, "val")
    assert len(train) == 11 and len(val) == 2
    assert sum(len(e) > 200 for e in train) == 3       # the three S-NIAH-1 samples at their own length


def test_stage1_text_replaces_a_share_of_rows(tok_bpe):  # noqa: F811
    recipe = _recipe(stage1_text=0.25)
    train = distill_data.build_examples(recipe, tok_bpe, "train")
    rows = distill_data.stage1_examples(recipe, tok_bpe, train)
    assert len(rows) == len(train) == 8
    text_rows = [r for r in rows if r not in train]
    assert len(text_rows) == 2 and all(len(r) == 160 for r in text_rows)
    assert distill_data.stage1_examples(_recipe(), tok_bpe, train) is train


def test_diverse_style_reaches_the_passkey_generator(tok_bpe, monkeypatch):  # noqa: F811
    seen = []
    real = distill_data.make_samples
    monkeypatch.setattr(distill_data, "make_samples", lambda *a, **kw: seen.append(kw) or real(*a, **kw))
    distill_data.build_examples(_recipe(style="diverse", key_digits=12, length=260), tok_bpe, "train")  # one block, this process
    assert seen and all(kw.get("style") == "diverse" and kw.get("key_digits") == 12 for kw in seen)
    seen.clear()
    distill_data.build_examples(_recipe(), tok_bpe, "train")
    assert seen and all("style" not in kw for kw in seen)


@pytest.mark.parametrize("also_lawcat", [False, True])
def test_stage2_trains_lora_only_unless_asked(text_setup, tmp_path, also_lawcat):
    teacher, text = text_setup
    recipe = recipe_from_dict(apply_overrides({"name": "t"}, tiny_overrides(text) + [
        f"stage2.train_lawcat_params={str(also_lawcat).lower()}", "stage2.merge_lora=false"]))
    distill(recipe, str(teacher), tmp_path / "run", device="cpu")
    trained = set(load_file(tmp_path / "run" / "state" / "stage2" / "params.safetensors"))
    lora = {n for n in trained if ".lora_" in n}
    assert lora
    assert (trained == lora) != also_lawcat
