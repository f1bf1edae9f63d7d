import builtins
import json
from pathlib import Path

import pytest

from lawcat.data import DataError, encode_all
from lawcat.data.text import ChatExample, TextExample, load_texts


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_txt_jsonl_and_directory(tmp_path):
    a = _write(tmp_path / "a.txt", "First document.\nWith two lines.\n")
    b = _write(tmp_path / "b.jsonl", "\n".join([
        json.dumps({"text": "plain text row"}),
        "",
        json.dumps({"prompt": "Q: 2+2?", "completion": " 4"}),
    ]) + "\n")
    assert load_texts(a) == [TextExample("First document.\nWith two lines.\n", "", str(a))]
    rows = load_texts(str(b))
    assert [(r.prompt, r.completion) for r in rows] == [("", "plain text row"), ("Q: 2+2?", " 4")]
    assert rows[1].source == f"{b}:3" and rows[1].text == "Q: 2+2? 4"
    _write(tmp_path / "ignored.md", "not read")
    both = load_texts(tmp_path)
    assert [r.completion for r in both] == [load_texts(a)[0].completion, "plain text row", " 4"]
    assert load_texts([a, b]) == load_texts(a) + rows


def test_corpus_names(tmp_path):
    rows = load_texts("books:test")
    assert len(rows) > 1000 and rows[0].prompt == "" and rows[0].source == "books:test#0"
    with pytest.raises(DataError, match="reserved for evaluation"):
        load_texts("essays")


@pytest.mark.parametrize("content, pattern", [
    ("", "empty"),
    ("   \n\n", "empty"),
])
def test_empty_txt(tmp_path, content, pattern):
    p = _write(tmp_path / "e.txt", content)
    with pytest.raises(DataError, match=pattern) as e:
        load_texts(p)
    assert str(p) in str(e.value)


@pytest.mark.parametrize("lines, line_no, pattern", [
    (['{"text": "ok"}', '{"text": "broken'], 2, "malformed JSON"),
    (['["a", "b"]'], 1, "expected a JSON object"),
    (['{"text": 5}'], 1, '"text" must be a string'),
    (['{"prompt": "p"}'], 1, "must both be strings"),
    (['{"prompt": "p", "completion": "  "}'], 1, "completion\" is empty"),
    (['{"body": "x"}'], 1, 'no "text", "prompt"/"completion" or "messages" field'),
    (['{"messages": "hi"}'], 1, '"messages" must be a non-empty list'),
    (['{"messages": [{"role": "user"}]}'], 1, 'message 0 must be an object with string "role" and "content"'),
    (['{"messages": [{"role": "user", "content": "hi"}]}'], 1, 'no non-empty "assistant" message'),
])
def test_malformed_jsonl_names_file_and_line(tmp_path, lines, line_no, pattern):
    p = _write(tmp_path / "d.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=pattern) as e:
        load_texts(p)
    msg = str(e.value)
    assert f"{p}:{line_no}:" in msg
    if "JSON" in pattern or "object" in pattern or "field" in pattern or "list" in pattern:
        assert '{"text": "..."}' in msg and '{"messages": [' in msg  # says what a good line looks like


def test_other_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_texts(tmp_path / "missing.txt")
    with pytest.raises(DataError, match="unsupported file type '.csv'"):
        load_texts(_write(tmp_path / "x.csv", "a,b"))
    with pytest.raises(DataError, match="no usable lines"):
        load_texts(_write(tmp_path / "blank.jsonl", "\n\n"))
    with pytest.raises(DataError, match="UTF-8"):
        (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00bad")
        load_texts(tmp_path / "bin.txt")
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(DataError, match="no .txt, .jsonl or `datasets` files"):
        load_texts(empty_dir)
    with pytest.raises(DataError, match="empty"):
        load_texts([])
    with pytest.raises(DataError):
        load_texts(123)
    assert issubclass(DataError, ValueError)


# ---- chats -----------------------------------------------------------------------------------------------------
CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "w5 w6"},
        {"role": "assistant", "content": "w7 w8"}, {"role": "user", "content": "w9"},
        {"role": "assistant", "content": "w10 w11 w12"}]
# A ChatML template as SmolLM2 and Qwen ship it, over the word-level test vocabulary.
CHATML = ("{% for m in messages %}<s>{{ m['role'] }} {{ m['content'] }} </s> {% endfor %}"
          "{% if add_generation_prompt %}<s>assistant {% endif %}")


@pytest.fixture
def chat_tok():
    from tests.conftest import make_tokenizer

    tok = make_tokenizer()
    tok.add_tokens(["system", "user", "assistant", "Be", "brief."])
    tok.chat_template = CHATML
    return tok


def test_chat_jsonl_labels_the_assistant_turns_only(tmp_path, chat_tok):
    p = _write(tmp_path / "chat.jsonl", json.dumps({"messages": CHAT}) + "\n")
    [chat] = load_texts(p)
    assert isinstance(chat, ChatExample) and chat.messages[2] == ("assistant", "w7 w8")
    [enc] = encode_all(chat_tok, [chat], loss="completion", add_eos=True)
    # exactly the tokens the template's own tokenization gives (no EOS: the template ends its turns)
    assert enc.input_ids == chat_tok.apply_chat_template(CHAT, tokenize=True, return_dict=True)["input_ids"]
    trained = chat_tok.convert_ids_to_tokens([i for i, lab in zip(enc.input_ids, enc.labels) if lab != -100])
    assert trained == ["w7", "w8", "</s>", "w10", "w11", "w12", "</s>"]  # each answer and its end of turn
    [everything] = encode_all(chat_tok, [chat], loss="all")
    assert everything.labels == everything.input_ids


