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


def test_loss_all_labels_every_token_of_a_task_sample(tok_bpe):  # noqa: F811
    from lawcat.data import IGNORE_INDEX

    answer_only = distill_data.build_examples(_recipe(), tok_bpe, "train")
    every = distill_data.build_examples(_recipe(loss="all"), tok_bpe, "train")
    assert [e.input_ids for e in every] == [e.input_ids for e in answer_only]   # the same samples
    for a, e in zip(answer_only, every):
        answer = [i for i, label in enumerate(a.labels) if label != IGNORE_INDEX]
        assert 0 < len(answer) < len(a) // 4                                   # the key and its end only
        assert sum(label != IGNORE_INDEX for label in e.labels) >= len(e) - 1  # the prompt too
        assert all(e.labels[i] == a.labels[i] for i in answer)


def test_stage1_text_replaces_a_share_of_rows(tok_bpe):  # noqa: F811
    recipe = _recipe(stage1_text=0.25)
    train = distill_data.build_examples(recipe, tok_bpe, "train")
    rows = distill_data.stage1_examples(recipe, tok_bpe, train)
    assert len(rows) == len(train) == 8
    text_rows = [r for r in rows if r not in train]
    assert len(text_rows) == 2 and all(len(r) == 160 for r in text_rows)
    assert distill_data.stage1_examples(_recipe(), tok_bpe, train) is train


def test_stage2_text_adds_general_text_rows_labelled_throughout(tok_bpe):  # noqa: F811
    from lawcat.data import IGNORE_INDEX

    recipe = _recipe(stage2_text=0.2)
    train = distill_data.build_examples(recipe, tok_bpe, "train")
    rows = distill_data.stage2_train_examples(recipe, tok_bpe, train)
    assert rows[: len(train)] == train                       # every task sample stays, answer-only loss kept
    text_rows = rows[len(train):]
    assert len(text_rows) == 2                               # 2 of 10 rows: a fifth
    assert all(len(r) == 160 and sum(lab != IGNORE_INDEX for lab in r.labels) >= 150 for r in text_rows)  # not BOS
    assert {tuple(r.input_ids) for r in text_rows}.isdisjoint(tuple(e.input_ids) for e in train)
    assert distill_data.stage2_train_examples(_recipe(), tok_bpe, train) == train


def test_stage2_text_reaches_the_trainer(tok_bpe, tmp_path, monkeypatch):  # noqa: F811
    from tests.conftest import make_teacher

    seen = []
    real = distill_data.general_text_rows
    monkeypatch.setattr(distill_data, "general_text_rows",
                        lambda tok, n, seq_len: seen.append((n, seq_len)) or real(tok, n, seq_len))
    teacher = tmp_path / "teacher"
    make_teacher("llama", vocab_size=len(tok_bpe)).save_pretrained(teacher)
    tok_bpe.save_pretrained(teacher)
    recipe = recipe_from_dict({"name": "s2text", "data": {"task": "passkey", "length": 160, "n_train": 6, "n_val": 2,
                                                           "stage2_text": 0.25},
                               "stage1": {"epochs": 1, "batch_size": 4}, "stage2": {"epochs": 1, "batch_size": 4}})
    summary = distill(recipe, str(teacher), tmp_path / "run", device="cpu")
    assert seen == [(2, 160)] and (summary["n_train"], summary["n_train_stage2"]) == (6, 8)
    assert summary["stage2"]["steps"] == 2


def test_diverse_style_reaches_the_passkey_generator(tok_bpe, monkeypatch):  # noqa: F811
    seen = []
    real = distill_data.make_samples
    monkeypatch.setattr(distill_data, "make_samples", lambda *a, **kw: seen.append(kw) or real(*a, **kw))
    # one block, this process
    distill_data.build_examples(_recipe(style="diverse", key_digits=12, length=260), tok_bpe, "train")
    assert seen and all(kw.get("style") == "diverse" and kw.get("key_digits") == 12 for kw in seen)
    seen.clear()
    distill_data.build_examples(_recipe(), tok_bpe, "train")
    assert seen and all("style" not in kw for kw in seen)


def test_diverse_style_reaches_the_niah_generators(tok_bpe, monkeypatch):  # noqa: F811
    seen = []
    real = distill_data.make_samples
    monkeypatch.setattr(distill_data, "make_samples", lambda *a, **kw: seen.append((a[0], kw)) or real(*a, **kw))
    recipe = _recipe(task="niah-mix", style="diverse", length=400, n_train=3, haystack="books:train",
                     extras=[{"task": "niah1", "n": 1}])
    train = distill_data.build_examples(recipe, tok_bpe, "train")
    assert len(train) == 4 and sorted(t for t, _ in seen) == ["niah1", "niah1", "niah2", "niah3"]
    assert all(kw.get("style") == "diverse" and "key_digits" not in kw for _, kw in seen)


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


CHATML = ("{% for m in messages %}<s> {{ m['role'] }} {{ m['content'] }} </s> {% endfor %}"
          "{% if add_generation_prompt %}<s> assistant {% endif %}")


def test_chat_data_trains_stage2_on_the_assistant_only(text_setup, tmp_path):
    """data.task=text on chat JSONL, rendered by the teacher tokenizer's template: stage 2's labels are the
    assistant's words and its end of turn, never the user's; rows without any are left to stage 1; and the run
    goes through with both stages accumulating and stage 2 checkpointing its layers."""
    import json
    import random

    from transformers import AutoTokenizer

    teacher, _ = text_setup
    tok = AutoTokenizer.from_pretrained(teacher)
    tok.chat_template = CHATML
    tok.save_pretrained(teacher)
    r = random.Random(1)
    lines = []
    for _ in range(40):  # user words w10..w39, assistant words w50..w89
        user = [{"role": "user", "content": " ".join(f"w{r.randint(10, 39)}" for _ in range(r.randint(2, 30)))}]
        answer = [{"role": "assistant", "content": " ".join(f"w{r.randint(50, 89)}" for _ in range(3))}]
        lines.append(json.dumps({"messages": user + answer + user + answer}))
    chats = tmp_path / "chats.jsonl"
    chats.write_text("\n".join(lines) + "\n")
    recipe = recipe_from_dict(apply_overrides({"name": "chat"}, tiny_overrides(chats) + [
        "stage1.grad_accum=2", "stage2.grad_accum=2", "stage2.activation_checkpointing=true"]))
    rows = distill_data.build_examples(recipe, tok, "train")
    labelled = {t for row in rows for t, lab in zip(tok.convert_ids_to_tokens(row.input_ids), row.labels)
                if lab != -100}
    assert "</s>" in labelled and {f"w{i}" for i in range(50, 90)} & labelled
    assert labelled <= {f"w{i}" for i in range(50, 90)} | {"</s>"}
    stage2 = distill_data.stage2_examples(rows)
    assert 0 < len(stage2) < len(rows)       # the long user turns leave some 24-token rows without an answer
    assert all(any(lab != -100 for lab in row.labels[1:]) for row in stage2)
    summary = distill(recipe, str(teacher), tmp_path / "run", device="cpu")
    assert summary["stage1"]["steps"] > 0 and summary["stage2"]["steps"] > 0
    assert summary["stage2"]["best_val"] is not None
