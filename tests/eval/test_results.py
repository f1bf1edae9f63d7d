"""results.json round trip, error messages, and aggregation (scores x 100, counts)."""

import json
import os
import random
import uuid
from dataclasses import dataclass, field

import pytest

from lawcat.eval.accuracy import Cell, accuracy_by_length, accuracy_by_length_depth, summarize
from lawcat.eval.errors import ResultsError, ResultsNotFoundError
from lawcat.eval.formatting import format_score
from lawcat.eval.records import ResultRecord, RunInfo
from lawcat.eval.results import merge_runs, read_results, write_results
from lawcat.eval.scoring import BABILONG_LABELS, TASKS
from lawcat.units import format_length


@dataclass
class _Sample:  # structurally identical to lawcat.data.sample.TaskSample
    task: str
    prompt: str
    answer: str
    target: str
    length: int
    n_tokens: int
    depth: float | None
    meta: dict = field(default_factory=dict)


def synthetic_samples(task, lengths=(1024, 2048, 4096), depths=(0.0, 50.0, 100.0), per_cell=4, seed=0):
    """Samples with the answer formats of each task (not the real prompts: scoring only)."""
    rng = random.Random(seed)
    out = []
    for L in lengths:
        for d in depths if not task.startswith("babilong") else [None]:
            for _ in range(per_cell):
                meta = {}
                if task == "passkey":
                    ans = str(rng.randint(1, 50000))
                elif task in ("niah1", "niah2"):
                    ans = str(rng.randint(10**6, 10**7 - 1))
                elif task == "niah3":
                    ans = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                else:
                    obj = rng.choice(["apple", "football", "milk"])
                    ans = rng.choice(BABILONG_LABELS)
                    if task == "babilong-qa2":
                        meta["question"] = f"Where is the {obj}? "
                    else:
                        last = rng.choice([x for x in BABILONG_LABELS if x != ans])
                        meta["question"] = f"Where was the {obj} before the {last}? "
                        meta["last"] = last
                    meta["object"] = obj
                out.append(_Sample(task, "...", ans, "", L, L - rng.randint(100, 150), d, meta))
    return out


def oracle_output(s):
    """The answer in the format each benchmark's prompt asks for."""
    if s.task == "passkey":
        return f" {s.answer}. Remember it. {s.answer} is the pass key."
    if s.task.startswith("niah"):
        return f" {s.answer}."
    if s.task == "babilong-qa2":
        return f"The {s.meta['object']} is in the {s.answer}."
    return f"Before the {s.meta['last']} the {s.meta['object']} was in the {s.answer}."


def make_records(task, model, correct, **kw):
    """Records for ``task`` where ``correct(sample) -> bool`` decides oracle vs a wrong answer."""
    recs = []
    for s in synthetic_samples(task, **kw):
        out = oracle_output(s) if correct(s) else "I am not sure."
        recs.append(ResultRecord.from_sample(s, model, out))
    return recs


@pytest.mark.parametrize("task", TASKS)
def test_oracle_scores_100_constant_scores_0(task):
    oracle = [ResultRecord.from_sample(s, "oracle", oracle_output(s)) for s in synthetic_samples(task)]
    for L, cell in accuracy_by_length(oracle).items():
        n = 4 if task.startswith("babilong") else 12  # BABILong samples have no depth grid
        assert cell.score == 100.0 and cell.n == n, (task, L, cell)
    const = [ResultRecord.from_sample(s, "const", "I don't know. 0") for s in synthetic_samples(task)]
    assert all(c.score == 0.0 for c in accuracy_by_length(const).values())
    # a constant *plausible* answer does no better than chance
    guess = {"passkey": " 25000.", "niah1": " 5000000.", "niah2": " 5000000.",
             "niah3": " 00000000-0000-4000-8000-000000000000", "babilong-qa2": "The milk is in the kitchen.",
             "babilong-qa3": "Before the garden the milk was in the kitchen."}[task]
    samples = synthetic_samples(task, per_cell=40)
    recs = [ResultRecord.from_sample(s, "guess", guess) for s in samples]
    overall = accuracy_by_length(recs, task=task)
    assert max(c.score for c in overall.values()) < 40.0


