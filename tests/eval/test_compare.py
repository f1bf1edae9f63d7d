"""Comparing runs evaluated at different lengths."""

import pytest

from lawcat.eval.compare import compare, find_results_files, label_records, load_runs, main, run_compare
from lawcat.eval.errors import ResultsError
from lawcat.eval.records import RunInfo
from lawcat.eval.results import write_results
from tests.eval.test_plots import check_png
from tests.eval.test_results import make_records


@pytest.fixture
def three_runs(tmp_path):
    """teacher at 1K-8K, LAWCAT at 1K-32K, LoLCATs at 1K-2K (partially overlapping lengths)."""
    runs = tmp_path / "runs"
    specs = {
        "teacher": ("SmolLM2-135M", (1024, 2048, 4096, 8192), lambda s: s.length <= 8192),
        "lawcat": ("LAWCAT", (1024, 2048, 4096, 8192, 16384, 32768), lambda s: s.length <= 4096),
        "lolcats": ("LoLCATs", (1024, 2048), lambda s: s.length <= 1024),
    }
    for d, (model, lengths, ok) in specs.items():
        recs = make_records("passkey", model, ok, lengths=lengths, per_cell=2)
        write_results(runs / d, recs, RunInfo(model=model, task="passkey", settings={"distill_length": 1162}))
    return runs


def test_compare_three_runs(three_runs, tmp_path):
    out = tmp_path / "cmp"
    paths = [three_runs / "teacher", three_runs / "lawcat" / "results.json", three_runs / "lolcats"]
    written = compare(paths, out)
    assert sorted(p.name for p in written) == ["compare_passkey.png", "compare_passkey_heatmap.png", "comparison.md"]
    md = (out / "comparison.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert table == [
        "| Model | 1K | 2K | 4K | 8K | 16K | 32K |",
        "|:--|--:|--:|--:|--:|--:|--:|",
        "| SmolLM2-135M | 100 (n=6) | 100 (n=6) | 100 (n=6) | 100 (n=6) |  |  |",
        "| LAWCAT | 100 (n=6) | 100 (n=6) | 100 (n=6) | 0 (n=6) | 0 (n=6) | 0 (n=6) |",
        "| LoLCATs | 100 (n=6) | 0 (n=6) |  |  |  |  |",
    ]
    for p in written[:-1]:
        check_png(p)


def test_run_compare_accepts_parent_dir(three_runs, tmp_path):
    run_compare([str(three_runs)], str(tmp_path / "out"))  # finds all three results.json below
    md = (tmp_path / "out" / "comparison.md").read_text()
    assert "| LoLCATs |" in md and "| LAWCAT |" in md and "| SmolLM2-135M |" in md
    assert len(find_results_files([three_runs])) == 3


def test_same_model_name_in_two_runs_is_disambiguated(tmp_path):
    for d, ok in (("full", lambda s: True), ("no-conv", lambda s: s.length == 1024)):
        write_results(tmp_path / d, make_records("niah1", "lawcat", ok), RunInfo(model="lawcat", task="niah1"))
    # the same model on another task, in its own file: merged into the same row name
    write_results(tmp_path / "pk", make_records("passkey", "teacher", lambda s: True),
                  RunInfo(model="teacher", task="passkey"))
    write_results(tmp_path / "ni", make_records("niah1", "teacher", lambda s: True),
                  RunInfo(model="teacher", task="niah1"))
    runs = load_runs([tmp_path / "full", tmp_path / "no-conv", tmp_path / "pk", tmp_path / "ni"])
    assert {r.model for r in label_records(runs)} == {"lawcat (full)", "lawcat (no-conv)", "teacher"}
    labelled = label_records(runs[:2], labels=["LAWCAT", "LAWCAT-NC"])
    assert {r.model for r in labelled} == {"LAWCAT", "LAWCAT-NC"}
    same = label_records(runs[:2], labels=["x", "x"])  # a repeated label is numbered, never merged
    assert {r.model for r in same} == {"x", "x #2"}
    compare([tmp_path / "full", tmp_path / "no-conv"], tmp_path / "out")
    md = (tmp_path / "out" / "comparison.md").read_text()
    assert "| lawcat (no-conv) | 100 (n=12) | 0 (n=12) | 0 (n=12) |" in md


def test_errors(tmp_path, capsys):
    with pytest.raises(ResultsError, match="does not exist"):
        run_compare([str(tmp_path / "missing")], str(tmp_path / "out"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match="no results.json"):
        run_compare([str(tmp_path / "empty")], str(tmp_path / "out"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text("{not json")
    assert main([str(tmp_path / "bad"), "--out", str(tmp_path / "out")]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written on bad input


def test_main_ok(three_runs, tmp_path, capsys):
    assert main([str(three_runs / "teacher"), str(three_runs / "lolcats"), "--out", str(tmp_path / "o")]) == 0
    assert "comparison.md" in capsys.readouterr().out


def test_gzipped_results_are_found_once_per_folder(three_runs, tmp_path):
    import gzip

    lawcat = three_runs / "lawcat" / "results.json"
    (three_runs / "lawcat" / "results.json.gz").write_bytes(gzip.compress(lawcat.read_bytes()))
    assert len(find_results_files([three_runs])) == 3  # both files in one folder: the plain one
    lawcat.unlink()
    files = find_results_files([three_runs])
    assert len(files) == 3 and any(f.name == "results.json.gz" for f in files)
    run_compare([str(three_runs)], str(tmp_path / "out"))
    assert "| LAWCAT |" in (tmp_path / "out" / "comparison.md").read_text()


def test_needle_position_tables(tmp_path, capsys):
    from lawcat.eval.records import ResultRecord

    recs = [ResultRecord("niah2", "student", 4096, 4096, d, "1", "1" if d < 50 else "2", 1.0 if d < 50 else 0.0)
            for d in (10, 30, 60, 90)]
    write_results(tmp_path / "s", recs, RunInfo(model="student", task="niah2", machine={}, date=None))
    assert main([str(tmp_path / "s"), "--out", str(tmp_path / "o"), "--needle-positions", "2k"]) == 0
    md = (tmp_path / "o" / "comparison.md").read_text()
    assert "### student: accuracy by the needle's token position" in md
    assert "| 0-2K | 100 (n=2) |" in md and "| 2K+ | 0 (n=2) |" in md
    assert "token position" not in (compare([tmp_path / "s"], tmp_path / "o2")[0].parent / "comparison.md").read_text()
    assert main([str(tmp_path / "s"), "--out", str(tmp_path / "o3"), "--needle-positions", "2q"]) == 2
    assert "cannot read the length" in capsys.readouterr().err
