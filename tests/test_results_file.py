"""lawcat.results_file: the envelope every results file shares, read back plain or gzipped, with one clear error
for each way a file can be wrong."""
import gzip
import json
import math

import pytest

from lawcat.results_file import ResultsFileError, jsonable, read_envelope, write_envelope


class _MyError(ValueError):
    pass


def test_round_trip_plain_and_gzipped(tmp_path):
    run, records = {"date": "2026-12-06", "path": tmp_path}, [{"x": 1.5, "t": (1, 2)}, {"x": float("nan")}]
    for name in ("r.json", "r.json.gz"):
        path = write_envelope(tmp_path / name, "demo-fmt", 2, run, records, summary={"a": 1})
        doc = read_envelope(path, "demo-fmt", 2)
        assert list(doc) == ["format", "version", "run", "summary", "records"]
        assert doc["run"] == {"date": "2026-12-06", "path": str(tmp_path)}
        assert doc["records"] == [{"x": 1.5, "t": [1, 2]}, {"x": None}]  # NaN is not JSON: it becomes null
    assert gzip.decompress((tmp_path / "r.json.gz").read_bytes()) == (tmp_path / "r.json").read_bytes()


def test_same_results_give_the_same_gzip_bytes(tmp_path):
    a = write_envelope(tmp_path / "a.json.gz", "f", 1, {}, [{"v": 1}]).read_bytes()
    assert write_envelope(tmp_path / "b.json.gz", "f", 1, {}, [{"v": 1}]).read_bytes() == a


@pytest.mark.parametrize("content, match", [
    (b"{not json", "not valid JSON"),
    (json.dumps({"format": "other", "version": 1, "run": {}, "records": []}).encode(), "not a demo-fmt file"),
    (json.dumps({"format": "demo-fmt", "version": 3, "run": {}, "records": []}).encode(), "upgrade lawcat"),
    (json.dumps({"format": "demo-fmt", "version": True, "run": {}, "records": []}).encode(), "version True"),
    (json.dumps({"format": "demo-fmt", "version": 1, "run": {}}).encode(), "lacks its 'run' object or its 'records'"),
    (json.dumps([1, 2]).encode(), "its format is None"),
])
def test_each_bad_file_gets_one_error_of_the_callers_class(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(_MyError, match=match):
        read_envelope(path, "demo-fmt", 2, error=_MyError, made_by="lawcat demo-cmd")


def test_missing_folder_and_corrupt_gzip(tmp_path):
    with pytest.raises(ResultsFileError, match="does not exist"):
        read_envelope(tmp_path / "none.json", "f", 1)
    with pytest.raises(ResultsFileError, match="is a folder"):
        read_envelope(tmp_path, "f", 1)
    (tmp_path / "x.json.gz").write_bytes(b"not gzip")
    with pytest.raises(ResultsFileError, match="not a readable gzip"):
        read_envelope(tmp_path / "x.json.gz", "f", 1)


def test_jsonable_handles_scalars_sets_and_infinities():
    torch = pytest.importorskip("torch")
    out = jsonable({1: torch.tensor(2.5), "s": {3}, "inf": math.inf, "obj": object})
    assert out["1"] == 2.5 and out["s"] == [3] and out["inf"] is None and out["obj"].startswith("<class")
    json.dumps(out, allow_nan=False)