def test_chat_errors(tmp_path, chat_tok):
    [chat] = load_texts(_write(tmp_path / "c.jsonl", json.dumps({"messages": CHAT}) + "\n"))
    chat_tok.chat_template = None
    with pytest.raises(DataError, match="has no chat template") as e:
        encode_all(chat_tok, [chat])
    assert "c.jsonl:1" in str(e.value)
    # a template that renders past turns differently once later ones follow (as reasoning templates do)
    chat_tok.chat_template = ("{% for m in messages %}{% if loop.last %}<s>{% endif %}{{ m['content'] }} {% endfor %}"
                              "{% if add_generation_prompt %}assistant {% endif %}")
    with pytest.raises(DataError, match="renders turn 2 differently"):
        encode_all(chat_tok, [chat])
    chat_tok.chat_template = "{{ raise_exception('roles must alternate') }}"
    with pytest.raises(DataError, match="refused it.*roles must alternate"):
        encode_all(chat_tok, [chat])


# ---- Hugging Face `datasets` folders -----------------------------------------------------------------------------
ROWS = {"text": ["first row", "", "third row"]}


def test_saved_dataset_and_dataset_dict(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict(ROWS).save_to_disk(str(tmp_path / "ds"))
    rows = load_texts(tmp_path / "ds")
    assert [r.completion for r in rows] == ["first row", "third row"]      # a blank text is skipped
    assert rows[1].source == f"{tmp_path / 'ds'}[row 2]"
    chats = datasets.Dataset.from_dict({"messages": [CHAT, CHAT[:3]]})
    datasets.DatasetDict({"train": chats, "test": datasets.Dataset.from_dict(ROWS)}).save_to_disk(str(tmp_path / "dd"))
    got = load_texts(str(tmp_path / "dd"))                                  # its train split
    assert [len(c.messages) for c in got] == [5, 3] and got[0].messages[4] == ("assistant", "w10 w11 w12")
    assert [r.completion for r in load_texts(tmp_path / "dd" / "test")] == ["first row", "third row"]
    datasets.DatasetDict({"a": chats, "b": chats}).save_to_disk(str(tmp_path / "ab"))
    with pytest.raises(DataError, match="no 'train'"):
        load_texts(tmp_path / "ab")


def test_folder_of_parquet_json_and_arrow_files(tmp_path):
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "files"
    folder.mkdir()
    datasets.Dataset.from_dict({"prompt": ["Q1 ", "Q2 "], "completion": ["A1", "A2"]}).to_parquet(
        str(folder / "a.parquet"))
    _write(folder / "b.json", json.dumps({"text": "from json"}) + "\n")
    saved = tmp_path / "saved"
    datasets.Dataset.from_dict({"text": ["from arrow"]}).save_to_disk(str(saved))
    (folder / "c.arrow").write_bytes(next(saved.glob("*.arrow")).read_bytes())
    _write(folder / "d.txt", "plain file")
    rows = load_texts(folder)
    assert [(r.prompt, r.completion) for r in rows] == [("Q1 ", "A1"), ("Q2 ", "A2"), ("", "from json"),
                                                        ("", "from arrow"), ("", "plain file")]
    datasets.Dataset.from_dict({"body": ["x"]}).to_parquet(str(tmp_path / "bad.parquet"))
    with pytest.raises(DataError, match='no "text", "prompt"/"completion" or "messages" column.*body'):
        load_texts(tmp_path / "bad.parquet")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="broken.parquet: could not be read as a parquet"):
        load_texts(tmp_path / "broken.parquet")


def test_without_datasets_one_clear_error(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        if name == "datasets":
            raise ImportError("No module named 'datasets'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_datasets)
    (tmp_path / "x.parquet").write_bytes(b"")
    with pytest.raises(DataError, match=r"needs the `datasets` package: pip install 'lawcat\[data\]'"):
        load_texts(tmp_path / "x.parquet")
    assert load_texts(_write(tmp_path / "t.txt", "still fine"))[0].completion == "still fine"


@pytest.mark.parametrize("name", ["tatsu-lab/alpaca", "hf://datasets/tatsu-lab/alpaca"])
def test_hub_names_are_refused_not_downloaded(name, monkeypatch):
    monkeypatch.setattr(builtins, "__import__", _no_network_import(builtins.__import__))
    with pytest.raises(DataError, match="not a local path, and lawcat never downloads data"):
        load_texts(name)


def _no_network_import(real_import):
    """Importing datasets or huggingface_hub at all would be the first step of a download: fail the test."""
    def guarded(name, *args, **kwargs):
        if name.split(".")[0] in ("datasets", "huggingface_hub"):
            raise AssertionError(f"{name} imported for a hub name")
        return real_import(name, *args, **kwargs)
    return guarded
