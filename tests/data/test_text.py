import json
from pathlib import Path

import pytest

from lawcat.data import DataError
from lawcat.data.text import TextExample, load_texts


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
    (['{"body": "x"}'], 1, 'no "text" or "prompt"/"completion" field'),
])
def test_malformed_jsonl_names_file_and_line(tmp_path, lines, line_no, pattern):
    p = _write(tmp_path / "d.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=pattern) as e:
        load_texts(p)
    msg = str(e.value)
    assert f"{p}:{line_no}:" in msg
    if "JSON" in pattern or "object" in pattern or "field" in pattern:
        assert '{"text": "..."}' in msg  # says what a good line looks like


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
    with pytest.raises(DataError, match="no .txt or .jsonl"):
        load_texts(empty_dir)
    with pytest.raises(DataError, match="empty"):
        load_texts([])
    with pytest.raises(DataError):
        load_texts(123)
    assert issubclass(DataError, ValueError)
