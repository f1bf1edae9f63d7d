"""benchmarks/decode_interleaved.py on a tiny student: every context gets rounds x steps timed steps, in rounds that
visit each context in turn, and the JSON holds every step time (no times asserted)."""
import importlib.util
import json
from pathlib import Path

from lawcat import load_teacher
from tests.conftest import trained_student

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "decode_interleaved.py"
_spec = importlib.util.spec_from_file_location("decode_interleaved", SCRIPT)
decode_interleaved = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(decode_interleaved)


def test_every_context_gets_its_rounds_and_the_state_is_the_same(teacher_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("LAWCAT_TEACHER_ROOT", raising=False)
    teacher, _ = load_teacher(str(teacher_dir))
    trained_student(teacher).save_pretrained(tmp_path / "run")
    out = tmp_path / "times.json"
    result = decode_interleaved.main([str(tmp_path / "run"), "--contexts", "16,64", "--rounds", "3", "--steps", "2",
                                      "--warmup", "1", "--out", str(out)])
    assert json.loads(out.read_text())["contexts"].keys() == {"16", "64"}
    a, b = result["contexts"]["16"], result["contexts"]["64"]
    assert a["n"] == b["n"] == 6 and len(a["times_ms"]) == 6 and all(t > 0 for t in a["times_ms"])
    assert a["state_bytes"] == b["state_bytes"] > 0  # a recurrent state: one size whatever the context
    assert a["p10_ms"] <= a["median_ms"] <= a["p90_ms"]


def test_with_teacher_the_speedup_is_a_side_by_side_ratio(teacher_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("LAWCAT_TEACHER_ROOT", raising=False)
    teacher, _ = load_teacher(str(teacher_dir))
    trained_student(teacher).save_pretrained(tmp_path / "run")
    result = decode_interleaved.main([str(tmp_path / "run"), "--contexts", "16,64", "--rounds", "2", "--steps", "2",
                                      "--warmup", "1", "--with-teacher"])
    t16, t64 = result["teacher"]["16"], result["teacher"]["64"]
    assert t16["n"] == t64["n"] == 4 and t64["state_bytes"] == 4 * t16["state_bytes"] > 0  # KV of 16 / 64 tokens
    for C in ("16", "64"):  # each ratio from the same rounds, and the teacher's cache back at its context each round
        assert result["speedup"][C] == result["teacher"][C]["median_ms"] / result["contexts"][C]["median_ms"]