def test_aggregation_counts_depths_and_x100():
    recs = make_records("passkey", "m", lambda s: s.length == 1024 or s.depth == 0.0)
    by_len = accuracy_by_length(recs)
    assert list(by_len) == [1024, 2048, 4096]
    assert isinstance(by_len[1024], Cell) and (by_len[1024].score, by_len[1024].n) == (100.0, 12)
    assert by_len[2048].score == pytest.approx(100 / 3) and by_len[2048].n == 12
    assert 1024 - 150 <= by_len[1024].mean_tokens <= 1024 - 100
    table = accuracy_by_length_depth(recs)
    assert table.lengths == [1024, 2048, 4096] and table.depths == [0.0, 50.0, 100.0]
    assert table.labels == ["0%", "50%", "100%"]
    assert table.cells[(4096, 0.0)].score == 100.0 and table.cells[(4096, 50.0)].score == 0.0
    assert table.cells[(2048, 100.0)].n == 4


def test_depth_binning_for_many_depths():
    depths = [0, 3, 5, 8, 10, 13, 15, 18, 21, 23, 26, 97, 100]  # RULER-style grid -> binned
    recs = make_records("niah2", "m", lambda s: s.depth < 50, depths=depths, per_cell=1, lengths=(1024,))
    t = accuracy_by_length_depth(recs)
    assert t.depths == [5.0, 15.0, 25.0, 95.0]
    assert t.labels[0] == "0–10%" and t.labels[-1] == "90–100%"
    assert t.cells[(1024, 5.0)].n == 4  # 0, 3, 5, 8
    assert t.cells[(1024, 95.0)].n == 2 and t.cells[(1024, 95.0)].score == 0.0  # 97 and 100
    assert not accuracy_by_length_depth(make_records("babilong-qa2", "m", lambda s: True))  # no depths


def test_summarize_groups_by_model_and_task():
    recs = make_records("niah1", "a", lambda s: True) + make_records("niah1", "b", lambda s: False)
    recs += make_records("passkey", "a", lambda s: s.length < 4096)
    summ = summarize(recs)
    assert set(summ) == {"a", "b"} and set(summ["a"]) == {"niah1", "passkey"}
    assert summ["b"]["niah1"][2048].score == 0.0
    assert summ["a"]["passkey"][4096].score == 0.0 and summ["a"]["passkey"][1024].score == 100.0


def test_round_trip(tmp_path):
    recs = make_records("niah3", "lawcat-smol", lambda s: s.length < 4096)
    recs[0].meta["note"] = "ünïcode ✓ and a | pipe"
    run = RunInfo(model="lawcat-smol", task="niah3", seed=7, settings={"max_new_tokens": 128, "lengths": (1024, 2048)})
    path = write_results(tmp_path / "run", recs, run)
    assert path == tmp_path / "run" / "results.json"
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["results.json"]  # no temp file left
    back = read_results(tmp_path / "run")
    assert back.records == recs
    assert back.run.model == "lawcat-smol" and back.run.seed == 7 and back.run.task == "niah3"
    assert back.run.settings == {"max_new_tokens": 128, "lengths": [1024, 2048]}
    assert back.run.date and "python" in back.run.machine
    assert read_results(path).records == recs  # the file path works too
    doc = json.loads(path.read_text())
    assert doc["summary"]["lawcat-smol"]["niah3"]["4096"]["score"] == 0.0
    assert doc["summary"]["lawcat-smol"]["niah3"]["1024"]["n"] == 12
    # explicit .json name, dict run info
    p2 = write_results(tmp_path / "other.json", recs[:2], {"model": "x", "task": "niah3"})
    assert p2.name == "other.json" and len(read_results(p2).records) == 2


