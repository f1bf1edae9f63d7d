"""Markdown tables and results.md."""

import pytest

from lawcat.eval.accuracy import Cell, accuracy_by_length_depth
from lawcat.eval.records import ResultRecord, RunInfo
from lawcat.eval.report import (
    markdown_depth_table,
    markdown_length_table,
    markdown_table,
    markers_from_settings,
    write_report,
)
from lawcat.eval.results import write_results
from tests.eval.test_plots import check_png
from tests.eval.test_results import make_records


def _rec(model, length, score, task="niah1", depth=None):
    return ResultRecord(task, model, length, length - 100, depth, "1234567", "", score)


def test_markdown_table_content():
    recs = [_rec("teacher", 1024, 1.0), _rec("teacher", 1024, 1.0), _rec("teacher", 2048, 0.0),
            _rec("teacher", 2048, 1.0)]
    recs += [_rec("lawcat | v2", 1024, 1.0), _rec("lawcat | v2", 1024, 0.0), _rec("lawcat | v2", 1024, 0.0)]
    assert markdown_table(recs) == (
        "| Model | 1K | 2K |\n"
        "|:--|--:|--:|\n"
        "| teacher | 100 (n=2) | 50 (n=2) |\n"
        "| lawcat \\| v2 | 33.3 (n=3) |  |\n"
    )
    assert "| teacher | 100 | 50 |" in markdown_table(recs, show_n=False)
    with pytest.raises(ValueError, match="pass task"):
        markdown_table(recs + [_rec("teacher", 1024, 1.0, task="passkey")])
    with pytest.raises(ValueError, match="no records"):
        markdown_table(recs, task="passkey")


def test_markdown_length_table_explicit_lengths_and_blank():
    rows = {"a": {1000: Cell(52.0, 100)}, "b": {0: Cell(94.0, 100)}}
    assert markdown_length_table(rows, lengths=[0, 1000, 2000], show_n=False) == (
        "| Model | 0k | 1k | 2k |\n|:--|--:|--:|--:|\n| a |  | 52 |  |\n| b | 94 |  |  |\n"
    )


def test_markdown_depth_table():
    recs = [_rec("m", 1024, 1.0, depth=0.0), _rec("m", 1024, 0.0, depth=100.0), _rec("m", 2048, 1.0, depth=100.0)]
    md = markdown_depth_table(accuracy_by_length_depth(recs))
    assert md.splitlines() == ["| Depth | 1K | 2K |", "|:--|--:|--:|", "| 0% | 100 |  |", "| 100% | 0 | 100 |"]


def test_markers_from_settings():
    assert markers_from_settings({"distill_length": 1162, "teacher_window": 8192, "lr": 0.1}) == {
        "distillation length": 1162.0, "teacher window": 8192.0}
    assert markers_from_settings({"markers": {"train": 1024, "bad": "x"}}) == {"train": 1024.0}
    assert markers_from_settings(None) == {}


def test_write_report(tmp_path):
    recs = make_records("passkey", "lawcat-smol", lambda s: s.length <= 2048)
    run = RunInfo(model="lawcat-smol", task="passkey", seed=3, settings={"distill_length": 1162})
    write_results(tmp_path / "run", recs, run)
    written = write_report(tmp_path / "run", tmp_path / "run")  # from the run directory
    names = sorted(p.name for p in written)
    assert names == ["passkey_accuracy.png", "passkey_depth.png", "results.md"]
    md = (tmp_path / "run" / "results.md").read_text()
    assert "# Evaluation results: lawcat-smol" in md and "**Seed:** 3" in md
    assert "## Passkey retrieval" in md
    assert "| lawcat-smol | 100 (n=12) | 100 (n=12) | 0 (n=12) |" in md
    assert "![Passkey retrieval: accuracy vs length](passkey_accuracy.png)" in md
    assert "| 50% | 100 | 100 | 0 |" in md
    for name in names[:2]:
        check_png(tmp_path / "run" / name)


def test_write_report_records_without_depth_two_models(tmp_path):
    recs = make_records("babilong-qa2", "teacher", lambda s: s.length == 1024)
    recs += make_records("babilong-qa2", "student", lambda s: True)
    written = write_report(tmp_path, recs)
    assert sorted(p.name for p in written) == ["babilong-qa2_accuracy.png", "results.md"]  # no depth heatmap
    md = (tmp_path / "results.md").read_text()
    assert "| teacher | 100 (n=4) | 0 (n=4) | 0 (n=4) |" in md
    assert "| student | 100 (n=4) | 100 (n=4) | 100 (n=4) |" in md


def _placed(model, length, depth, score, actual=None):
    meta = {"actual_depth": actual} if actual is not None else {}
    return ResultRecord("niah2", model, length, length, depth, "1234567", "", score, meta)


def test_accuracy_by_needle_position_bins_by_token_position():
    from lawcat.eval.accuracy import accuracy_by_needle_position, needle_position

    # at 4K, depth 25% is token 1024 and 75% token 3072; at 8K, 25% is token 2048
    recs = [_placed("s", 4096, 10, 1.0), _placed("s", 4096, 25, 1.0), _placed("s", 4096, 75, 0.0),
            _placed("s", 4096, 90, 0.0), _placed("s", 8192, 25, 0.0), _placed("s", 8192, 5, 1.0),
            _placed("s", 8192, None, 1.0), _placed("t", 4096, 90, 1.0)]
    assert needle_position(_placed("s", 4096, 50, 1.0, actual=25)) == 1024  # the sample's actual depth wins
    assert needle_position(recs[6]) is None
    table = accuracy_by_needle_position(recs, [1024, 2048], model="s")
    assert table.labels == ["0-1K", "1K-2K", "2K+"]
    assert table.lengths == [4096, 8192]
    assert table.cells[(4096, 0.0)].n == 1 and table.cells[(4096, 1.0)].score == 100  # 1024 opens the 2nd bin
    assert table.cells[(4096, 2.0)].score == 0 and table.cells[(4096, 2.0)].n == 2
    assert table.cells[(8192, 2.0)].score == 0 and table.cells[(8192, 0.0)].score == 100
    assert (8192, 1.0) not in table.cells
    md = markdown_depth_table(table, show_n=True, row_title="Needle at (tokens)")
    assert md.splitlines()[0] == "| Needle at (tokens) | 4K | 8K |"
    assert "| 2K+ | 0 (n=2) | 0 (n=1) |" in md
    with pytest.raises(ValueError, match="ascending"):
        accuracy_by_needle_position(recs, [2048, 1024])