def test_overwrite_is_atomic_and_keeps_old_on_failure(tmp_path, monkeypatch):
    recs = make_records("passkey", "m", lambda s: True)
    path = write_results(tmp_path, recs, RunInfo(model="m", task="passkey"))
    before = path.read_bytes()
    bad = recs + [ResultRecord("passkey", "m", 1024, 1000, None, "1", "1", 2.0)]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        write_results(tmp_path, bad, RunInfo(model="m", task="passkey"))
    assert path.read_bytes() == before

    def crash(*a, **k):  # the process dies between writing the temp file and the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_results(tmp_path, recs[:1], RunInfo(model="m", task="passkey"))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["results.json"]  # the temp file was cleaned up
    write_results(tmp_path, recs[:1], RunInfo(model="m", task="passkey"))
    assert len(read_results(tmp_path).records) == 1


def test_read_errors(tmp_path):
    with pytest.raises(ResultsNotFoundError, match="no results file"):
        read_results(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError for callers that expect one
        read_results(tmp_path)
    recs = make_records("passkey", "m", lambda s: True)
    path = write_results(tmp_path, recs, RunInfo(model="m", task="passkey"))
    text = path.read_text()
    path.write_text(text[: len(text) // 2])  # truncated
    with pytest.raises(ResultsError, match="corrupt"):
        read_results(tmp_path)
    path.write_text(json.dumps({"hello": "world"}))
    with pytest.raises(ResultsError, match="not a lawcat-results file"):
        read_results(tmp_path)
    path.write_text(json.dumps({"format": "lawcat-results", "version": 99, "run": {}, "records": []}))
    with pytest.raises(ResultsError, match="upgrade lawcat"):
        read_results(tmp_path)
    doc = json.loads(text)
    del doc["records"][3]["score"]
    path.write_text(json.dumps(doc))
    with pytest.raises(ResultsError, match="record 3 lacks score"):
        read_results(tmp_path)
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ResultsError):
        read_results(tmp_path)


def test_formatting():
    assert [format_length(x) for x in (0, 1000, 1024, 2048, 16000, 32768, 1162, 500)] == [
        "0k", "1k", "1K", "2K", "16k", "32K", "1.1K", "500"]
    assert [format_score(x) for x in (100.0, 97.4, 100 / 3, 0.0, None)] == ["100", "97.4", "33.3", "0", ""]


def test_merge_runs_takes_each_length_from_the_last_run_that_has_it(tmp_path):
    first = make_records("niah1", "teacher", lambda s: True, lengths=(1024, 2048))
    second = make_records("niah1", "teacher", lambda s: False, lengths=(2048, 32768))
    write_results(tmp_path / "a", first, RunInfo(model="teacher", task="niah1", settings={"n": 12}))
    write_results(tmp_path / "b", second, RunInfo(model="teacher", task="niah1", settings={"n": 12}))
    records, info = merge_runs([read_results(tmp_path / "a"), read_results(tmp_path / "b")])
    cells = accuracy_by_length(records)
    assert sorted(cells) == [1024, 2048, 32768]
    assert cells[1024].score == 100.0 and cells[2048].score == 0.0  # 2K came from the second run
    assert info.settings["lengths"] == [1024, 2048, 32768] and len(info.settings["merged_from"]) == 2
    write_results(tmp_path / "m", records, info)
    assert len(read_results(tmp_path / "m").records) == len(first) // 2 + len(second)
    other = make_records("niah2", "teacher", lambda s: True, lengths=(1024,))
    write_results(tmp_path / "c", other, RunInfo(model="teacher", task="niah2"))
    with pytest.raises(ResultsError, match="mix models or tasks"):
        merge_runs([read_results(tmp_path / "a"), read_results(tmp_path / "c")])


def test_gzipped_results_read_like_plain_ones(tmp_path):
    """Committed results keep their per-sample records as results.json.gz: a folder holding only that reads the
    same, by folder or by file; a damaged .gz is one clear error."""
    import gzip

    recs = make_records("passkey", "m", lambda s: s.length < 4096)
    plain = write_results(tmp_path / "a", recs, RunInfo(model="m", task="passkey"))
    packed = tmp_path / "b" / "results.json.gz"
    packed.parent.mkdir()
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert read_results(tmp_path / "b").records == recs == read_results(packed).records
    packed.write_bytes(packed.read_bytes()[:40])
    with pytest.raises(ResultsError, match="gzip"):
        read_results(tmp_path / "b")
